/**
 * Whether the backup folder (BACKUP_DIR, when no bucket is set) can be written, for
 * /health. Checked at most once a minute per folder: /health may be polled often.
 *
 * @example
 * ```ts
 * await backupFolderProblem(config); // null, or "BACKUP_DIR … is not writable (…)"
 * ```
 * @module
 */
import type { Config } from "./config.ts";
import { folderWriteProblem } from "./backup_store.ts";

const CHECK_EVERY_MS = 60_000;
const checked = new Map<string, { at: number; problem: Promise<string | null> }>();

/**
 * The folder's problem (cached for a minute), or null; always null with a bucket.
 *
 * @example
 * ```ts
 * const problem = await backupFolderProblem(config);
 * ```
 */
export function backupFolderProblem(
  config: Pick<Config, "backup">,
  now = Date.now(),
): Promise<string | null> {
  if (config.backup.s3) return Promise.resolve(null);
  const dir = config.backup.dir;
  const hit = checked.get(dir);
  if (hit && now - hit.at < CHECK_EVERY_MS) return hit.problem;
  const problem = folderWriteProblem(dir).catch(() => null);
  checked.set(dir, { at: now, problem });
  return problem;
}
