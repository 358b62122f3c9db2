/**
 * KV leases for cron jobs: every instance registers the same `Deno.cron`, and the lease makes
 * exactly one of them do the work per tick. The lease is not released after the run: it lapses
 * by itself, so an instance whose tick fires a few seconds late does not run the job again.
 *
 * @example
 * ```ts
 * await withCronLease(kv, "rotate_signing_keys", 10 * 60_000, async () => { ... });
 * ```
 * @module
 */
import * as keys from "../kv/keys.ts";

/** ["cron_leases", job]: who holds a job's lease and until when (ms). */
export interface CronLease {
  owner: string;
  until: number;
}

/** This process's id as a lease owner. */
export const INSTANCE_ID: string = crypto.randomUUID();

/**
 * Takes the lease for `job` for `holdMs` unless another owner holds a live one.
 * True when this caller now holds it.
 *
 * @example
 * ```ts
 * if (await acquireCronLease(kv, "nightly_backup", 10 * 60_000)) await backup();
 * ```
 */
export async function acquireCronLease(
  kv: Deno.Kv,
  job: string,
  holdMs: number,
  now = Date.now(),
  owner = INSTANCE_ID,
): Promise<boolean> {
  const entry = await kv.get<CronLease>(keys.cronLease(job));
  if (entry.value && entry.value.until > now) return false;
  const res = await kv.atomic()
    .check(entry)
    .set(keys.cronLease(job), { owner, until: now + holdMs }, { expireIn: holdMs })
    .commit();
  return res.ok;
}

/**
 * Runs `fn` only when this caller takes the lease; returns whether it ran.
 *
 * @example
 * ```ts
 * await withCronLease(kv, "nightly_backup", 10 * 60_000, backup);
 * ```
 */
export async function withCronLease(
  kv: Deno.Kv,
  job: string,
  holdMs: number,
  fn: () => Promise<void>,
  now = Date.now(),
  owner = INSTANCE_ID,
): Promise<boolean> {
  if (!(await acquireCronLease(kv, job, holdMs, now, owner))) return false;
  await fn();
  return true;
}
