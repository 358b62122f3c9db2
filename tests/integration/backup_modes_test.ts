/**
 * Backups hold password hashes: the folders restore and backup create are 0700 and every
 * backup, manifest and safety backup file is 0600, whichever way it was compressed.
 */
import assert from "node:assert/strict";
import { createBackup } from "../../cron/backup.ts";
import { restoreMain } from "../../cron/restore.ts";
import { FolderDestination } from "../../lib/backup_store.ts";
import { openKv } from "../../kv/db.ts";

async function modes(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for await (const e of Deno.readDir(dir)) {
    out[e.name] = ((await Deno.stat(`${dir}/${e.name}`)).mode! & 0o777).toString(8);
  }
  return out;
}

Deno.test({
  name: "backup folders are created 0700 and backup, manifest and safety files are 0600",
  ignore: Deno.build.os === "windows",
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "lodge-test-" });
    try {
      // A local store: snapshot path, compressed in the worker.
      const kvPath = `${dir}/lodge.kv`;
      const kv = await openKv(kvPath);
      await kv.set(["signing_keys", "k1"], { secret: "…" });
      const backups = `${dir}/new/backups`;
      const snap = await createBackup({
        kv,
        kvPath,
        destination: new FolderDestination(backups),
        appVersion: "test",
      });
      // An in-memory store: listed, compressed inline.
      const mem = await Deno.openKv(":memory:");
      await mem.set(["signing_keys", "k2"], { secret: "…" });
      await new Promise((r) => setTimeout(r, 5)); // a distinct file name
      await createBackup({
        kv: mem,
        kvPath: undefined,
        destination: new FolderDestination(backups),
        appVersion: "test",
      });
      mem.close();
      await kv.set(["signing_keys", "k3"], { secret: "…" }); // since the backup
      kv.close();
      assert.equal(((await Deno.stat(`${dir}/new`)).mode! & 0o777).toString(8), "700");
      assert.equal(((await Deno.stat(backups)).mode! & 0o777).toString(8), "700");
      const files = await modes(backups);
      assert.equal(Object.keys(files).length, 4, JSON.stringify(files));
      for (const [name, mode] of Object.entries(files)) assert.equal(mode, "600", name);

      // A restore into a store with data takes a safety backup: private too.
      const safety = `${dir}/safety`;
      const code = await restoreMain([snap.location, "--yes"], {
        APP_ENV: "test",
        DENO_KV_PATH: kvPath,
        BACKUP_DIR: safety,
      });
      assert.equal(code, 0);
      assert.equal(((await Deno.stat(safety)).mode! & 0o777).toString(8), "700");
      const safetyFiles = await modes(safety);
      assert.equal(Object.keys(safetyFiles).length, 2, JSON.stringify(safetyFiles));
      for (const [name, mode] of Object.entries(safetyFiles)) assert.equal(mode, "600", name);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
