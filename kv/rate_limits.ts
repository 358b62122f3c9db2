/**
 * Fixed-window rate limits kept in KV, so they hold across every instance.
 *
 * {@link reserveAttempt} takes a slot with a compare-and-set before the expensive work,
 * so a burst of parallel requests cannot overshoot the limit; {@link releaseAttempt}
 * gives a slot back (e.g. a successful sign-in does not count as a failure).
 *
 * @example
 * ```ts
 * const r = await reserveAttempt(kv, [{ bucket: "login-ip", subject: ip }], 10, 900);
 * if (!r.ok) return tooMany(r.retryAfter);
 * ```
 * @module
 */
import * as keys from "./keys.ts";

/** One counter: a bucket name (what is limited) and a subject (who). */
export interface LimitSubject {
  bucket: string;
  subject: string;
}

/** Outcome of {@link reserveAttempt}. */
export type Reservation =
  | {
    ok: true;
    keys: Deno.KvKey[];
    windowEnd: number;
    /** The counters as this reservation left them (for {@link addRelease}). */
    taken?: { values: number[]; versionstamp: string };
    /** The entries asked for with `alsoRead`, read in the same `getMany` as the counters. */
    alsoRead: Deno.KvEntryMaybe<unknown>[];
  }
  | { ok: false; retryAfter: number };

function windowOf(windowSeconds: number, now: number) {
  const ms = windowSeconds * 1000;
  const start = Math.floor(now / ms) * ms;
  return { start, end: start + ms };
}

/**
 * Counts one attempt against every subject, unless any is already at `max`.
 * Returns the keys to pass to {@link releaseAttempt}, or seconds until the window ends.
 * `alsoRead` keys (at most 10 with the counters) are read in the same `getMany` as the
 * counters, saving the caller a round trip (e.g. sign-in reads the email index with them).
 */
export async function reserveAttempt(
  kv: Deno.Kv,
  subjects: LimitSubject[],
  max: number,
  windowSeconds: number,
  now = Date.now(),
  alsoRead: Deno.KvKey[] = [],
): Promise<Reservation> {
  const { start, end } = windowOf(windowSeconds, now);
  const counterKeys = subjects.map((s) => keys.rateLimit(s.bucket, s.subject, start));
  for (let i = 0; i < 20; i++) {
    const all = await kv.getMany<unknown[]>([...counterKeys, ...alsoRead]);
    const entries = all.slice(0, counterKeys.length) as Deno.KvEntryMaybe<number>[];
    if (entries.some((e) => (e.value ?? 0) >= max)) {
      return { ok: false, retryAfter: Math.max(1, Math.ceil((end - now) / 1000)) };
    }
    const op = kv.atomic();
    const values = entries.map((e) => (e.value ?? 0) + 1);
    entries.forEach((e, j) => op.check(e).set(e.key, values[j], { expireIn: end - now + 60_000 }));
    const res = await op.commit();
    if (res.ok) {
      return {
        ok: true,
        keys: counterKeys,
        windowEnd: end,
        taken: { values, versionstamp: res.versionstamp },
        alsoRead: all.slice(counterKeys.length),
      };
    }
  }
  // Heavy contention on one counter: refuse rather than let the attempt through.
  return { ok: false, retryAfter: 1 };
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
export function addRelease(
  op: Deno.AtomicOperation,
  reservation: {
    keys: Deno.KvKey[];
    windowEnd: number;
    taken?: { values: number[]; versionstamp: string };
  },
  now = Date.now(),
): boolean {
  if (!reservation.taken) return false;
  const { values, versionstamp } = reservation.taken;
  const expireIn = Math.max(1000, reservation.windowEnd - now + 60_000);
  reservation.keys.forEach((key, i) => {
    op.check({ key, versionstamp }).set(key, Math.max(0, values[i] - 1), { expireIn });
  });
  return true;
}

/** Gives back one slot on each counter taken by {@link reserveAttempt}. */
export async function releaseAttempt(
  kv: Deno.Kv,
  reservation: { keys: Deno.KvKey[]; windowEnd: number },
  now = Date.now(),
): Promise<void> {
  const expireIn = Math.max(1000, reservation.windowEnd - now + 60_000);
  // All counters in one read and one atomic (a sign-in's hot path), retried on conflict.
  for (let i = 0; i < 20; i++) {
    const entries = await kv.getMany<number[]>(reservation.keys);
    const op = kv.atomic();
    let changes = 0;
    for (const e of entries) {
      if (!e.value) continue;
      op.check(e).set(e.key, e.value - 1, { expireIn });
      changes++;
    }
    if (!changes || (await op.commit()).ok) return;
  }
}

/** Reads how many attempts a subject has used in the current window. */
export async function attemptsUsed(
  kv: Deno.Kv,
  s: LimitSubject,
  windowSeconds: number,
  now = Date.now(),
): Promise<number> {
  const { start } = windowOf(windowSeconds, now);
  return (await kv.get<number>(keys.rateLimit(s.bucket, s.subject, start))).value ?? 0;
}
