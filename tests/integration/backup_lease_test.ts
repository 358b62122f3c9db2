/**
 * A killed backup: its lease lapses within 90 s (heartbeat), the CLI says who holds it and
 * until when, --force takes it, and its snapshot / .partial leftovers are cleaned up.
 */
import assert from "node:assert/strict";
import {
  BACKUP_LEASE_HOLD_MS,
  cleanStaleBackupFiles,
  createBackup,
  runScheduledBackup,
  snapshotKv,
  snapshotRoot,
} from "../../cron/backup.ts";
import { acquireLease, getLease, startHeartbeat } from "../../kv/leases.ts";
import { BACKUP_JOB } from "../../kv/backups.ts";
import { openKv } from "../../kv/db.ts";
import { FolderDestination } from "../../lib/backup_store.ts";
import { testConfig } from "../../lib/config.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

Deno.test("a backup killed mid-run blocks the next one for at most 90 seconds, not an hour", async () => {
  const dir = await Deno.makeTempDir({ prefix: "lodge-test-" });
  const kv = await Deno.openKv(":memory:");
  try {
    const config = testConfig({ backup: { ...testConfig().backup, dir } });
    const t0 = Date.now();
    // The dead run: took the lease, then never renewed it (killed).
    await acquireLease(kv, BACKUP_JOB, BACKUP_LEASE_HOLD_MS, {
      now: t0,
      owner: "dead",
      holder: "deno task backup (pid 1 on host-a)",
      heartbeatMs: 30_000,
    });
    const blocked = await runScheduledBackup({ kv, config, now: () => new Date(t0 + 10_000) });
    assert.equal(blocked.ran, false);
    assert.equal(!blocked.ran && blocked.lease?.holder, "deno task backup (pid 1 on host-a)");
    const later = await runScheduledBackup({
      kv,
      config,
      now: () => new Date(t0 + BACKUP_LEASE_HOLD_MS + 1),
    });
    assert.equal(later.ran, true);
  } finally {
    kv.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a heartbeat keeps a short lease held while the work runs; it lapses once renewals stop", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const held = await acquireLease(kv, "job", 150, { owner: "a" });
    assert.ok(held);
    const beat = startHeartbeat(kv, held, 150, 40);
    await new Promise((r) => setTimeout(r, 400));
    assert.ok(await getLease(kv, "job"), "still held after more than twice its hold");
    assert.equal(await acquireLease(kv, "job", 150, { owner: "b" }), null);
    await beat.stop(); // as if the process died
    await new Promise((r) => setTimeout(r, 200));
    assert.ok(await acquireLease(kv, "job", 150, { owner: "b" }));
  } finally {
    kv.close();
  }
});

Deno.test("deno task backup names the lease holder and its expiry; --force takes it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "lodge-test-" });
  const kvPath = `${dir}/lodge.kv`;
  const kv = await openKv(kvPath);
  try {
    await acquireLease(kv, BACKUP_JOB, BACKUP_LEASE_HOLD_MS, {
      owner: "other",
      holder: "the scheduled backup (pid 777 on web-1)",
      heartbeatMs: 30_000,
    });
    const run = (args: string[]) =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "cron/backup.ts", ...args],
        cwd: ROOT,
        env: { DENO_KV_PATH: kvPath, BACKUP_DIR: `${dir}/backups`, NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
    const held = await run([]);
    const err = new TextDecoder().decode(held.stderr);
    assert.equal(held.code, 2);
    assert.match(err, /held by the scheduled backup \(pid 777 on web-1\) since \S+, until \S+Z/);
    assert.match(err, /--force/);
    const forced = await run(["--force"]);
    assert.equal(forced.code, 0, new TextDecoder().decode(forced.stderr));
    assert.match(new TextDecoder().decode(forced.stdout), /lodge-.*\.ndjson\.gz/);
    // Progress on stderr (not a terminal here: the final line at least).
    assert.match(
      new TextDecoder().decode(forced.stderr),
      /Backing up: \d+ entries in [\d.]+ s \(\d+ entries\/s\)/,
    );
  } finally {
    kv.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("snapshots live in a private folder, never in BACKUP_DIR; a killed run's leftovers are removed", async () => {
  const dir = await Deno.makeTempDir({ prefix: "lodge-test-" });
  const kvPath = `${dir}/lodge.kv`;
  const backups = `${dir}/backups`;
  const kv = await openKv(kvPath);
  try {
    await kv.set(["users", "u1"], { passwordHash: "$argon2id$…" });
    // What a killed run left: a snapshot of a dead process, an old-layout snapshot and a
    // .partial in the backup folder nobody writes to any more.
    const root = snapshotRoot(kvPath);
    await Deno.mkdir(`${root}/999999999-dead`, { recursive: true });
    await Deno.writeTextFile(`${root}/999999999-dead/snapshot.kv`, "copy");
    const stopped = new Date(Date.now() - 120_000); // its heartbeat stopped two minutes ago
    await Deno.utime(`${root}/999999999-dead`, stopped, stopped);
    await Deno.mkdir(backups, { recursive: true });
    const legacy = `${backups}/.snapshot-0b5e2c7a-1111-2222-3333-444455556666.kv`;
    await Deno.writeTextFile(legacy, "copy");
    await Deno.writeTextFile(`${legacy}-wal`, "");
    const partial = `${backups}/lodge-2026-01-01T03-00-00-000Z.ndjson.gz.partial`;
    await Deno.writeTextFile(partial, "half");
    await Deno.utime(partial, new Date(Date.now() - 3_600_000), new Date(Date.now() - 3_600_000));
    const fresh = `${backups}/lodge-2026-01-02T03-00-00-000Z.ndjson.gz.partial`;
    await Deno.writeTextFile(fresh, "being written right now");

    const { location } = await createBackup({
      kv,
      kvPath,
      destination: new FolderDestination(backups),
      appVersion: "test",
    });
    assert.match(location, /lodge-.*\.ndjson\.gz$/);
    const left = [];
    for await (const e of Deno.readDir(backups)) left.push(e.name);
    assert.deepEqual(
      left.filter((n) => !/^lodge-\d.*\.ndjson\.gz(\.manifest\.json)?$/.test(n)),
      ["lodge-2026-01-02T03-00-00-000Z.ndjson.gz.partial"],
      "only the fresh .partial (a run in progress) is left",
    );
    const inRoot = [];
    for await (const e of Deno.readDir(root)) inRoot.push(e.name);
    assert.deepEqual(inRoot, [], "the dead process's snapshot and ours are gone");
    assert.equal((await Deno.stat(root)).mode! & 0o777, 0o700);
    // While a snapshot is open it is in the private folder.
    const snap = await snapshotKv(kvPath);
    try {
      assert.ok(snap.path.startsWith(`${root}/${Deno.pid}-`));
      assert.equal((await cleanStaleBackupFiles(kvPath, backups)).length, 0, "ours is kept");
    } finally {
      await snap.close();
    }
  } finally {
    kv.close();
    await Deno.remove(dir, { recursive: true });
  }
});
