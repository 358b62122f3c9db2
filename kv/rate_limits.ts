/**
 * Fixed-window rate limits kept in KV, so they hold across every instance.
 *
 * {@link reserveAttempt} takes a slot with a compare-and-set before the expensive work,
 * so a burst of parallel requests cannot overshoot the limit. Limits on *failures* (sign-in,
 * password change) reserve with `pending: true`: the slot is in flight until the outcome is
 * known — a success gives it back ({@link addRelease} / {@link releaseAttempt}), a failure
 * keeps it ({@link settleFailure}). A refusal caused only by attempts still in flight is
 * reported as `busy` (try again in seconds), not as too many failures.
 *
 * A counter is `[used, inFlight]`: slots taken in the window, and the start times of those still
 * in flight. An in-flight slot older than {@link STALE_IN_FLIGHT_MS} belonged to a process that
 * died mid-attempt: it is freed (an attempt that never finished is not a failure, and must not
 * leave the account "busy"). A bare number, from earlier versions, is `[n, []]`.
 *
 * @example
 * ```ts
 * const r = await reserveAttempt(kv, [{ bucket: "login-ip", subject: ip }], 10, 900, {
 *   pending: true,
 * });
 * if (!r.ok) return r.reason === "busy" ? tryAgainSoon(r.retryAfter) : tooMany(r.retryAfter);
 * ```
 * @module
 */
import * as keys from "./keys.ts";

/** One counter: a bucket name (what is limited) and a subject (who). */
export interface LimitSubject {
  bucket: string;
  subject: string;
}

/** A stored counter: slots used in the window, and the start times (ms) of those in flight. */
type Counter = [used: number, inFlight: number[]];

/** An attempt in flight longer than this was lost with its process (a check takes < 1 s). */
export const STALE_IN_FLIGHT_MS = 2 * 60_000;

/** Seconds a `busy` refusal asks the client to wait: attempts in flight end within that. */
export const BUSY_RETRY_SECONDS = 2;

/** What a granted reservation holds (for releasing or settling it). */
export interface Held {
  keys: Deno.KvKey[];
  windowEnd: number;
  /** Whether the slots are in flight until settled (`pending: true` at reserve time). */
  pending: boolean;
  /** When the slots were taken (marks them in the counters' in-flight lists). */
  at: number;
  /** The counters as this reservation left them (for {@link addRelease}). */
  taken?: { values: Counter[]; versionstamp: string };
}

/** Outcome of {@link reserveAttempt}. */
export type Reservation =
  | Held & {
    ok: true;
    /** The entries asked for with `alsoRead`, read in the same `getMany` as the counters. */
    alsoRead: Deno.KvEntryMaybe<unknown>[];
  }
  | {
    ok: false;
    /** `limit`: the window's attempts are used up; `busy`: only attempts in flight fill it. */
    reason: "limit" | "busy";
    retryAfter: number;
  };

/** Options of {@link reserveAttempt}. */
export interface ReserveOptions {
  /** When "now" is (tests). */
  now?: number;
  /**
   * Keys (at most 10 with the counters) read in the same `getMany` as the counters, saving
   * the caller a round trip (sign-in reads the email index with them).
   */
  alsoRead?: Deno.KvKey[];
  /** The attempt's outcome comes later: release on success, {@link settleFailure} on failure. */
  pending?: boolean;
}

function windowOf(windowSeconds: number, now: number) {
  const ms = windowSeconds * 1000;
  const start = Math.floor(now / ms) * ms;
  return { start, end: start + ms };
}

/** Reads a stored counter as of `now`: in-flight slots gone stale are freed. */
function counterOf(value: unknown, now: number): Counter {
  if (!Array.isArray(value)) return [typeof value === "number" ? value : 0, []];
  const used = Number(value[0]) || 0;
  const inFlight = Array.isArray(value[1]) ? value[1].filter((t) => typeof t === "number") : [];
  const live = inFlight.filter((t) => now - t < STALE_IN_FLIGHT_MS);
  return [Math.max(0, used - (inFlight.length - live.length)), live];
}

/** The in-flight list without one entry for `at` (this reservation's). */
function without(inFlight: number[], at: number): number[] {
  const i = inFlight.indexOf(at);
  return i < 0 ? inFlight : [...inFlight.slice(0, i), ...inFlight.slice(i + 1)];
}

/**
 * Counts one attempt against every subject, unless any is already at `max`.
 * Returns what to pass to {@link releaseAttempt} / {@link settleFailure}, or why not and the
 * seconds to wait.
 */
