/**
 * Sliding-window rate limits kept in KV, so they hold across every instance.
 *
 * Each subject has one counter per window (windows are aligned to the clock). A limit is
 * checked against the sliding-window estimate (the approach Cloudflare describes): the previous
 * window's count, weighted by the share of the previous window still inside the last
 * `windowSeconds`, plus the current window's count —
 * `previous × (1 − elapsed / window) + current`. One more attempt is allowed while that stays
 * ≤ `max`. So a burst just before a boundary still counts right after it, and fades out over the
 * next window: 10 failures at 14:59 leave 9 counted at 15:01:30 (for 15-minute windows), not 0.
 * The estimate assumes the previous window's attempts were spread evenly over it; the worst case
 * (attempts bunched at the end of one window, then at the end of the next) still lets up to about
 * twice `max` into one window-length span, but never a fresh budget within seconds.
 *
 * {@link reserveAttempt} takes a slot with a compare-and-set before the expensive work, so a
 * burst of parallel requests cannot overshoot the limit: it reads the previous, current and next
 * window's counters of every subject in one `getMany` and checks all of them in the atomic that
 * takes the slot. (The next window is there for attempts whose clock is already past the
 * boundary — another instance's, or a request that read the time just after this one: they count
 * in full, and they conflict with this write instead of slipping past it.)
 *
 * Limits on *failures* (sign-in, password change) reserve with `pending: true`: the slot is in
 * flight until the outcome is known — a success gives it back ({@link addRelease} /
 * {@link releaseAttempt}), a failure keeps it ({@link settleFailure}). A refusal that only attempts
 * still in flight cause (of either window: the estimate without them would allow one more) is
 * reported as `busy` (try again in seconds), not as too many failures.
 *
 * A counter is `[used, inFlight]`: slots taken in its window, and the start times of those still
 * in flight. An in-flight slot older than {@link STALE_IN_FLIGHT_MS} belonged to a process that
 * died mid-attempt: it is freed (an attempt that never finished is not a failure, and must not
 * leave the account "busy"). A bare number, from earlier versions, is `[n, []]`. Counters expire
 * after two windows (plus a minute): a window's counter is still read during the next one.
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

/** A stored counter: slots used in its window, and the start times (ms) of those in flight. */
type Counter = [used: number, inFlight: number[]];

/** An attempt in flight longer than this was lost with its process (a check takes < 1 s). */
export const STALE_IN_FLIGHT_MS = 2 * 60_000;

/** Seconds a `busy` refusal asks the client to wait: attempts in flight end within that. */
export const BUSY_RETRY_SECONDS = 2;

/** Keys one `kv.getMany` may read: counters (three per subject) and `alsoRead` together. */
export const MAX_READ_KEYS = 10;

/** What a granted reservation holds (for releasing or settling it). */
export interface Held {
  /** The current window's counters, one per subject (the ones the reservation wrote). */
  keys: Deno.KvKey[];
  /** When those counters stop being read: the end of the window after theirs. */
  readUntil: number;
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
    /** `limit`: the attempts are used up; `busy`: only attempts in flight fill the limit. */
    reason: "limit" | "busy";
    /** Seconds until one more attempt would be allowed (at least 1). */
    retryAfter: number;
  };

/** Options of {@link reserveAttempt}. */
export interface ReserveOptions {
  /** When "now" is (tests). */
  now?: number;
  /**
   * Keys read in the same `getMany` as the counters, saving the caller a round trip (sign-in
   * reads the email index with them). With the counters' three per subject, at most
   * {@link MAX_READ_KEYS}.
   */
  alsoRead?: Deno.KvKey[];
  /** The attempt's outcome comes later: release on success, {@link settleFailure} on failure. */
  pending?: boolean;
}

