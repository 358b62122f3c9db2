/**
 * /health does not say "ok" over a half-done restore or a backup whose manifest recorded
 * broken invariants; `deno task backup` warns about the latter.
 */
import assert from "node:assert/strict";
import { runScheduledBackup } from "../../cron/backup.ts";
import { FolderDestination } from "../../lib/backup_store.ts";
import { testApp } from "../helpers.ts";
import { testConfig } from "../../lib/config.ts";
import * as keys from "../../kv/keys.ts";

Deno.test("/health: a restore left half-done is restore_incomplete and degraded", async () => {
  const dir = await Deno.makeTempDir({ prefix: "lodge-test-" });
  const t = await testApp({ backup: { ...testConfig().backup, dir } });
  try {
    await runScheduledBackup({
      kv: t.kv,
      config: t.config,
      destination: new FolderDestination(dir),
      manual: true,
    });
    assert.equal((await (await t.request("/health")).json()).status, "ok");
    const startedAt = Date.now();
    await t.kv.set(keys.restoreInProgress(), { restoring: "x", safety: "", startedAt });
    const body = await (await t.request("/health")).json();
    assert.equal(body.backup.state, "restore_incomplete");
    assert.equal(body.backup.restoreStartedAt, new Date(startedAt).toISOString());
    assert.equal(body.status, "degraded");
    await t.kv.delete(keys.restoreInProgress());
    assert.equal((await (await t.request("/health")).json()).status, "ok");
  } finally {
    t.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("broken invariants in the last backup: /health invariants_broken, deno task backup warns", async () => {
  const dir = await Deno.makeTempDir({ prefix: "lodge-test-" });
  const kvPath = `${dir}/lodge.kv`;
  try {
    // A user without its email index entry: an invariant the backup checks.
    const kv = await Deno.openKv(kvPath);
    await kv.set(["users", "u1"], { id: "u1", email: "a@example.com" });
    kv.close();
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL("../../cron/backup.ts", import.meta.url).pathname],
      env: { APP_ENV: "test", DENO_KV_PATH: kvPath, BACKUP_DIR: `${dir}/backups`, NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, stderr);
    assert.match(
      stderr,
      /^Warning: Lodge's invariants do not hold in this backup \(\d+ problem\(s\), listed in its manifest\), first: /m,
    );
    const store = await Deno.openKv(kvPath);
    const t = await testApp({ backup: { ...testConfig().backup, dir: `${dir}/backups` } }, store);
    try {
      const body = await (await t.request("/health")).json();
      assert.equal(body.backup.state, "invariants_broken");
      assert.ok(body.backup.invariantProblems >= 1);
      assert.equal(body.status, "degraded");
    } finally {
      store.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
