/**
 * `deno task restore` as an operator meets it in an incident: a mistyped target or backup
 * path, a missing bucket object, a store the app still serves from.
 */
import assert from "node:assert/strict";
import { createBackup } from "../../cron/backup.ts";
import { restoreMain } from "../../cron/restore.ts";
import { FolderDestination, selectSafetyBackupsToPrune } from "../../lib/backup_store.ts";
import { verifyBackup } from "../../lib/backup_file.ts";
import { startAppAlive } from "../../kv/app_alive.ts";
import { startFakeS3 } from "../fakes/s3.ts";
import { testApp } from "../helpers.ts";

/** Runs the command, capturing what it prints. */
async function restore(argv: string[], env: Record<string, string>) {
  const lines: string[] = [];
  const { log, error } = console;
  console.log = (...a: unknown[]) => lines.push(a.join(" "));
  console.error = (...a: unknown[]) => lines.push(a.join(" "));
  try {
    const code = await restoreMain(argv, { APP_ENV: "test", ...env });
    return { code, out: lines.join("\n") };
  } finally {
    Object.assign(console, { log, error });
  }
}

async function withBackup(
  fn: (dir: string, location: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "lodge-test-" });
  const kv = await Deno.openKv(":memory:");
  try {
    for (let i = 0; i < 50; i++) await kv.set(["signing_keys", `k${i}`], { i });
    const { location } = await createBackup({
      kv,
      kvPath: undefined,
      destination: new FolderDestination(`${dir}/backups`),
      appVersion: "test",
    });
    await fn(dir, location);
  } finally {
    kv.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("dry-run into a missing target says so and creates nothing; a real restore says it creates a new store", async () => {
  await withBackup(async (dir, location) => {
    const typo = `${dir}/lodeg.kv`;
    const env = { DENO_KV_PATH: typo, BACKUP_DIR: `${dir}/safety` };
    const dry = await restore([location, "--dry-run"], env);
    assert.equal(dry.code, 1);
    assert.match(dry.out, /target .*lodeg\.kv does not exist/);
    await assert.rejects(Deno.stat(typo), Deno.errors.NotFound);
    const real = await restore([location, "--yes"], env);
    assert.equal(real.code, 0, real.out);
    assert.match(real.out, /creating|creates a new store at .*lodeg\.kv/);
    assert.ok((await Deno.stat(typo)).isFile);
  });
});

Deno.test("errors before any write never say 'run it again: a restore resumes'", async () => {
  await withBackup(async (dir, location) => {
    // A target in a folder that does not exist.
    const noDir = await restore([location, "--yes", "--target", `${dir}/nope/lodge.kv`], {
      BACKUP_DIR: `${dir}/safety`,
    });
    assert.equal(noDir.code, 1);
    assert.match(noDir.out, /folder .*nope does not exist/);
    assert.doesNotMatch(noDir.out, /resumes/);
    // A mistyped backup path: "not found", not "no manifest".
    const env = { DENO_KV_PATH: `${dir}/t.kv`, BACKUP_DIR: `${dir}/safety` };
    const missing = await restore([`${location}x`, "--dry-run"], env);
    assert.equal(missing.code, 1);
    assert.match(missing.out, /Backup file not found: .*ndjson\.gzx/);
    assert.doesNotMatch(missing.out, /manifest|resumes/);
    await assert.rejects(verifyBackup(`${location}x`), /Backup file not found/);
  });
});

Deno.test("a missing bucket object: no 'resume' advice and no empty download folder left", async () => {
  const dir = await Deno.makeTempDir({ prefix: "lodge-test-" });
  const s3 = startFakeS3({ accessKeyId: "AK", secretAccessKey: "sk", bucket: "b" });
  const tmp = Deno.env.get("TMPDIR") ?? "/tmp";
  const downloads = async () => {
    const names = new Set<string>();
    for await (const e of Deno.readDir(tmp)) {
      if (e.name.startsWith("lodge-restore-")) names.add(e.name);
    }
    return names;
  };
  try {
    const before = await downloads();
    const r = await restore(["s3://b/lodge-2026-01-01T03-00-00-000Z.ndjson.gz", "--dry-run"], {
      DENO_KV_PATH: `${dir}/t.kv`,
      BACKUP_DIR: `${dir}/safety`,
      BACKUP_S3_ENDPOINT: s3.endpoint,
      BACKUP_S3_BUCKET: "b",
      BACKUP_S3_REGION: "auto",
      BACKUP_S3_ACCESS_KEY_ID: "AK",
      BACKUP_S3_SECRET_ACCESS_KEY: "sk",
    });
    assert.equal(r.code, 1);
    assert.match(r.out, /before anything was written|Refused/);
    assert.doesNotMatch(r.out, /resumes/);
    const left = [...await downloads()].filter((n) => !before.has(n));
    assert.deepEqual(left, []);
  } finally {
    await s3.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("restore refuses a store the app is serving from, unless --force-live", async () => {
  await withBackup(async (dir, location) => {
    const target = `${dir}/live.kv`;
    const app = await Deno.openKv(target);
    const stop = startAppAlive(app, "test-instance");
    try {
      await new Promise((r) => setTimeout(r, 50)); // the first beat is written
      const env = { DENO_KV_PATH: target, BACKUP_DIR: `${dir}/safety` };
      const refused = await restore([location, "--yes"], env);
      assert.equal(refused.code, 1);
      assert.match(
        refused.out,
        /app is serving from this store \(pid \d+ on .*\)\. Stop the app first/,
      );
      assert.equal((await Array.fromAsync(app.list({ prefix: ["signing_keys"] }))).length, 0);
      const forced = await restore([location, "--yes", "--force-live"], env);
      assert.equal(forced.code, 0, forced.out);
      assert.equal((await Array.fromAsync(app.list({ prefix: ["signing_keys"] }))).length, 50);
      // Once the app stopped (its key is removed on shutdown), restore goes ahead.
      await stop();
      const after = await restore([location, "--yes"], env);
      assert.equal(after.code, 0, after.out);
    } finally {
      await stop();
      app.close();
    }
  });
});

Deno.test("safety backups: only those older than 30 days beyond the newest five are pruned", () => {
  const now = new Date("2026-03-01T00:00:00Z");
  // Eight recent practice-run safety backups: none is pruned, however many there are.
  const recent = Array.from(
    { length: 8 },
    (_, i) => `lodge-safety-2026-02-2${i}T03-00-00-000Z.ndjson.gz`,
  );
  assert.deepEqual(selectSafetyBackupsToPrune(recent, 5, new Set(), now), []);
  // Old ones beyond the newest five go, never an unfinished restore's.
  const old = Array.from(
    { length: 3 },
    (_, i) => `lodge-safety-2026-01-0${i + 1}T03-00-00-000Z.ndjson.gz`,
  );
  const all = [...old, ...recent, "lodge-2026-01-01T03-00-00-000Z.ndjson.gz"];
  assert.deepEqual(selectSafetyBackupsToPrune(all, 5, new Set(), now).sort(), old);
  assert.deepEqual(
    selectSafetyBackupsToPrune(all, 5, new Set([old[0]]), now).sort(),
    old.slice(1),
  );
});

Deno.test("a restore into an empty target takes no safety backup and prunes none", async () => {
  await withBackup(async (dir, location) => {
    const safetyDir = `${dir}/safety`;
    // A real safety backup from a restore into a store with data.
    const real = `${dir}/real.kv`;
    const kv = await Deno.openKv(real);
    await kv.set(["users", "u1"], { keep: true });
    kv.close();
    const first = await restore([location, "--yes"], { DENO_KV_PATH: real, BACKUP_DIR: safetyDir });
    assert.equal(first.code, 0, first.out);
    assert.match(first.out, /Safety backup of the target: /);
    const kept = await new FolderDestination(safetyDir).list();
    assert.equal(kept.length, 1);
    // Six practice restores into new scratch stores.
    for (let i = 0; i < 6; i++) {
      const r = await restore([location, "--yes"], {
        DENO_KV_PATH: `${dir}/scratch${i}.kv`,
        BACKUP_DIR: safetyDir,
      });
      assert.equal(r.code, 0, r.out);
      assert.match(r.out, /holds no data; no safety backup/);
    }
    assert.deepEqual(await new FolderDestination(safetyDir).list(), kept);
  });
});

Deno.test("a dry run, full or of one workspace, goes ahead while the app runs and writes nothing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "lodge-test-" });
  const t = await testApp();
  try {
    const slug = (await t.signup()).location.split("/").at(-1)!;
    const { location } = await createBackup({
      kv: t.kv,
      kvPath: undefined,
      destination: new FolderDestination(`${dir}/backups`),
      appVersion: "test",
    });
    const target = `${dir}/live.kv`;
    const app = await Deno.openKv(target);
    await app.set(["signing_keys", "mine"], { since: "before" });
    const stop = startAppAlive(app, "test-instance");
    const data = async () =>
      (await Array.fromAsync(app.list({ prefix: [] }))).filter((e) => e.key[0] !== "backup")
        .map((e) => [e.key, e.versionstamp]);
    try {
      await new Promise((r) => setTimeout(r, 50)); // the first beat is written
      const env = { DENO_KV_PATH: target, BACKUP_DIR: `${dir}/safety` };
      const before = await data();
      const full = await restore([location, "--dry-run"], env);
      assert.equal(full.code, 0, full.out);
      assert.match(full.out, /app is serving from this store .*A dry run writes nothing/);
      const one = await restore([location, "--workspace", slug, "--dry-run"], env);
      assert.equal(one.code, 0, one.out);
      assert.match(one.out, /\(dry run: nothing written\)/);
      assert.deepEqual(await data(), before);
      await assert.rejects(Deno.stat(`${dir}/safety`), Deno.errors.NotFound);
      // The real workspace restore still needs the app stopped, and never says "dry run".
      const live = await restore([location, "--workspace", slug, "--yes"], env);
      assert.equal(live.code, 1, live.out);
      assert.match(live.out, /Stop the app first/);
      await stop();
      const real = await restore([location, "--workspace", slug, "--yes"], env);
      assert.equal(real.code, 0, real.out);
      assert.doesNotMatch(real.out, /dry run/);
      assert.match(real.out, /Done: workspace ".*" restored: \d+ written, 0 deleted/);
    } finally {
      await stop();
      app.close();
    }
  } finally {
    t.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a copy of a live store (cp) is not refused for the liveness key it carries", async () => {
  await withBackup(async (dir, location) => {
    const live = `${dir}/live.kv`;
    const app = await Deno.openKv(live);
    const stop = startAppAlive(app, "test-instance", live);
    try {
      await new Promise((r) => setTimeout(r, 50)); // the first beat is written
      // `cp` of the live store (with its WAL: the key may not be checkpointed yet).
      const copy = `${dir}/copy.kv`;
      for (const ext of ["", "-wal", "-shm"]) {
        await Deno.copyFile(`${live}${ext}`, `${copy}${ext}`).catch(() => {});
      }
      const copied = await Deno.openKv(copy);
      const carried = await Array.fromAsync(copied.list({ prefix: ["backup", "app_alive"] }));
      copied.close();
      assert.equal(carried.length, 1, "the copy carries the app's fresh liveness key");
      const env = { BACKUP_DIR: `${dir}/safety` };
      const intoCopy = await restore([location, "--yes"], { ...env, DENO_KV_PATH: copy });
      assert.equal(intoCopy.code, 0, intoCopy.out);
      assert.doesNotMatch(intoCopy.out, /serving from this store/);
      // The live store itself is still refused.
      const intoLive = await restore([location, "--yes"], { ...env, DENO_KV_PATH: live });
      assert.equal(intoLive.code, 1, intoLive.out);
      assert.match(intoLive.out, /Stop the app first/);
    } finally {
      await stop();
      app.close();
    }
  });
});
