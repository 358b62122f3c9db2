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
  /** When the holder took it (ms); shown when the lease is found held. */
  startedAt?: number;
  /** Who holds it, for people: e.g. "deno task backup (pid 4242 on host-1)". */
  holder?: string;
  /** Set while a heartbeat renews it (ms between renewals). */
  heartbeatMs?: number;
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
  /** Take the lease even from a live holder (an operator who knows the holder is gone). */
  force?: boolean;
  /** Who is taking it, for people (kept in {@link Lease.holder}). */
  holder?: string;
  /** The heartbeat interval the caller will renew at (kept in {@link Lease.heartbeatMs}). */
  heartbeatMs?: number;
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
  if (v && v.until > now && !(options.takeFinished && v.finishedAt) && !options.force) return null;
  const lease: Lease = {
    owner: options.owner ?? INSTANCE_ID,
    until: now + holdMs,
    startedAt: now,
    ...(options.holder ? { holder: options.holder } : {}),
    ...(options.heartbeatMs ? { heartbeatMs: options.heartbeatMs } : {}),
  };
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
export async function finishLease(
  kv: Deno.Kv,
  held: HeldLease,
  now = Date.now(),
  keepUntil = held.lease.until,
): Promise<void> {
  const key = keys.cronLease(held.job);
  const ttl = Math.max(1, keepUntil - now);
  const { heartbeatMs: _, ...lease } = held.lease;
  await kv.atomic().check({ key, versionstamp: held.versionstamp })
    .set(key, { ...lease, until: keepUntil, finishedAt: now }, { expireIn: ttl }).commit();
}

/**
 * Extends a lease this caller still holds to `now + holdMs`; null when it was lost
 * (it lapsed and was retaken, or an operator forced it).
 *
 * @example
 * ```ts
 * held = (await renewLease(kv, held, 90_000)) ?? held;
 * ```
 */
export async function renewLease(
  kv: Deno.Kv,
  held: HeldLease,
  holdMs: number,
  now = Date.now(),
): Promise<HeldLease | null> {
  const key = keys.cronLease(held.job);
  const lease = { ...held.lease, until: now + holdMs };
  const res = await kv.atomic().check({ key, versionstamp: held.versionstamp })
    .set(key, lease, { expireIn: holdMs }).commit();
  return res.ok ? { job: held.job, lease, versionstamp: res.versionstamp } : null;
}

/** A lease kept alive by {@link startHeartbeat}. */
export interface Heartbeat {
  /** The lease as last renewed (pass it to finishLease / releaseLease). */
  readonly held: HeldLease;
  /** True once a renewal found the lease taken by someone else. */
  readonly lost: boolean;
  /** Stops renewing (waits for a renewal in flight). */
  stop(): Promise<void>;
}

/**
 * Renews `held` every `everyMs` for `holdMs`, so a short lease stays held while the work
 * runs and lapses soon after the process dies (killed, machine lost): a crashed holder
 * blocks the job for at most `holdMs`, not for the whole run's budget.
 *
 * @example
 * ```ts
 * const beat = startHeartbeat(kv, held, 90_000, 30_000);
 * try { await work(); } finally { await beat.stop(); }
 * await finishLease(kv, beat.held);
 * ```
 */
export function startHeartbeat(
  kv: Deno.Kv,
  held: HeldLease,
  holdMs: number,
  everyMs: number,
  onLost: () => void = () => {},
): Heartbeat {
  let current = held;
  let lost = false;
  let inFlight: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    if (lost) return;
    inFlight = inFlight.then(async () => {
      const next = await renewLease(kv, current, holdMs).catch(() => current);
      if (next) current = next;
      else {
        lost = true;
        onLost();
      }
    });
  }, everyMs);
  return {
    get held() {
      return current;
    },
    get lost() {
      return lost;
    },
    async stop() {
      clearInterval(timer);
      await inFlight;
    },
  };
}

/**
 * Reads a job's lease (null when none is held).
 *
 * @example
 * ```ts
 * const lease = await getLease(kv, "backup");
 * ```
 */
export async function getLease(kv: Deno.Kv, job: string, now = Date.now()): Promise<Lease | null> {
  const v = (await kv.get<Lease>(keys.cronLease(job))).value;
  return v && v.until > now ? v : null;
}

/**
 * Says who holds a lease and until when, for an operator.
 *
 * @example
 * ```ts
 * describeLease(lease); // "held by deno task backup (pid 42 on web-1) since …, until …"
 * ```
 */
export function describeLease(lease: Lease): string {
  const iso = (ms: number) => new Date(ms).toISOString();
  const who = lease.holder ?? `instance ${lease.owner}`;
  const since = lease.startedAt ? ` since ${iso(lease.startedAt)}` : "";
  const state = lease.finishedAt
    ? ` (finished at ${iso(lease.finishedAt)}; kept so a late cron firing does not run again)`
    : lease.heartbeatMs
    ? ` (renewed every ${Math.round(lease.heartbeatMs / 1000)} s while it runs: ` +
      `if that process is gone, it lapses by then)`
    : "";
  return `held by ${who}${since}, until ${iso(lease.until)}${state}`;
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
