/**
 * `deno task backup` in a second process beside the running app, on the same SQLite
 * file: the backup must succeed and the app must not answer 500 (SQLite's "database is
 * locked" is waited out on both sides, kv/busy_retry.ts).
 */
import assert from "node:assert/strict";
import { openKv } from "../../kv/db.ts";
import { testApp } from "../helpers.ts";
import { testConfig } from "../../lib/config.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

Deno.test("a backup from a second process succeeds while the app writes, and the app never answers 500", async () => {
  const dir = await Deno.makeTempDir({ prefix: "lodge-test-" });
  const kvPath = `${dir}/lodge.kv`;
  const kv = await openKv(kvPath);
  const t = await testApp({ kvPath, backup: { ...testConfig().backup, dir } }, kv);
  try {
    for (let i = 0; i < 5; i++) await t.signup();
    let stop = false;
    const statuses = new Map<number, number>();
    // Every /health writes its probe key: a steady stream of writes through the app.
    const load = (async () => {
      while (!stop) {
        const res = await t.request("/health");
        await res.body?.cancel();
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      }
    })();
    const runs = [];
    for (let i = 0; i < 2; i++) {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "cron/backup.ts"],
        cwd: ROOT,
        env: { DENO_KV_PATH: kvPath, BACKUP_DIR: `${dir}/backups`, NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      runs.push({ code: out.code, err: new TextDecoder().decode(out.stderr) });
    }
    stop = true;
    await load;
    for (const r of runs) assert.equal(r.code, 0, r.err);
    assert.equal(statuses.get(500) ?? 0, 0, `statuses: ${JSON.stringify([...statuses])}`);
    assert.ok((statuses.get(200) ?? 0) > 10);
  } finally {
    t.close();
    await Deno.remove(dir, { recursive: true });
  }
});