export async function reserveAttempt(
  kv: Deno.Kv,
  subjects: LimitSubject[],
  max: number,
  windowSeconds: number,
  options: ReserveOptions = {},
): Promise<Reservation> {
  const now = options.now ?? Date.now();
  const alsoRead = options.alsoRead ?? [];
  const pending = options.pending ?? false;
  const { start, end } = windowOf(windowSeconds, now);
  const counterKeys = subjects.map((s) => keys.rateLimit(s.bucket, s.subject, start));
  for (let i = 0; i < 20; i++) {
    const all = await kv.getMany<unknown[]>([...counterKeys, ...alsoRead]);
    const entries = all.slice(0, counterKeys.length);
    const counters = entries.map((e) => counterOf(e.value, now));
    if (counters.some(([used, inFlight]) => used - inFlight.length >= max)) {
      return { ok: false, reason: "limit", retryAfter: Math.max(1, Math.ceil((end - now) / 1000)) };
    }
    if (counters.some(([used]) => used >= max)) {
      return { ok: false, reason: "busy", retryAfter: BUSY_RETRY_SECONDS };
    }
    const op = kv.atomic();
    const values = counters.map(([used, inFlight]): Counter => [
      used + 1,
      pending ? [...inFlight, now] : inFlight,
    ]);
    entries.forEach((e, j) => op.check(e).set(e.key, values[j], { expireIn: end - now + 60_000 }));
    const res = await op.commit();
    if (res.ok) {
      return {
        ok: true,
        keys: counterKeys,
        windowEnd: end,
        pending,
        at: now,
        taken: { values, versionstamp: res.versionstamp },
        alsoRead: all.slice(counterKeys.length),
      };
    }
  }
  // Heavy contention on one counter: refuse rather than let the attempt through.
  return { ok: false, reason: "busy", retryAfter: 1 };
}

/** One counter after a success: its slot back (and out of flight, when it was pending). */
function released([used, inFlight]: Counter, held: Held): Counter {
  // A slot that went stale was freed already: nothing more to give back.
  if (held.pending && !inFlight.includes(held.at)) return [used, inFlight];
  return [Math.max(0, used - 1), held.pending ? without(inFlight, held.at) : inFlight];
}

/**
 * Adds "give the slots back" to another atomic (e.g. the session a successful sign-in
 * creates), without reading the counters again: it checks that they are still exactly as
 * the reservation left them. When another attempt changed them meanwhile the atomic fails;
 * commit the other writes alone and call {@link releaseAttempt} then.
 *
 * @example
 * ```ts
 * const op = addSession(kv.atomic(), policy, session);
 * if (!addRelease(op, reservation) || !(await op.commit()).ok) { ... }
 * ```
 */
export function addRelease(op: Deno.AtomicOperation, reservation: Held, now = Date.now()): boolean {
  if (!reservation.taken) return false;
  const { values, versionstamp } = reservation.taken;
  const expireIn = Math.max(1000, reservation.windowEnd - now + 60_000);
  reservation.keys.forEach((key, i) => {
    op.check({ key, versionstamp }).set(key, released(values[i], reservation), {
      expireIn,
    });
  });
  return true;
}

/** Whether a stored value is exactly this counter (nothing stale left to prune). */
function sameStored(value: unknown, c: Counter): boolean {
  return Array.isArray(value) && value[0] === c[0] && Array.isArray(value[1]) &&
    value[1].length === c[1].length;
}

/** Changes every counter of a reservation in one atomic, re-reading and retrying on conflict. */
async function updateCounters(
  kv: Deno.Kv,
  reservation: Held,
  change: (c: Counter) => Counter,
  now: number,
): Promise<void> {
  const expireIn = Math.max(1000, reservation.windowEnd - now + 60_000);
  for (let i = 0; i < 20; i++) {
    const entries = await kv.getMany<unknown[]>(reservation.keys);
    const op = kv.atomic();
    let changes = 0;
    for (const e of entries) {
      if (e.value === null) continue; // expired with its window: nothing to give back
      const before = counterOf(e.value, now);
      const after = change(before);
      if (after[0] === before[0] && after[1] === before[1] && sameStored(e.value, before)) continue;
      op.check(e).set(e.key, after, { expireIn });
      changes++;
    }
    if (!changes || (await op.commit()).ok) return;
  }
}

/** Gives back one slot on each counter taken by {@link reserveAttempt} (a success). */
export function releaseAttempt(kv: Deno.Kv, reservation: Held, now = Date.now()): Promise<void> {
  return updateCounters(kv, reservation, (c) => released(c, reservation), now);
}

/**
 * Records that a pending attempt failed: its slot stays used and is no longer in flight.
 * (Without `pending` there is nothing to settle.)
 */
export async function settleFailure(
  kv: Deno.Kv,
  reservation: Held,
  now = Date.now(),
): Promise<void> {
  if (!reservation.pending) return;
  await updateCounters(
    kv,
    reservation,
    ([used, inFlight]) => [used, without(inFlight, reservation.at)],
    now,
  );
}

/** Reads how many attempts a subject has used in the current window (in flight included). */
export async function attemptsUsed(
  kv: Deno.Kv,
  s: LimitSubject,
  windowSeconds: number,
  now = Date.now(),
): Promise<number> {
  const { start } = windowOf(windowSeconds, now);
  return counterOf((await kv.get(keys.rateLimit(s.bucket, s.subject, start))).value, now)[0];
}
