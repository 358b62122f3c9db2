/**
 * The nightly backup: streams every KV entry into a gzip NDJSON file with a manifest
 * beside it (docs/backup-format.md), stores it in the folder or bucket, prunes old
 * backups, and records the outcome in KV for /health and Sentry.
 *
 * Consistency: for a local SQLite store the backup lists a point-in-time copy
 * (SQLite online backup), so Lodge's invariants hold in every backup. Hosted KV has no file;
 * there `kv.list` is consistent per batch only (see docs/backup-format.md).
 *
 * Run by hand: `deno task backup` (prints the backup's location as its last line).
 *
 * @example
 * ```ts
 * const result = await runScheduledBackup({ kv, config });
 * if (result.ran) console.log(result.location);
 * ```
 * @module
 */
import { parseArgs } from "node:util";
import { type Config, ConfigError, loadConfig } from "../lib/config.ts";
import { openKv } from "../kv/db.ts";
import {
  BACKUP_FORMAT,
  BACKUP_FORMAT_VERSION,
  type BackupManifest,
  manifestPath,
  writeBackupFile,
} from "../lib/backup_file.ts";
import {
  type BackupDestination,
  backupFileName,
  FolderDestination,
  folderWriteProblem,
  S3Destination,
  selectBackupsToPrune,
} from "../lib/backup_store.ts";
import {
  acquireLease,
  describeLease,
  finishLease,
  getLease,
  type Lease,
  releaseLease,
  startHeartbeat,
} from "../kv/leases.ts";
import {
  BACKUP_JOB,
  BACKUP_STALE_AFTER_MS,
  ensureBackupStatus,
  getBackupStatus,
  recordBackupFailure,
  recordBackupSuccess,
} from "../kv/backups.ts";
import { breadcrumb, captureError, captureWarning } from "../lib/observability.ts";
import { InvariantTally } from "../kv/invariants.ts";
import { sentryCheckIn } from "../lib/sentry_checkin.ts";
import { ProgressBar } from "../lib/progress.ts";

/**
 * Keys that describe backups and running jobs themselves (backup status, cron leases);
 * never backed up, restored or removed by restore.
 *
 * @example
 * ```ts
 * isBackupBookkeeping(["backup", "status"]); // true
 * isBackupBookkeeping(["cron_leases", "backup"]); // true
 * ```
 */
export function isBackupBookkeeping(key: Deno.KvKey): boolean {
  return key[0] === "backup" || key[0] === "cron_leases";
}

/**
 * The destination configured by BACKUP_S3_* (bucket) or BACKUP_DIR (folder).
 *
 * @example
 * ```ts
 * const dest = backupDestination(config); // S3 when BACKUP_S3_* are set
 * ```
 */
export function backupDestination(config: Config): BackupDestination {
  return config.backup.s3
    ? new S3Destination(config.backup.s3)
    : new FolderDestination(config.backup.dir);
}

/**
 * Opens a KV store by path for the backup, restore and drill commands: a local path
 * (folders created), `:memory:`, or a remote KV URL such as Deno Deploy's
 * `https://api.deno.com/databases/<id>/connect` (with DENO_KV_ACCESS_TOKEN set), or the
 * platform default when undefined.
 *
 * @example
 * ```ts
 * const kv = await openTarget("/tmp/check.kv");
 * ```
 */
export function openTarget(path: string | undefined): Promise<Deno.Kv> {
  return path && /^https?:\/\//.test(path) ? Deno.openKv(path) : openKv(path);
}

/**
 * True when `path` names a local SQLite KV file that exists.
 *
 * @example
 * ```ts
 * if (await isLocalKvFile(config.kvPath)) console.log("can snapshot");
 * ```
 */
