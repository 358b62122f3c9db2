import assert from "node:assert/strict";
import { ALL_KEYS, ALL_VALUES } from "../unit/backup_codec_test.ts";
import { createBackup, pruneBackups, runScheduledBackup } from "../../cron/backup.ts";
import {
  restoreBackup,
  RestoreInterrupted,
  restoreMain,
  syncFromBackup,
} from "../../cron/restore.ts";
import { backupEntries, compareWithStore, runDrill } from "../../cron/drill.ts";
import { FolderDestination, selectBackupsToPrune } from "../../lib/backup_store.ts";
import { manifestPath, verifyBackup } from "../../lib/backup_file.ts";
import { checkInvariants } from "../../kv/invariants.ts";
import { getBackupStatus } from "../../kv/backups.ts";
import * as keys from "../../kv/keys.ts";
import { testConfig } from "../../lib/config.ts";
import { testApp } from "../helpers.ts";

async function tempDir(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "lodge-test-" });
}

async function fillAllTypes(kv: Deno.Kv): Promise<number> {
  let n = 0;
  for (const [name, value] of Object.entries(ALL_VALUES)) {
    await kv.set(["values", name], value);
    n++;
  }
  for (const key of ALL_KEYS) {
    await kv.set(["keys", ...key], key.length);
    n++;
  }
  return n;
}

async function backupOf(kv: Deno.Kv, dir: string, kvPath?: string) {
  return await createBackup({
    kv,
    kvPath,
    destination: new FolderDestination(dir),
    appVersion: "test",
  });
}

