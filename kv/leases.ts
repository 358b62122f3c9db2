/**
 * KV leases for scheduled jobs: every instance registers the same `Deno.cron`, and the lease
 * makes exactly one of them do the work per tick.
 *
 * A finished run keeps its lease until it lapses (so an instance whose tick fires a few
 * seconds late does not run the job again); a failed run releases it so a retry may run.
 *
 * @example
 * ```ts
 * const held = await acquireLease(kv, "nightly_backup", 3_600_000);
 * if (held) {
 *   try { await work(); await finishLease(kv, held); }
 *   catch (err) { await releaseLease(kv, held); throw err; }
 * }
 * ```
 * @module
 */
import * as keys from "./keys.ts";

/** ["cron_leases", job]: who holds a job's lease, until when (ms), and whether it finished. */
export interface Lease {
  owner: string;
  until: number;
  /** Set when the run finished; the lease then only keeps later firings from re-running. */
  finishedAt?: number;
}

/** A lease this caller holds (pass it to {@link finishLease} / {@link releaseLease}). */
export interface HeldLease {
  job: string;
  lease: Lease;
  versionstamp: string;
}

/** This process's id as a lease owner. */
export const INSTANCE_ID: string = crypto.randomUUID();

/** Options of {@link acquireLease}. */
export interface AcquireOptions {
  now?: number;
  owner?: string;
  /** Also take a lease whose holder already finished (a run by hand, not from cron). */
  takeFinished?: boolean;
}

/**
 * Takes the lease for `job` for `holdMs` unless another run holds a live one.
 *
 * @example
 * ```ts
 * const held = await acquireLease(kv, "rotate_signing_keys", 600_000);
 * if (!held) return; // another instance runs it
 * ```
 */
export async function acquireLease(
  kv: Deno.Kv,
  job: string,
  holdMs: number,
  options: AcquireOptions = {},
): Promise<HeldLease | null> {
  const now = options.now ?? Date.now();
  const entry = await kv.get<Lease>(keys.cronLease(job));
  const v = entry.value;
  if (v && v.until > now && !(options.takeFinished && v.finishedAt)) return null;
  const lease: Lease = { owner: options.owner ?? INSTANCE_ID, until: now + holdMs };
  const res = await kv.atomic().check(entry)
    .set(keys.cronLease(job), lease, { expireIn: holdMs })
    .commit();
  return res.ok ? { job, lease, versionstamp: res.versionstamp } : null;
}

/**
 * Releases a lease this caller still holds (a no-op if it lapsed and was retaken).
 *
 * @example
 * ```ts
 * await releaseLease(kv, held);
 * ```
 */
export async function releaseLease(kv: Deno.Kv, held: HeldLease): Promise<void> {
  const key = keys.cronLease(held.job);
  await kv.atomic().check({ key, versionstamp: held.versionstamp }).delete(key).commit();
}

/**
 * Marks a held lease finished; it is kept until it lapses.
 *
 * @example
 * ```ts
 * await finishLease(kv, held);
 * ```
 */
export async function finishLease(kv: Deno.Kv, held: HeldLease, now = Date.now()): Promise<void> {
  const key = keys.cronLease(held.job);
  const ttl = Math.max(1, held.lease.until - now);
  await kv.atomic().check({ key, versionstamp: held.versionstamp })
    .set(key, { ...held.lease, finishedAt: now }, { expireIn: ttl }).commit();
}

/**
 * Runs `fn` only when this caller takes the lease, then marks it finished (or releases it
 * when `fn` throws). Returns whether it ran.
 *
 * @example
 * ```ts
 * await withLease(kv, "rotate_signing_keys", 600_000, rotate);
 * ```
 */
export async function withLease(
  kv: Deno.Kv,
  job: string,
  holdMs: number,
  fn: () => Promise<void>,
  options: AcquireOptions = {},
): Promise<boolean> {
  const held = await acquireLease(kv, job, holdMs, options);
  if (!held) return false;
  try {
    await fn();
  } catch (err) {
    await releaseLease(kv, held).catch(() => {});
    throw err;
  }
  await finishLease(kv, held, options.now);
  return true;
}