export async function isLocalKvFile(path: string | undefined): Promise<boolean> {
  if (!path || path === ":memory:") return false;
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

/** The private folder (mode 0700) beside a KV file that holds its snapshots while in use. */
export function snapshotRoot(kvPath: string): string {
  const slash = kvPath.replace(/\\/g, "/").lastIndexOf("/");
  return `${slash >= 0 ? kvPath.slice(0, slash) : "."}/.lodge-snapshots`;
}

/**
 * A snapshot folder whose heartbeat (its mtime, renewed every {@link SNAPSHOT_HEARTBEAT_MS}
 * while the snapshot is open) is older than this belongs to a process that died, ms. Whether
 * the pid lives cannot be asked: Deno refuses /proc without --allow-all, and `deno task backup`
 * runs without it. Same span as the backup lease.
 */
export const SNAPSHOT_STALE_MS = 90_000;
/** How often an open snapshot renews its folder's mtime, ms. */
const SNAPSHOT_HEARTBEAT_MS = 20_000;

/** A `.partial` backup file untouched this long belongs to a run that died, ms. */
const STALE_PARTIAL_MS = 10 * 60_000;

/**
 * Removes what killed runs left behind: snapshot folders whose heartbeat stopped more than
 * {@link SNAPSHOT_STALE_MS} ago (they are full copies of the store, password hashes included), snapshots of the old layout in the
 * backup folder, and `.partial` backup files nobody has written to for 10 minutes.
 * Returns the paths removed.
 *
 * @example
 * ```ts
 * await cleanStaleBackupFiles("data/lodge.kv", "data/backups");
 * ```
 */
export async function cleanStaleBackupFiles(
  kvPath: string | undefined,
  stagingDir: string | undefined,
  now = Date.now(),
): Promise<string[]> {
  const removed: string[] = [];
  const rm = async (path: string) => {
    await Deno.remove(path, { recursive: true }).then(() => removed.push(path), () => {});
  };
  if (kvPath && kvPath !== ":memory:" && !/^https?:\/\//.test(kvPath)) {
    const root = snapshotRoot(kvPath);
    try {
      for await (const e of Deno.readDir(root)) {
        const pid = Number(/^(\d+)-/.exec(e.name)?.[1]);
        const info = await Deno.stat(`${root}/${e.name}`).catch(() => null);
        const stale = info?.mtime ? now - info.mtime.getTime() > SNAPSHOT_STALE_MS : false;
        if (!pid || pid === Deno.pid || !stale) continue;
        await rm(`${root}/${e.name}`);
      }
    } catch { /* no snapshot folder yet */ }
  }
  if (stagingDir) {
    try {
      for await (const e of Deno.readDir(stagingDir)) {
        const path = `${stagingDir}/${e.name}`;
        if (/^\.snapshot-[0-9a-f-]+\.kv(-wal|-shm)?$/.test(e.name)) await rm(path);
        else if (e.name.endsWith(".partial")) {
          const info = await Deno.stat(path).catch(() => null);
          if (info?.mtime && now - info.mtime.getTime() > STALE_PARTIAL_MS) await rm(path);
        }
      }
    } catch { /* no folder yet */ }
  }
  return removed;
}

/**
 * Makes a consistent point-in-time copy of a local KV file with SQLite's online backup
 * API, copying every page in one step under one read transaction (in WAL mode a reader
 * never blocks the app's writers; a step-wise copy would restart on every app write;
 * `VACUUM INTO` would need ATTACH, which Deno allows only with all permissions), and
 * opens it. The copy holds everything (password hashes too), so it goes into a private
 * folder (mode 0700) beside the store, never into the backup folder; `close()` deletes
 * it, and {@link cleanStaleBackupFiles} removes one a killed process left.
 *
 * @example
 * ```ts
 * const snap = await snapshotKv("data/lodge.kv");
 * try { for await (const e of snap.kv.list({ prefix: [] })) console.log(e.key); } finally { await snap.close(); }
 * ```
 */
export async function snapshotKv(
  kvPath: string,
  root = snapshotRoot(kvPath),
): Promise<{ kv: Deno.Kv; path: string; close(): Promise<void> }> {
  await Deno.mkdir(root, { recursive: true, mode: 0o700 });
  await Deno.chmod(root, 0o700).catch(() => {});
  const dir = `${root}/${Deno.pid}-${crypto.randomUUID()}`;
  await Deno.mkdir(dir, { mode: 0o700 });
  const path = `${dir}/snapshot.kv`;
  // The heartbeat: the folder's mtime says this process still uses the snapshot.
  const heartbeat = setInterval(() => {
    const at = new Date();
    Deno.utime(dir, at, at).catch(() => {});
  }, SNAPSHOT_HEARTBEAT_MS);
  Deno.unrefTimer(heartbeat);
  const cleanUp = () => {
    clearInterval(heartbeat);
    return Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    // Loaded only here: hosted KV (Deno Deploy) never needs SQLite.
    const { backup: sqliteBackup, DatabaseSync } = await import("node:sqlite");
    // timeout: SQLite busy_timeout, so a moment of the app holding a lock is waited out.
    const db = new DatabaseSync(kvPath, { readOnly: true, timeout: 5000 });
    try {
      await sqliteBackup(db, path, { rate: -1 });
    } finally {
      db.close();
    }
    const kv = await Deno.openKv(path);
    return {
      kv,
      path,
      async close() {
        kv.close();
        await cleanUp();
      },
    };
  } catch (err) {
    await cleanUp();
    throw err;
  }
}

/** What {@link createBackup} needs. */
export interface CreateBackupOptions {
  /** The live store. */
  kv: Deno.Kv;
  /** Its path when it is a local SQLite file (enables the snapshot). */
  kvPath: string | undefined;
  destination: BackupDestination;
  appVersion: string;
  now?: Date;
  kind?: "lodge" | "lodge-safety";
  /** List this store instead (e.g. a snapshot the caller already holds). */
  source?: { kv: Deno.Kv; kind: BackupManifest["source"] };
  /** Called with the number of entries written so far (every 1000 entries). */
  onProgress?: (entries: number) => void;
}

/** How many times a `kv-list` backup is read again when it caught a change half-way. */
export const KV_LIST_ATTEMPTS = 5;

/** A stored backup. */
export interface CreatedBackup {
  /** Path or `s3://bucket/name`: what `deno task restore` takes. */
  location: string;
  manifest: BackupManifest;
}

/**
 * Writes one backup of the whole store to the destination.
 *
 * @example
 * ```ts
 * const { location, manifest } = await createBackup({ kv, kvPath, destination, appVersion: "1.0.0" });
 * ```
 */
export async function createBackup(opts: CreateBackupOptions): Promise<CreatedBackup> {
  const started = performance.now();
  const now = opts.now ?? new Date();
  const name = backupFileName(now, opts.kind);
  const staging = await opts.destination.stagingDir();
  const local = `${staging}/${name}`;
  const partial = `${local}.partial`;
  await cleanStaleBackupFiles(opts.kvPath, staging);
  const snapshot = !opts.source && await isLocalKvFile(opts.kvPath)
    ? await snapshotKv(opts.kvPath!)
    : null;
  const source = opts.source?.kv ?? snapshot?.kv ?? opts.kv;
  const kind = opts.source?.kind ?? (snapshot ? "sqlite-snapshot" : "kv-list");
  try {
    let written, problems: string[];
    // A plain kv.list is consistent per batch only: when the file shows a membership or an
    // index caught half-way by a concurrent change, list again (a snapshot is exact as is).
    for (let attempt = 1;; attempt++) {
      const tally = new InvariantTally();
      let seen = 0;
      written = await writeBackupFile(
        partial,
        source.list({ prefix: [] }, { batchSize: 1000, consistency: "strong" }),
        {
          createdAt: now.toISOString(),
          appVersion: opts.appVersion,
          filter: (k) => !isBackupBookkeeping(k),
          onEntry: (k, v) => {
            tally.add(k, v);
            if (++seen % 1000 === 0) opts.onProgress?.(seen);
          },
          // Local machines have a spare core; hosted KV (Deno Deploy) compresses inline.
          compressInWorker: kind === "sqlite-snapshot",
        },
      );
      problems = tally.problems();
      if (problems.length === 0 || kind !== "kv-list" || attempt >= KV_LIST_ATTEMPTS) break;
      breadcrumb("backup", "inconsistent list; listing again", { attempt }, "warning");
      await Deno.remove(partial);
    }
    if (problems.length) {
      // Stored all the same: it is what the store holds (or the best of several tries).
      breadcrumb("backup", "invariants broken in backup", { problems: problems.length }, "warning");
      captureWarning("backup: invariants do not hold", { problems: problems.length });
    }
    const manifest: BackupManifest = {
      format: BACKUP_FORMAT,
      formatVersion: BACKUP_FORMAT_VERSION,
      appVersion: opts.appVersion,
      createdAt: now.toISOString(),
      file: name,
      entries: written.entries,
      prefixes: written.prefixes,
      bytes: written.bytes,
      sha256: written.sha256,
      durationMs: Math.round(performance.now() - started),
      source: kind,
      invariants: problems.length ? problems : "hold",
    };
    await Deno.rename(partial, local);
    await Deno.writeTextFile(manifestPath(local), JSON.stringify(manifest, null, 2) + "\n", {
      mode: 0o600,
    });
    const location = await opts.destination.store(local);
    return { location, manifest };
  } catch (err) {
    await Deno.remove(partial).catch(() => {});
    throw err;
  } finally {
    await snapshot?.close();
  }
}

/**
 * Deletes backups beyond the retention policy; returns the names removed.
 *
 * @example
 * ```ts
 * const removed = await pruneBackups(new FolderDestination("data/backups"), 30, 12);
 * ```
 */
export async function pruneBackups(
  destination: BackupDestination,
  keepDaily: number,
  keepMonthly: number,
  now = Date.now(),
): Promise<string[]> {
  const doomed = selectBackupsToPrune(await destination.list(), keepDaily, keepMonthly, now);
  for (const name of doomed) await destination.remove(name);
  return doomed;
}

function hostName(): string {
  try {
    return Deno.hostname();
  } catch {
    return "this machine";
  }
}

/** What {@link runScheduledBackup} needs. */
export interface BackupJobDeps {
  kv: Deno.Kv;
  config: Config;
  /** Replaces the configured destination (tests). */
  destination?: BackupDestination;
  /** Who holds the lease (defaults to a random id per run). */
  holder?: string;
  /** Run even if a finished run still holds the lease (by hand, not from cron). */
  manual?: boolean;
  /** Take the lease even from a live holder (`deno task backup --force`). */
  force?: boolean;
  /** Progress of the backup (entries written so far). */
  onProgress?: (entries: number) => void;
  /**
   * Prune old backups after this one (default: on scheduled runs only; a backup by hand
   * prunes only with `--prune`, so a backup of a damaged store never pushes out a good one).
   */
  prune?: boolean;
  now?: () => Date;
}

/** Outcome of {@link runScheduledBackup}. */
export type BackupJobResult =
  | { ran: true; location: string; manifest: BackupManifest; pruned: string[] }
  | { ran: false; reason: "lease_held"; lease: Lease | null };

/**
 * How long a finished backup keeps the lease, ms: the minimum gap between scheduled runs
 * (an instance whose cron fires a little later skips).
 */
export const BACKUP_LEASE_MS = 3_600_000;
/**
 * How long a running backup's lease lasts without a heartbeat, ms: a killed backup blocks
 * the next one for at most this long.
 */
export const BACKUP_LEASE_HOLD_MS = 90_000;
/** How often a running backup renews its lease, ms. */
export const BACKUP_HEARTBEAT_MS = 30_000;
const MONITOR = "lodge-backup";

/**
 * The cron job: takes the KV lease (so N instances back up once) and renews it every 30 s
 * while it runs (a killed run frees it within 90 s), backs up, prunes (scheduled runs, or
 * `prune`), records the outcome in KV, and checks in with Sentry. On success the lease is
 * kept for an hour from the start, so an instance whose cron fires a little later does not
 * run again; on failure it is released so a retry may run. Failures are recorded and
 * rethrown.
 *
 * @example
 * ```ts
 * const result = await runScheduledBackup({ kv, config });
 * if (result.ran) console.log(result.location);
 * ```
 */
export async function runScheduledBackup(deps: BackupJobDeps): Promise<BackupJobResult> {
  const { kv, config } = deps;
  const now = deps.now?.() ?? new Date();
  const acquired = await acquireLease(kv, BACKUP_JOB, BACKUP_LEASE_HOLD_MS, {
    now: now.getTime(),
    owner: deps.holder ?? crypto.randomUUID(),
    takeFinished: deps.manual,
    force: deps.force,
    holder: `${
      deps.manual ? "deno task backup" : "the scheduled backup"
    } (pid ${Deno.pid} on ${hostName()})`,
    heartbeatMs: BACKUP_HEARTBEAT_MS,
  });
  if (!acquired) {
    breadcrumb("backup", "skipped: another instance holds the lease");
    return { ran: false, reason: "lease_held", lease: await getLease(kv, BACKUP_JOB) };
  }
  const destination = deps.destination ?? backupDestination(config);
  const checkInId = sentryCheckIn(
    { monitorSlug: MONITOR, status: "in_progress" },
    config.backup.cron,
  );
  breadcrumb("backup", "started", { destination: destination.description });
  const beat = startHeartbeat(kv, acquired, BACKUP_LEASE_HOLD_MS, BACKUP_HEARTBEAT_MS, () => {
    captureWarning("backup: lease lost while running (forced by an operator?)", {});
  });
  try {
    const created = await createBackup({
      kv,
      kvPath: config.kvPath,
      destination,
      appVersion: config.version,
      now,
      onProgress: deps.onProgress,
    });
    await beat.stop();
    await finishLease(kv, beat.held, Date.now(), now.getTime() + BACKUP_LEASE_MS);
    const pruned = (deps.prune ?? !deps.manual)
      ? await pruneBackups(destination, config.backup.keepDaily, config.backup.keepMonthly)
      : [];
    await recordBackupSuccess(kv, {
      location: created.location,
      entries: created.manifest.entries,
      durationMs: created.manifest.durationMs,
      invariantProblems: Array.isArray(created.manifest.invariants)
        ? created.manifest.invariants.length
        : 0,
    });
    breadcrumb("backup", "finished", {
      entries: created.manifest.entries,
      bytes: created.manifest.bytes,
      durationMs: created.manifest.durationMs,
      pruned: pruned.length,
    });
    sentryCheckIn({
      monitorSlug: MONITOR,
      status: "ok",
      checkInId,
      duration: created.manifest.durationMs / 1000,
    }, config.backup.cron);
    return { ran: true, ...created, pruned };
  } catch (err) {
    const reason = `${(err as Error)?.name ?? "Error"}: ${(err as Error)?.message ?? String(err)}`;
    await recordBackupFailure(kv, reason).catch(() => {});
    await beat.stop();
    await releaseLease(kv, beat.held).catch(() => {});
    breadcrumb("backup", "failed", { reason: (err as Error)?.name ?? "Error" }, "error");
    sentryCheckIn({ monitorSlug: MONITOR, status: "error", checkInId }, config.backup.cron);
    captureError(err);
    throw err;
  }
}

/**
 * Warns (on stderr; not fatal: the app serves without backups) when BACKUP_DIR cannot be
 * written, so the operator hears of it at start-up and not from a failed 03:00 run.
 * Returns the problem, or null.
 *
 * @example
 * ```ts
 * await warnIfBackupFolderUnusable(config);
 * ```
 */
export async function warnIfBackupFolderUnusable(
  config: Config,
  warn: (line: string) => void = console.warn,
): Promise<string | null> {
  if (config.backup.s3) return null;
  const problem = await folderWriteProblem(config.backup.dir);
  if (problem) warn(`Warning: ${problem}: backups will fail until it is fixed.`);
  return problem;
}

/**
 * Registers the nightly backup with Deno.cron (main.ts calls this), records that backups
 * are expected, and runs a catch-up backup shortly after start when the last success is
 * older than 26 hours (e.g. the machine was off at 03:00), so /health does not stay
 * "degraded" on a machine that is not always on.
 *
 * @example
 * ```ts
 * await registerBackupCron({ kv, config }); // in main.ts
 * ```
 */
export async function registerBackupCron(
  deps: BackupJobDeps,
  catchUpDelayMs = 60_000,
): Promise<void> {
  // Registered before any await: Deno Deploy picks up crons while the module first runs.
  Deno.cron("lodge-backup", deps.config.backup.cron, async () => {
    await runScheduledBackup(deps).catch((err) => console.error("backup failed:", err?.message));
  });
  await ensureBackupStatus(deps.kv);
  await warnIfBackupFolderUnusable(deps.config);
  const status = await getBackupStatus(deps.kv);
  const last = status?.lastSuccessAt ?? null;
  if (last === null || Date.now() - last > BACKUP_STALE_AFTER_MS) {
    const timer = setTimeout(() => {
      runScheduledBackup(deps).catch((err) => console.error("backup failed:", err?.message));
    }, catchUpDelayMs);
    Deno.unrefTimer(timer);
  }
}

async function main(argv: string[]): Promise<number> {
  let config: Config, flags: { prune: boolean; force: boolean };
  try {
    const { values } = parseArgs({
      args: argv,
      options: {
        prune: { type: "boolean", default: false },
        force: { type: "boolean", default: false },
      },
    });
    flags = { prune: values.prune ?? false, force: values.force ?? false };
    config = loadConfig(Deno.env.toObject());
  } catch (err) {
    console.error((err as Error).message);
    if (!(err instanceof ConfigError)) console.error("Usage: deno task backup [--prune] [--force]");
    return 1;
  }
  const kv = await openTarget(config.kvPath);
  try {
    await ensureBackupStatus(kv);
    const bar = new ProgressBar("Backing up", 0);
    // By hand: run even if tonight's backup already ran, but never beside a running one.
    const result = await runScheduledBackup({
      kv,
      config,
      holder: `cli-${crypto.randomUUID()}`,
      manual: true,
      prune: flags.prune,
      force: flags.force,
      onProgress: (n) => bar.update(n),
    });
    if (!result.ran) {
      console.error(
        `Another backup is running: the lease ["cron_leases","backup"] is ` +
          `${result.lease ? describeLease(result.lease) : "held"}. Wait for it, or, if you are ` +
          `sure that process is gone, run: deno task backup --force ` +
          `(docs/runbooks/restore.md, "A backup lease is held").`,
      );
      return 2;
    }
    const m = result.manifest;
    bar.done(m.entries);
    console.error(
      `Backed up ${m.entries} entries (${m.bytes} bytes) in ${m.durationMs} ms` +
        ` from ${m.source}; ` +
        (flags.prune
          ? `pruned ${result.pruned.length} old backup(s).`
          : "nothing pruned (pass --prune to apply retention)."),
    );
    if (Array.isArray(m.invariants)) {
      console.error(
        `Warning: Lodge's invariants do not hold in this backup (${m.invariants.length} ` +
          `problem(s), listed in its manifest), first: ${m.invariants[0]}`,
      );
    }
    console.log(result.location);
    return 0;
  } catch (err) {
    console.error(`Backup failed: ${(err as Error).message}`);
    return 1;
  } finally {
    kv.close();
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