Deno.test("a backup restores every key and value type exactly into another store", async () => {
  const dir = await tempDir();
  const source = await Deno.openKv(`${dir}/source.kv`);
  const target = await Deno.openKv(":memory:");
  try {
    const n = await fillAllTypes(source);
    const { location, manifest } = await backupOf(source, dir, `${dir}/source.kv`);
    assert.equal(manifest.entries, n);
    assert.equal(manifest.source, "sqlite-snapshot");
    assert.deepEqual(manifest.prefixes, { keys: ALL_KEYS.length, values: n - ALL_KEYS.length });
    assert.equal(manifest.bytes, (await Deno.stat(location)).size);
    assert.match(manifest.sha256, /^[0-9a-f]{64}$/);
    await restoreBackup(target, location);
    const cmp = await compareWithStore(source.list({ prefix: [] }), target);
    assert.deepEqual(cmp.examples, []);
    assert.equal(cmp.compared, n);
    // The comparison is strict: one changed type is found.
    await target.set(["values", "negativeZero"], 0);
    const after = await compareWithStore(source.list({ prefix: [] }), target);
    assert.equal(after.differences, 1);
  } finally {
    source.close();
    target.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("corrupt, truncated and newer-format backups are refused and nothing is written", async () => {
  const dir = await tempDir();
  const kv = await Deno.openKv(":memory:");
  try {
    await fillAllTypes(kv);
    const { location } = await backupOf(kv, dir);
    const bytes = await Deno.readFile(location);
    const targetPath = `${dir}/target.kv`;
    const env = { APP_ENV: "test", DENO_KV_PATH: targetPath, BACKUP_DIR: `${dir}/safety` };

    const corrupt = `${dir}/corrupt.ndjson.gz`;
    const flipped = bytes.slice();
    flipped[Math.floor(flipped.length / 2)] ^= 0xff;
    await Deno.writeFile(corrupt, flipped);
    await Deno.copyFile(manifestPath(location), manifestPath(corrupt));
    await assert.rejects(verifyBackup(corrupt), /SHA-256 does not match/);
    assert.equal(await restoreMain([corrupt, "--yes"], env), 1);

    const truncated = `${dir}/truncated.ndjson.gz`;
    await Deno.writeFile(truncated, bytes.slice(0, bytes.length - 40));
    await Deno.copyFile(manifestPath(location), manifestPath(truncated));
    await assert.rejects(verifyBackup(truncated), /truncated/);
    assert.equal(await restoreMain([truncated, "--yes"], env), 1);

    // A truncated file with a manifest rewritten to match is still refused (no last line).
    const m = JSON.parse(await Deno.readTextFile(manifestPath(location)));
    const { createHash } = await import("node:crypto");
    const cut = bytes.slice(0, bytes.length - 40);
    await Deno.writeTextFile(
      manifestPath(truncated),
      JSON.stringify({
        ...m,
        bytes: cut.length,
        sha256: createHash("sha256").update(cut).digest("hex"),
      }),
    );
    await assert.rejects(verifyBackup(truncated), /truncated or corrupt|ends early/);

    const newer = `${dir}/newer.ndjson.gz`;
    await Deno.copyFile(location, newer);
    await Deno.writeTextFile(manifestPath(newer), JSON.stringify({ ...m, formatVersion: 99 }));
    await assert.rejects(verifyBackup(newer), /format version 99, newer/);
    assert.equal(await restoreMain([newer, "--yes"], env), 1);

    // Nothing was written: the target store was never even created, nor a safety backup.
    await assert.rejects(Deno.stat(targetPath), Deno.errors.NotFound);
    await assert.rejects(Deno.stat(`${dir}/safety`), Deno.errors.NotFound);
  } finally {
    kv.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a restore killed half-way and run again ends with exactly the backup", async () => {
  const dir = await tempDir();
  const source = await Deno.openKv(":memory:");
  const target = await Deno.openKv(":memory:");
  try {
    for (let i = 0; i < 2500; i++) {
      await source.set(["items", i], { i, tags: new Set([`t${i % 7}`]), at: new Date(i) });
    }
    await fillAllTypes(source);
    const { location } = await backupOf(source, dir);
    // The target has its own history: changed, extra and bookkeeping entries.
    await target.set(["items", 5], "stale");
    await target.set(["items", 99999], "not in the backup");
    await target.set(["zzz", "extra"], 1);
    await target.set(keys.backupStatus(), { keep: "me" });

    const plan = await syncFromBackup(target, location, { dryRun: true });
    assert.equal(plan.changed, 1);
    assert.equal(plan.removed, 2);
    assert.equal(plan.added, 2500 - 1 + Object.keys(ALL_VALUES).length + ALL_KEYS.length);

    await assert.rejects(
      syncFromBackup(target, location, { stopAfterBatches: 2, batchMutations: 500 }),
      RestoreInterrupted,
    );
    const half = await compareWithStore(backupEntries(location), target);
    assert.ok(half.differences > 0, "the interrupted restore left work to do");

    await restoreBackup(target, location, { batchMutations: 500 });
    const cmp = await compareWithStore(backupEntries(location), target);
    assert.deepEqual(cmp.examples, []);
    const again = await syncFromBackup(target, location, { dryRun: true });
    assert.equal(again.added + again.changed + again.removed, 0);
    assert.deepEqual((await target.get(keys.backupStatus())).value, { keep: "me" });
  } finally {
    source.close();
    target.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a restore process killed mid-way and run again ends with exactly the backup", async () => {
  const dir = await tempDir();
  const source = await Deno.openKv(":memory:");
  try {
    const value = "x".repeat(2000);
    for (let i = 0; i < 20_000; i++) await source.set(["bulk", i], { i, value });
    const { location } = await backupOf(source, dir);
    const env = {
      ...Deno.env.toObject(),
      APP_ENV: "test",
      DENO_KV_PATH: `${dir}/target.kv`,
      BACKUP_DIR: `${dir}/safety`,
    };
    const cmd = (args: string[]) =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", new URL("../../cron/restore.ts", import.meta.url).pathname, ...args],
        env,
        stdout: "null",
        stderr: "piped",
      });
    // The target holds data of its own (an empty one would need no safety backup).
    const before = await Deno.openKv(`${dir}/target.kv`);
    await before.set(["bulk", -2], "the target before");
    before.close();
    const child = cmd([location, "--yes"]).spawn();
    // Kill it once it has started writing (the progress bar is on stderr).
    const reader = child.stderr.getReader();
    let seen = "";
    while (!seen.includes("Restoring")) {
      const r = await reader.read();
      if (r.done) break;
      seen += new TextDecoder().decode(r.value);
    }
    child.kill("SIGKILL");
    await child.status;
    reader.releaseLock();
    await child.stderr.cancel().catch(() => {});
    const killed = await Deno.openKv(`${dir}/target.kv`);
    const landed = (await Array.fromAsync(killed.list({ prefix: [] }))).length;
    killed.close();
    assert.ok(landed < 20_000, `killed before the restore finished (${landed} entries in)`);
    const rerun = await cmd([location, "--yes"]).output();
    const rerunErr = new TextDecoder().decode(rerun.stderr);
    assert.equal(rerun.code, 0, rerunErr);
    // The re-run reuses the first attempt's safety backup (the target before the restore)
    // instead of backing up the half-restored store.
    const firstSafety = /Safety backup of the target: (\S+)/.exec(seen)?.[1];
    assert.ok(firstSafety, seen);
    assert.match(rerunErr, /did not finish; its safety backup .* is kept and reused: (\S+)/);
    assert.ok(rerunErr.includes(firstSafety));
    assert.equal((await new FolderDestination(`${dir}/safety`).list()).length, 1);
    // Finished: a later restore takes a new one.
    const again = await Deno.openKv(`${dir}/target.kv`);
    await again.set(["bulk", -1], "changed since");
    again.close();
    const third = new TextDecoder().decode((await cmd([location, "--yes"]).output()).stderr);
    assert.match(third, /Safety backup of the target: /);
    assert.equal((await new FolderDestination(`${dir}/safety`).list()).length, 2);
    const target = await Deno.openKv(`${dir}/target.kv`);
    try {
      const cmp = await compareWithStore(backupEntries(location), target);
      assert.equal(cmp.compared, 20_000);
      assert.deepEqual(cmp.examples, []);
    } finally {
      target.close();
    }
  } finally {
    source.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a backup taken during concurrent membership changes restores with invariants intact", async () => {
  const dir = await tempDir();
  const t = await testApp({}, await Deno.openKv(`${dir}/live.kv`));
  const restored = await Deno.openKv(":memory:");
  try {
    for (let i = 0; i < 5; i++) await t.signup();
    // Entries between the two halves of the pair, so a plain kv.list scan would read them in
    // different batches (and could see a membership change between them).
    for (let i = 0; i < 3000; i += 500) {
      const op = t.kv.atomic();
      for (let j = i; j < i + 500; j++) op.set(["padding", j], "x".repeat(100));
      await op.commit();
    }
    const users: string[] = [];
    const workspaces: string[] = [];
    for await (const e of t.kv.list<string>({ prefix: ["users"] })) users.push(String(e.key[1]));
    for await (const e of t.kv.list({ prefix: ["workspaces"] })) {
      workspaces.push(String(e.key[1]));
    }
    let stop = false;
    let changes = 0;
    let pauseMs = 0;
    const churn = (async () => {
      for (let i = 0; !stop; i++) {
        if (pauseMs) await new Promise((r) => setTimeout(r, pauseMs));
        const ws = workspaces[i % workspaces.length];
        const user = users[(i * 3 + 1) % users.length];
        const m = await t.kv.get(keys.membership(ws, user));
        if (m.value && (m.value as { role: string }).role === "owner") continue;
        const op = t.kv.atomic().check(m);
        if (m.value) op.delete(keys.membership(ws, user)).delete(keys.userWorkspace(user, ws));
        else {
          op.set(keys.membership(ws, user), {
            workspaceId: ws,
            userId: user,
            role: "member",
            joinedAt: i,
          }).set(keys.userWorkspace(user, ws), {
            workspaceId: ws,
            slug: "s",
            name: "n",
            role: "member",
          });
        }
        if ((await op.commit()).ok) changes++;
      }
    })();
    const backups = [];
    for (let i = 0; i < 5; i++) backups.push(await backupOf(t.kv, dir, `${dir}/live.kv`));
    // The same store read with a plain kv.list, as on hosted KV (no file to snapshot), while
    // memberships change now and then (every 20 ms) rather than all the time.
    pauseMs = 20;
    const listed = [];
    for (let i = 0; i < 5; i++) listed.push(await backupOf(t.kv, dir));
    stop = true;
    await churn;
    assert.ok(changes > 10, `membership changes happened during the backups (${changes})`);
    for (const b of backups) {
      assert.equal(b.manifest.source, "sqlite-snapshot");
      assert.equal(b.manifest.invariants, "hold");
      await restoreBackup(restored, b.location);
      const inv = await checkInvariants(restored);
      assert.deepEqual(inv.problems, []);
      assert.ok(inv.checked["membership pairs"] >= 10);
    }
    // A listed backup is re-read when it caught a change half-way; what its manifest says
    // about the invariants is what the restored store shows.
    let holding = 0;
    for (const b of listed) {
      assert.equal(b.manifest.source, "kv-list");
      await restoreBackup(restored, b.location);
      const inv = await checkInvariants(restored);
      assert.equal(inv.ok, b.manifest.invariants === "hold", Deno.inspect(b.manifest.invariants));
      if (inv.ok) holding++;
    }
    assert.ok(holding >= 3, `${holding} of 5 listed backups consistent`);
    // The checker does catch a broken pair, and a backup of a broken store says so.
    const [{ key }] = await Array.fromAsync(restored.list({ prefix: ["user_workspaces"] }));
    await restored.delete(key);
    const broken = await checkInvariants(restored);
    assert.equal(broken.ok, false);
    assert.match(broken.problems[0], /membership pairs/);
    const ofBroken = await backupOf(restored, dir);
    assert.match(String(ofBroken.manifest.invariants), /membership pairs/);
  } finally {
    t.kv.close();
    restored.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("retention keeps the newest backup of the last N days and months, by date", async () => {
  const name = (iso: string) => `lodge-${iso.slice(0, 19).replaceAll(":", "-")}-000Z.ndjson.gz`;
  const names: string[] = [];
  // Two backups a day for 100 days back from 2026-06-30.
  for (let d = 0; d < 100; d++) {
    const day = new Date(Date.UTC(2026, 5, 30) - d * 86_400_000);
    names.push(name(new Date(day.getTime() + 3 * 3600_000).toISOString()));
    names.push(name(new Date(day.getTime() + 15 * 3600_000).toISOString()));
  }
  names.push("lodge-safety-2020-01-01T00-00-00-000Z.ndjson.gz", "notes.txt");
  const doomed = new Set(selectBackupsToPrune(names, 7, 3));
  const kept = names.filter((n) => !doomed.has(n));
  assert.equal(doomed.has("lodge-safety-2020-01-01T00-00-00-000Z.ndjson.gz"), false);
  assert.equal(doomed.has("notes.txt"), false);
  const keptBackups = kept.filter((n) => n.startsWith("lodge-2"));
  // 7 days (newest of each: the 15:00 one) + April and May's newest (June's is already kept).
  assert.deepEqual(
    keptBackups.sort(),
    [
      name("2026-04-30T15:00:00"),
      name("2026-05-31T15:00:00"),
      ...[24, 25, 26, 27, 28, 29, 30].map((d) => name(`2026-06-${d}T15:00:00`)),
    ].sort(),
  );

  const dir = await tempDir();
  try {
    for (const n of names.slice(0, 20)) {
      await Deno.writeTextFile(`${dir}/${n}`, "x");
      await Deno.writeTextFile(manifestPath(`${dir}/${n}`), "{}");
    }
    const dest = new FolderDestination(dir);
    const removed = await pruneBackups(dest, 3, 1);
    assert.equal(removed.length, 17);
    assert.equal((await dest.list()).length, 3);
    await assert.rejects(Deno.stat(manifestPath(`${dir}/${removed[0]}`)), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the scheduled backup runs once across instances and records its status", async () => {
  const dir = await tempDir();
  const kv = await Deno.openKv(":memory:");
  try {
    await fillAllTypes(kv);
    const config = testConfig({
      backup: { ...testConfig().backup, dir: `${dir}/backups` },
      kvPath: ":memory:",
    });
    const results = await Promise.all(
      [1, 2, 3].map((i) => runScheduledBackup({ kv, config, holder: `instance-${i}` })),
    );
    assert.equal(results.filter((r) => r.ran).length, 1);
    const status = await getBackupStatus(kv);
    assert.ok(status?.lastSuccessAt);
    assert.match(status!.lastSuccessLocation!, /lodge-.*\.ndjson\.gz$/);
    // A later cron firing within the lease is skipped; a manual run is not.
    assert.equal((await runScheduledBackup({ kv, config })).ran, false);
    const manual = await runScheduledBackup({ kv, config, manual: true });
    assert.equal(manual.ran, true);
    // Both of today's backups are kept (nothing younger than 48 h is pruned).
    const listed = await new FolderDestination(`${dir}/backups`).list();
    assert.equal(listed.length, 2);

    // A failure is recorded with its reason and releases the lease for a retry.
    await Deno.writeTextFile(`${dir}/file`, "not a folder");
    const broken = testConfig({ backup: { ...config.backup, dir: `${dir}/file/x` } });
    await kv.delete(keys.cronLease("backup"));
    await assert.rejects(runScheduledBackup({ kv, config: broken }));
    const failed = await getBackupStatus(kv);
    assert.ok(failed?.lastFailureAt);
    assert.match(failed!.lastFailureReason!, /NotADirectory/);
    assert.equal((await kv.get(keys.cronLease("backup"))).value, null);
  } finally {
    kv.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("/health turns degraded when the last backup success is older than 26 hours", async () => {
  const t = await testApp();
  try {
    let body = await (await t.request("/health")).json();
    assert.equal(body.status, "ok");
    assert.equal(body.backup.state, "pending");
    const hour = 3_600_000;
    const status = {
      since: Date.now() - 100 * hour,
      lastSuccessAt: Date.now() - 27 * hour,
      lastSuccessLocation: "x",
      lastSuccessEntries: 1,
      lastSuccessDurationMs: 1,
      lastFailureAt: Date.now() - 30 * hour,
      lastFailureReason: "S3Error: S3 PutObject failed: HTTP 403",
    };
    await t.kv.set(keys.backupStatus(), status);
    const res = await t.request("/health", { ip: "127.0.0.1" });
    assert.equal(res.status, 200);
    body = await res.json();
    assert.equal(body.status, "degraded");
    assert.equal(body.backup.state, "stale");
    assert.ok(body.backup.ageSeconds >= 27 * 3600);
    assert.match(body.backup.lastFailureReason, /403/);
    const remote = await (await t.request("/health", { ip: "198.51.100.4" })).json();
    assert.equal(remote.status, "degraded");
    assert.ok(!/S3|403/.test(remote.backup.lastFailureReason), "the reason stays on the server");
    await t.kv.set(keys.backupStatus(), { ...status, lastSuccessAt: Date.now() - hour });
    body = await (await t.request("/health")).json();
    assert.equal(body.status, "ok");
    assert.equal(body.backup.state, "ok");
    // No backup ever, and recorded 27 h ago: degraded too.
    await t.kv.set(keys.backupStatus(), { ...status, lastSuccessAt: null });
    assert.equal((await (await t.request("/health")).json()).status, "degraded");
  } finally {
    t.close();
  }
});

Deno.test("the drill passes on a live store with real data", async () => {
  const dir = await tempDir();
  const t = await testApp({}, await Deno.openKv(`${dir}/live.kv`));
  try {
    for (let i = 0; i < 3; i++) await t.signup();
    await fillAllTypes(t.kv);
    const lines: string[] = [];
    const r = await runDrill({
      kv: t.kv,
      kvPath: `${dir}/live.kv`,
      appVersion: "test",
      log: (l) => lines.push(l),
    });
    assert.deepEqual(r.comparison.examples, []);
    assert.ok(r.ok);
    assert.ok(r.comparison.compared > 20);
    assert.ok(r.invariants.checked["membership pairs"] >= 6);
    assert.ok(
      ["snapshot", "backup", "verify", "restore", "compare", "invariants"].every((k) =>
        k in r.timings
      ),
    );
  } finally {
    t.kv.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno task backup prints the backup's path last; restore asks before writing", async () => {
  const dir = await tempDir();
  try {
    const live = await Deno.openKv(`${dir}/live.kv`);
    await fillAllTypes(live);
    live.close();
    const env = {
      ...Deno.env.toObject(),
      APP_ENV: "test",
      DENO_KV_PATH: `${dir}/live.kv`,
      BACKUP_DIR: `${dir}/backups`,
      NO_COLOR: "1",
    };
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL("../../cron/backup.ts", import.meta.url).pathname],
      env,
      stdin: "null",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    const location = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!;
    assert.match(location, /\/backups\/lodge-.*\.ndjson\.gz$/);
    const manifest = await verifyBackup(location);
    assert.equal(manifest.source, "sqlite-snapshot");

    const target = `${dir}/target.kv`;
    const restoreEnv = { APP_ENV: "test", DENO_KV_PATH: target, BACKUP_DIR: `${dir}/safety` };
    // --dry-run into a target that does not exist says so and creates nothing.
    assert.equal(await restoreMain([location, "--dry-run"], restoreEnv), 1);
    await assert.rejects(Deno.stat(target), Deno.errors.NotFound);
    // Without --yes and without a terminal to ask on, it refuses.
    if (!Deno.stdin.isTerminal()) assert.equal(await restoreMain([location], restoreEnv), 1);
    const kv = await Deno.openKv(target);
    try {
      assert.equal((await Array.fromAsync(kv.list({ prefix: [] }))).length, 0);
    } finally {
      kv.close();
    }
    await assert.rejects(Deno.stat(`${dir}/safety`), Deno.errors.NotFound);
    assert.equal(await restoreMain([location, "--yes", "--target", target], restoreEnv), 0);
    const restored = await Deno.openKv(target);
    try {
      const cmp = await compareWithStore(backupEntries(location), restored);
      assert.equal(cmp.compared, manifest.entries);
      assert.deepEqual(cmp.examples, []);
    } finally {
      restored.close();
    }
    // The target was empty: nothing to save, so no safety backup was taken.
    await assert.rejects(Deno.stat(`${dir}/safety`), Deno.errors.NotFound);
    assert.equal(await restoreMain(["a", "b"], restoreEnv), 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
