/** /health tells the truth about backups: a failed last attempt is "failing" and "degraded". */
import assert from "node:assert/strict";
import { runScheduledBackup } from "../../cron/backup.ts";
import { FolderDestination } from "../../lib/backup_store.ts";
import { testApp } from "../helpers.ts";
import { testConfig } from "../../lib/config.ts";

/** A folder whose upload step fails, like a bucket answering 403. */
class FailingDestination extends FolderDestination {
  override store(): Promise<string> {
    return Promise.reject(new Error("S3 PutObject failed: HTTP 403"));
  }
}

Deno.test("/health says failing and degraded after a failed backup, ok again after a success", async () => {
  const dir = await Deno.makeTempDir({ prefix: "lodge-test-" });
  const t = await testApp({
    backup: { ...testConfig().backup, dir },
  });
  try {
    await t.signup();
    // A success first: state "ok".
    await runScheduledBackup({
      kv: t.kv,
      config: t.config,
      destination: new FolderDestination(dir),
      manual: true,
    });
    let body = await (await t.request("/health")).json();
    assert.equal(body.backup.state, "ok");
    assert.equal(body.status, "ok");
    // Then a failure: newer than the last success.
    await assert.rejects(() =>
      runScheduledBackup({
        kv: t.kv,
        config: t.config,
        destination: new FailingDestination(dir),
        manual: true,
      })
    );
    const res = await t.request("/health", { ip: "127.0.0.1" });
    assert.equal(res.status, 200);
    body = await res.json();
    assert.equal(body.backup.state, "failing");
    assert.equal(body.status, "degraded");
    assert.match(body.backup.lastFailureReason, /403/);
    // A later success clears it.
    await new Promise((r) => setTimeout(r, 5));
    await runScheduledBackup({
      kv: t.kv,
      config: t.config,
      destination: new FolderDestination(dir),
      manual: true,
    });
    body = await (await t.request("/health")).json();
    assert.equal(body.backup.state, "ok");
    assert.equal(body.status, "ok");
  } finally {
    t.close();
    await Deno.remove(dir, { recursive: true });
  }
});
