/**
 * Backup bookkeeping in KV: the status shown on /health (last success, last failure and
 * its reason). The nightly run's lease is a kv/leases.ts lease named {@link BACKUP_JOB}.
 *
 * @example
 * ```ts
 * const status = await getBackupStatus(kv);
 * ```
 * @module
 */
import * as keys from "./keys.ts";

/** What /health reports about backups. */
export interface BackupStatus {
  /** When Lodge first recorded backup status (the clock for "no backup yet"). */
  since: number;
  lastSuccessAt: number | null;
  /** Where the last successful backup went (path or s3:// location). */
  lastSuccessLocation: string | null;
  lastSuccessEntries: number | null;
  lastSuccessDurationMs: number | null;
  lastFailureAt: number | null;
  /** A short reason (error name and message, no data). */
  lastFailureReason: string | null;
  /**
   * The invariant problems the last successful backup's manifest recorded (0: they hold).
   * Absent in records written before it existed.
   */
  lastSuccessInvariantProblems?: number;
}

/** The lease name of the backup job (kv/leases.ts). */
export const BACKUP_JOB = "backup";

/** Backups older than this make /health "degraded", ms (26 h: a nightly run plus slack). */
export const BACKUP_STALE_AFTER_MS = 26 * 3_600_000;

function emptyStatus(now: number): BackupStatus {
  return {
    since: now,
    lastSuccessAt: null,
    lastSuccessLocation: null,
    lastSuccessEntries: null,
    lastSuccessDurationMs: null,
    lastFailureAt: null,
    lastFailureReason: null,
  };
}

/**
 * Reads the status; null before the first record.
 *
 * @example
 * ```ts
 * const status = await getBackupStatus(kv);
 * ```
 */
export async function getBackupStatus(kv: Deno.Kv): Promise<BackupStatus | null> {
  return (await kv.get<BackupStatus>(keys.backupStatus())).value;
}

/**
 * Records that backups are expected from now on (idempotent: keeps an existing record).
 *
 * @example
 * ```ts
 * await ensureBackupStatus(kv); // at start-up
 * ```
 */
export async function ensureBackupStatus(kv: Deno.Kv, now = Date.now()): Promise<void> {
  await kv.atomic().check({ key: keys.backupStatus(), versionstamp: null })
    .set(keys.backupStatus(), emptyStatus(now)).commit();
}

async function updateStatus(
  kv: Deno.Kv,
  now: number,
  change: (s: BackupStatus) => BackupStatus,
): Promise<void> {
  for (let i = 0; i < 10; i++) {
    const cur = await kv.get<BackupStatus>(keys.backupStatus());
    const next = change(cur.value ?? emptyStatus(now));
    if ((await kv.atomic().check(cur).set(keys.backupStatus(), next).commit()).ok) return;
  }
}

/**
 * Records a successful backup.
 *
 * @example
 * ```ts
 * await recordBackupSuccess(kv, { location, entries: 10, durationMs: 5 });
 * ```
 */
export function recordBackupSuccess(
  kv: Deno.Kv,
  info: { location: string; entries: number; durationMs: number; invariantProblems?: number },
  now = Date.now(),
): Promise<void> {
  return updateStatus(kv, now, (s) => ({
    ...s,
    lastSuccessInvariantProblems: info.invariantProblems ?? 0,
    lastSuccessAt: now,
    lastSuccessLocation: info.location,
    lastSuccessEntries: info.entries,
    lastSuccessDurationMs: info.durationMs,
  }));
}

/**
 * Records a failed backup with a short reason.
 *
 * @example
 * ```ts
 * await recordBackupFailure(kv, "S3Error: HTTP 403");
 * ```
 */
export function recordBackupFailure(kv: Deno.Kv, reason: string, now = Date.now()): Promise<void> {
  return updateStatus(kv, now, (s) => ({
    ...s,
    lastFailureAt: now,
    lastFailureReason: reason.slice(0, 300),
  }));
}

/**
 * When a restore into this store started and has not finished (the restore's own marker,
 * ["backup", "restore_in_progress"]), or null.
 *
 * @example
 * ```ts
 * if (await restoreIncompleteSince(kv)) console.log("half-restored");
 * ```
 */
export async function restoreIncompleteSince(kv: Deno.Kv): Promise<number | null> {
  const marker = await kv.get<{ startedAt: number }>(keys.restoreInProgress());
  return marker.value ? marker.value.startedAt ?? 0 : null;
}

/** Backup health for /health. */
export interface BackupHealth {
  /**
   * "ok", "pending" (no backup yet, within 26 h of the first status record), "stale"
   * (last success older than 26 h), "failing" (the last attempt failed: a failure newer
   * than the last success), "restore_incomplete" (a restore into this store was left
   * half-done) or "invariants_broken" (the last backup's manifest recorded broken invariants).
   * All but "ok" and "pending" make /health "degraded".
   */
  state: "ok" | "pending" | "stale" | "failing" | "restore_incomplete" | "invariants_broken";
  lastSuccessAt: string | null;
  ageSeconds: number | null;
  lastFailureAt: string | null;
  lastFailureReason: string | null;
  /** When the unfinished restore started, or absent. */
  restoreStartedAt?: string;
  /** How many invariant problems the last backup recorded, when any. */
  invariantProblems?: number;
}

/**
 * Judges backup health: "failing" when the last failure is newer than the last success;
 * otherwise "stale" when the last success (or, with none yet, the first status record)
 * is older than {@link BACKUP_STALE_AFTER_MS}. Both make /health "degraded".
 *
 * @example
 * ```ts
 * backupHealth(await getBackupStatus(kv), Date.now(), await restoreIncompleteSince(kv)).state;
 * ```
 */
export function backupHealth(
  status: BackupStatus | null,
  now = Date.now(),
  restoreStartedAt: number | null = null,
): BackupHealth {
  const s = status ?? emptyStatus(now);
  const ref = s.lastSuccessAt ?? s.since;
  const stale = now - ref > BACKUP_STALE_AFTER_MS;
  const failing = s.lastFailureAt !== null && s.lastFailureAt > (s.lastSuccessAt ?? -Infinity);
  const broken = s.lastSuccessAt !== null ? s.lastSuccessInvariantProblems ?? 0 : 0;
  return {
    state: restoreStartedAt !== null
      ? "restore_incomplete"
      : failing
      ? "failing"
      : broken > 0
      ? "invariants_broken"
      : stale
      ? "stale"
      : s.lastSuccessAt === null
      ? "pending"
      : "ok",
    ...(restoreStartedAt !== null
      ? { restoreStartedAt: new Date(restoreStartedAt).toISOString() }
      : {}),
    ...(broken > 0 ? { invariantProblems: broken } : {}),
    lastSuccessAt: s.lastSuccessAt === null ? null : new Date(s.lastSuccessAt).toISOString(),
    ageSeconds: s.lastSuccessAt === null ? null : Math.floor((now - s.lastSuccessAt) / 1000),
    lastFailureAt: s.lastFailureAt === null ? null : new Date(s.lastFailureAt).toISOString(),
    lastFailureReason: s.lastFailureReason,
  };
}
