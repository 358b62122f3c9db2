/**
 * One safety backup per restore. Before a restore first writes, it backs up the target
 * and records that backup in the target (["backup", "restore_in_progress"], bookkeeping
 * that restore never touches). A restore that was killed and is run again finds the record
 * and reuses that first safety backup — the target as it was before the restore — instead
 * of backing up the half-restored store. The record is removed when the restore finishes.
 * A target with no data (a new or empty store, e.g. a practice restore's scratch store) gets no
 * safety backup: there is nothing to save, and it would only crowd the folder. Safety backups
 * older than `SAFETY_BACKUP_MIN_AGE_DAYS` days beyond the newest
 * {@link SAFETY_BACKUPS_KEPT} are pruned; younger ones never are.
 *
 * @example
 * ```ts
 * const safety = await safetyBackupOnce(target, { targetPath, dir: "data/backups", appVersion, backup });
 * await restoreBackup(target, path);
 * await finishRestore(target);
 * ```
 * @module
 */
import * as keys from "../kv/keys.ts";
import {
  FolderDestination,
  SAFETY_BACKUPS_KEPT,
  selectSafetyBackupsToPrune,
} from "../lib/backup_store.ts";
import { createBackup } from "./backup.ts";

/** ["backup", "restore_in_progress"]: a restore into this store started and has not finished. */
export interface RestoreMarker {
  /** What is being restored (path or s3:// location, or "workspace <slug> from …"). */
  restoring: string;
  /** The safety backup taken before the first write; "" when the target held no data. */
  safety: string;
  startedAt: number;
}

/**
 * The unfinished restore recorded in `target`, or null.
 *
 * @example
 * ```ts
 * const marker = await getRestoreMarker(target);
 * ```
 */
export async function getRestoreMarker(target: Deno.Kv): Promise<RestoreMarker | null> {
  return (await target.get<RestoreMarker>(keys.restoreInProgress())).value;
}

/**
 * Returns the restore's safety backup: the one an earlier, unfinished attempt recorded
 * (`reused: true`), or a new one taken now and recorded before anything is written.
 * `location` is "" when the target holds no data (nothing to save, no backup taken).
 *
 * @example
 * ```ts
 * const { location, reused } = await safetyBackupOnce(target, opts);
 * ```
 */
export async function safetyBackupOnce(target: Deno.Kv, opts: {
  targetPath: string | undefined;
  /** Folder for safety backups (BACKUP_DIR). */
  dir: string;
  appVersion: string;
  restoring: string;
}): Promise<{ location: string; reused: boolean; marker: RestoreMarker }> {
  const earlier = await getRestoreMarker(target);
  if (
    earlier &&
    (earlier.safety === "" || await Deno.stat(earlier.safety).then(() => true, () => false))
  ) {
    return { location: earlier.safety, reused: true, marker: earlier };
  }
  if (!(await holdsData(target))) {
    const marker: RestoreMarker = { restoring: opts.restoring, safety: "", startedAt: Date.now() };
    await target.set(keys.restoreInProgress(), marker);
    return { location: "", reused: false, marker };
  }
  const created = await createBackup({
    kv: target,
    kvPath: opts.targetPath,
    destination: new FolderDestination(opts.dir),
    appVersion: opts.appVersion,
    kind: "lodge-safety",
  });
  const marker: RestoreMarker = {
    restoring: opts.restoring,
    safety: created.location,
    startedAt: Date.now(),
  };
  await target.set(keys.restoreInProgress(), marker);
  await pruneSafetyBackups(opts.dir, new Set([created.location.split("/").at(-1)!]));
  return { location: created.location, reused: false, marker };
}

/**
 * Whether the store holds anything besides backup bookkeeping (the ["backup", …] keys).
 *
 * @example
 * ```ts
 * if (await holdsData(target)) console.log("not empty");
 * ```
 */
export async function holdsData(kv: Deno.Kv): Promise<boolean> {
  // Bookkeeping is a handful of keys, so walking past it is cheap.
  for await (const e of kv.list({ prefix: [] }, { batchSize: 16 })) {
    if (e.key[0] !== "backup") return true;
  }
  return false;
}

/**
 * Records that the restore finished (its safety backup is no longer reused).
 *
 * @example
 * ```ts
 * await finishRestore(target);
 * ```
 */
export async function finishRestore(target: Deno.Kv): Promise<void> {
  await target.delete(keys.restoreInProgress());
}

/**
 * Deletes safety backups older than `SAFETY_BACKUP_MIN_AGE_DAYS` days beyond the newest
 * {@link SAFETY_BACKUPS_KEPT}; returns the names.
 *
 * @example
 * ```ts
 * await pruneSafetyBackups("data/backups");
 * ```
 */
export async function pruneSafetyBackups(
  dir: string,
  protect: Set<string> = new Set(),
): Promise<string[]> {
  const dest = new FolderDestination(dir);
  const doomed = selectSafetyBackupsToPrune(await dest.list(), SAFETY_BACKUPS_KEPT, protect);
  for (const n of doomed) await dest.remove(n);
  return doomed;
}
