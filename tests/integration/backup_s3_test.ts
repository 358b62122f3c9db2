import assert from "node:assert/strict";
import { startFakeS3 } from "../fakes/s3.ts";
import { runScheduledBackup } from "../../cron/backup.ts";
import { restoreMain } from "../../cron/restore.ts";
import { backupEntries, compareWithStore } from "../../cron/drill.ts";
import { S3Destination, S3Error } from "../../lib/backup_store.ts";
import { loadConfig } from "../../lib/config.ts";
import { getBackupStatus } from "../../kv/backups.ts";
import * as keys from "../../kv/keys.ts";

const CREDS = {
  accessKeyId: "AKIDTEST",
  secretAccessKey: "s3cr3t/key+value",
  bucket: "lodge-backups",
};

function env(endpoint: string, dir: string, extra: Record<string, string> = {}) {
  return {
    APP_ENV: "test",
    DENO_KV_PATH: ":memory:",
    BACKUP_DIR: `${dir}/local`,
    BACKUP_S3_ENDPOINT: endpoint,
    BACKUP_S3_BUCKET: CREDS.bucket,
    BACKUP_S3_REGION: "auto",
    BACKUP_S3_ACCESS_KEY_ID: CREDS.accessKeyId,
    BACKUP_S3_SECRET_ACCESS_KEY: CREDS.secretAccessKey,
    ...extra,
  };
}

Deno.test("backups go to an S3-compatible bucket (signed), are pruned there and restore from it", async () => {
  const s3 = startFakeS3({ ...CREDS, pageSize: 2 });
  const dir = await Deno.makeTempDir({ prefix: "lodge-s3-" });
  const kv = await Deno.openKv(":memory:");
  try {
    for (let i = 0; i < 3000; i++) {
      await kv.set(["items", i], { i, noise: crypto.randomUUID(), when: new Date(i) });
    }
    const config = loadConfig(env(s3.endpoint, dir));
    assert.equal(config.backup.s3?.bucket, CREDS.bucket);
    // Old backups already in the bucket, to be pruned by date (keep 2 daily, 0 monthly).
    const old = ["2020-01-01", "2020-01-02", "2020-01-03"].map((d) =>
      `lodge-${d}T03-00-00-000Z.ndjson.gz`
    );
    for (const n of old) {
      s3.objects.set(n, new Uint8Array([1]));
      s3.objects.set(`${n}.manifest.json`, new Uint8Array([1]));
    }
    // A small part size makes this ~100 KB backup go up as a multipart upload.
    const destination = new S3Destination(config.backup.s3!, 32 * 1024);
    const result = await runScheduledBackup({
      kv,
      config: { ...config, backup: { ...config.backup, keepDaily: 2, keepMonthly: 0 } },
      destination,
    });
    assert.ok(result.ran);
    assert.match(result.location, /^s3:\/\/lodge-backups\/lodge-.*\.ndjson\.gz$/);
    assert.ok(s3.calls.includes("CreateMultipartUpload"));
    assert.ok(s3.calls.filter((c) => c === "UploadPart").length >= 2);
    assert.ok(s3.calls.includes("CompleteMultipartUpload"));
    assert.equal(s3.rejected, 0);
    assert.deepEqual(result.pruned.sort(), old.slice(0, 2));
    assert.deepEqual((await destination.list()).length, 2);
    assert.equal((await getBackupStatus(kv))?.lastSuccessLocation, result.location);
    // Nothing left behind locally.
    await assert.rejects(Deno.stat(`${dir}/local`), Deno.errors.NotFound);

    // Restore straight from the bucket location into a new store.
    const target = `${dir}/restored.kv`;
    const code = await restoreMain(
      [result.location, "--yes"],
      env(s3.endpoint, dir, { DENO_KV_PATH: target }),
    );
    assert.equal(code, 0);
    const local = await destination.download(result.location.split("/").at(-1)!, dir);
    const restored = await Deno.openKv(target);
    try {
      const cmp = await compareWithStore(backupEntries(local), restored);
      assert.equal(cmp.compared, 3000);
      assert.deepEqual(cmp.examples, []);
    } finally {
      restored.close();
    }
  } finally {
    kv.close();
    await s3.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the bucket refuses a wrong secret, and the failure is recorded for /health", async () => {
  const s3 = startFakeS3(CREDS);
  const dir = await Deno.makeTempDir({ prefix: "lodge-s3-" });
  const kv = await Deno.openKv(":memory:");
  try {
    await kv.set(["a"], 1);
    const config = loadConfig(
      env(s3.endpoint, dir, { BACKUP_S3_SECRET_ACCESS_KEY: "wrong-secret" }),
    );
    const tmpBefore = await Array.fromAsync(Deno.readDir(Deno.env.get("TMPDIR") ?? "/tmp"));
    await assert.rejects(runScheduledBackup({ kv, config }), S3Error);
    assert.ok(s3.rejected >= 1);
    // The failed upload left no staging folder behind.
    const tmpAfter = await Array.fromAsync(Deno.readDir(Deno.env.get("TMPDIR") ?? "/tmp"));
    const stale = tmpAfter.filter((e) =>
      e.name.startsWith("lodge-backup-") && !tmpBefore.some((b) => b.name === e.name)
    );
    assert.deepEqual(stale, []);
    assert.equal(s3.objects.size, 0);
    const status = await getBackupStatus(kv);
    assert.match(status!.lastFailureReason!, /HTTP 403 SignatureDoesNotMatch/);
    assert.equal(status!.lastSuccessAt, null);
    assert.equal((await kv.get(keys.cronLease("backup"))).value, null);
  } finally {
    kv.close();
    await s3.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("BACKUP_S3_* must be set together", () => {
  assert.throws(
    () => loadConfig({ BACKUP_S3_BUCKET: "b" }),
    /BACKUP_S3_ENDPOINT must be set when any BACKUP_S3_\* is set/,
  );
  assert.throws(() => loadConfig({ BACKUP_CRON: "every night" }), /BACKUP_CRON/);
  assert.throws(() => loadConfig({ BACKUP_KEEP_DAILY: "0" }), /BACKUP_KEEP_DAILY/);
});