function windowOf(windowSeconds: number, now: number) {
  const ms = windowSeconds * 1000;
  const start = Math.floor(now / ms) * ms;
  return { ms, start, end: start + ms };
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

/** Slots of one subject in the previous, current and next window. */
type Counts = [previous: number, current: number, next: number];

/** ⌊a / b⌋ for non-negative integers, exact where the float quotient rounds. */
function floorDiv(a: number, b: number): number {
  let q = Math.floor(a / b);
  while (q > 0 && q * b > a) q--;
  while ((q + 1) * b <= a) q++;
  return q;
}

/**
 * Whether one more slot keeps the estimate within `max`, `elapsed` ms into a window of `ms`:
 * `previous × (1 − elapsed / ms) + current + next + 1 ≤ max`, in integers (times `ms`).
 */
function fits([previous, current, next]: Counts, max: number, ms: number, elapsed: number) {
  return previous * (ms - elapsed) + (current + next + 1) * ms <= max * ms;
}

/**
 * Milliseconds from `elapsed` (into the current window) until one more slot fits, if nothing else
 * is counted meanwhile. The estimate only falls as time passes, so the first moment that fits is
 * the answer: in the current window, or the next (where the current one is the previous), or
 * the one after.
 */
function waitMs([previous, current, next]: Counts, max: number, ms: number, elapsed: number) {
  const ahead: [number, number][] = [[previous, current + next], [current, next], [next, 0]];
  for (const [k, [before, during]] of ahead.entries()) {
    const room = max - during - 1; // what one more slot leaves for the fading previous window
    if (room < 0) continue;
    // before × (ms − e) ≤ room × ms  ⟺  ms − e ≤ ⌊room × ms / before⌋
    const e = before === 0 ? 0 : Math.max(0, ms - floorDiv(room * ms, before));
    return Math.max(0, k * ms + e - elapsed);
  }
  return 3 * ms - elapsed; // max < 1 (config never allows it): nothing fits, ever
}

/**
 * Counts one attempt against every subject, unless that would take any subject's sliding-window
 * estimate over `max`. Returns what to pass to {@link releaseAttempt} / {@link settleFailure}, or
 * why not and the seconds until one more attempt would be allowed.
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
  const { ms, start, end } = windowOf(windowSeconds, now);
  const elapsed = now - start;
  // Per subject: the previous, current and next window's counter, in that order.
  const counterKeys = subjects.flatMap((s) =>
    [start - ms, start, end].map((w) => keys.rateLimit(s.bucket, s.subject, w))
  );
  if (counterKeys.length + alsoRead.length > MAX_READ_KEYS) {
    throw new RangeError(
      `reserveAttempt reads ${counterKeys.length} counters and ${alsoRead.length} more keys; ` +
        `one getMany reads at most ${MAX_READ_KEYS}`,
    );
  }
  const current = counterKeys.filter((_, i) => i % 3 === 1);
  for (let i = 0; i < 20; i++) {
    const all = await kv.getMany<unknown[]>([...counterKeys, ...alsoRead]);
    const entries = all.slice(0, counterKeys.length);
    const counters = entries.map((e) => counterOf(e.value, now));
    let limitMs = -1; // the longest wait of a subject refused on settled attempts alone
    let busy = false; // a subject refused only because of attempts in flight
    for (let j = 0; j < subjects.length; j++) {
      const three = counters.slice(3 * j, 3 * j + 3);
      const used = three.map(([u]) => u) as Counts;
      const settled = three.map(([u, f]) => Math.max(0, u - f.length)) as Counts;
      if (!fits(settled, max, ms, elapsed)) {
        limitMs = Math.max(limitMs, waitMs(settled, max, ms, elapsed));
      } else if (!fits(used, max, ms, elapsed)) busy = true;
    }
    if (limitMs >= 0) {
      const seconds = Math.max(1, Math.ceil(limitMs / 1000), busy ? BUSY_RETRY_SECONDS : 0);
      return { ok: false, reason: "limit", retryAfter: seconds };
    }
    if (busy) return { ok: false, reason: "busy", retryAfter: BUSY_RETRY_SECONDS };
    // Every counter read is checked: one that moved since (another attempt, in any of the three
    // windows) means the estimate is out of date, and this reads again.
    const op = kv.atomic();
    for (const e of entries) op.check(e);
    const values = subjects.map((_, j): Counter => {
      const [used, inFlight] = counters[3 * j + 1];
      return [used + 1, pending ? [...inFlight, now] : inFlight];
    });
    const expireIn = end + ms - now + 60_000;
    current.forEach((key, j) => op.set(key, values[j], { expireIn }));
    const res = await op.commit();
    if (res.ok) {
      return {
        ok: true,
        keys: current,
        readUntil: end + ms,
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
  const expireIn = Math.max(1000, reservation.readUntil - now + 60_000);
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
  const expireIn = Math.max(1000, reservation.readUntil - now + 60_000);
  for (let i = 0; i < 20; i++) {
    const entries = await kv.getMany<unknown[]>(reservation.keys);
    const op = kv.atomic();
    let changes = 0;
    for (const e of entries) {
      if (e.value === null) continue; // expired after its windows: nothing to give back
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

/**
 * Reads how many slots a subject's counter for the current window holds (in flight included).
 * This is the window's own count, not the sliding estimate the limit compares with `max`.
 */
export async function attemptsUsed(
  kv: Deno.Kv,
  s: LimitSubject,
  windowSeconds: number,
  now = Date.now(),
): Promise<number> {
  const { start } = windowOf(windowSeconds, now);
  return counterOf((await kv.get(keys.rateLimit(s.bucket, s.subject, start))).value, now)[0];
}
