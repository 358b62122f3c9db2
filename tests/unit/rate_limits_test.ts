import assert from "node:assert/strict";
import {
  addRelease,
  attemptsUsed,
  BUSY_RETRY_SECONDS,
  releaseAttempt,
  reserveAttempt,
  settleFailure,
  STALE_IN_FLIGHT_MS,
} from "../../kv/rate_limits.ts";

const subjects = [
  { bucket: "login-account", subject: "acct" },
  { bucket: "login-ip", subject: "192.0.2.1" },
];

Deno.test("releaseAttempt gives back one slot on every counter, never below zero", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const now = Date.now();
    const first = await reserveAttempt(kv, subjects, 10, 900, { now });
    const second = await reserveAttempt(kv, [subjects[1]], 10, 900, { now });
    assert.ok(first.ok && second.ok);
    assert.equal(await attemptsUsed(kv, subjects[0], 900, now), 1);
    assert.equal(await attemptsUsed(kv, subjects[1], 900, now), 2);
    await releaseAttempt(kv, first);
    assert.equal(await attemptsUsed(kv, subjects[0], 900, now), 0);
    assert.equal(await attemptsUsed(kv, subjects[1], 900, now), 1);
    await releaseAttempt(kv, first); // account counter is at 0 and stays there
    assert.equal(await attemptsUsed(kv, subjects[0], 900, now), 0);
    assert.equal(await attemptsUsed(kv, subjects[1], 900, now), 0);
  } finally {
    kv.close();
  }
});

Deno.test("concurrent releases each take exactly one slot", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const now = Date.now();
    const reservations = [];
    for (let i = 0; i < 8; i++) {
      reservations.push(await reserveAttempt(kv, subjects, 100, 900, { now }));
    }
    await Promise.all(
      reservations.slice(0, 5).map((r) => r.ok ? releaseAttempt(kv, r) : Promise.resolve()),
    );
    assert.equal(await attemptsUsed(kv, subjects[0], 900, now), 3);
    assert.equal(await attemptsUsed(kv, subjects[1], 900, now), 3);
  } finally {
    kv.close();
  }
});

Deno.test("addRelease gives the slots back inside another atomic, or fails it when the counters moved", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const now = Date.now();
    const r = await reserveAttempt(kv, subjects, 10, 900, { now });
    assert.ok(r.ok);
    let op = kv.atomic().set(["other"], 1);
    assert.ok(addRelease(op, r, now));
    assert.ok((await op.commit()).ok);
    assert.equal(await attemptsUsed(kv, subjects[0], 900, now), 0);
    assert.equal((await kv.get(["other"])).value, 1);

    // Another attempt in between: the release (and so the whole atomic) must not commit.
    const a = await reserveAttempt(kv, subjects, 10, 900, { now });
    const b = await reserveAttempt(kv, subjects, 10, 900, { now });
    assert.ok(a.ok && b.ok);
    op = kv.atomic().set(["other"], 2);
    addRelease(op, a, now);
    assert.equal((await op.commit()).ok, false);
    assert.equal((await kv.get(["other"])).value, 1);
    assert.equal(await attemptsUsed(kv, subjects[0], 900, now), 2);
    await releaseAttempt(kv, a, now);
    assert.equal(await attemptsUsed(kv, subjects[0], 900, now), 1);
  } finally {
    kv.close();
  }
});

Deno.test("reserveAttempt reads alsoRead keys with the counters, in order, and still counts", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const now = Date.now();
    await kv.set(["users_by_email", "ada@example.com"], "user-1");
    const r = await reserveAttempt(kv, subjects, 10, 900, {
      now,
      alsoRead: [["users_by_email", "ada@example.com"], ["users_by_email", "nobody@example.com"]],
    });
    assert.ok(r.ok);
    assert.deepEqual(r.alsoRead.map((e) => e.value), ["user-1", null]);
    assert.equal(await attemptsUsed(kv, subjects[0], 900, now), 1);
    // A refused reservation reads nothing for the caller and counts nothing.
    for (let i = 0; i < 9; i++) await reserveAttempt(kv, subjects, 10, 900, { now });
    const refused = await reserveAttempt(kv, subjects, 10, 900, { now, alsoRead: [["x"]] });
    assert.equal(refused.ok, false);
    assert.equal(await attemptsUsed(kv, subjects[0], 900, now), 10);
  } finally {
    kv.close();
  }
});

Deno.test("pending reservations: in-flight attempts refuse as busy, settled failures as the limit", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const now = Date.now();
    const s = [subjects[1]];
    const held = [];
    for (let i = 0; i < 3; i++) {
      const r = await reserveAttempt(kv, s, 3, 900, { now, pending: true });
      assert.ok(r.ok);
      held.push(r);
    }
    // Three in flight, none failed yet: "busy", come back in seconds.
    let refused = await reserveAttempt(kv, s, 3, 900, { now, pending: true });
    assert.deepEqual(refused, { ok: false, reason: "busy", retryAfter: BUSY_RETRY_SECONDS });
    // One succeeds, two fail: a slot is free again; the failures stay counted.
    await releaseAttempt(kv, held[0]);
    await settleFailure(kv, held[1]);
    await settleFailure(kv, held[2]);
    assert.equal(await attemptsUsed(kv, s[0], 900, now), 2);
    const third = await reserveAttempt(kv, s, 3, 900, { now, pending: true });
    assert.ok(third.ok);
    // Two failed and one in flight: still only busy.
    refused = await reserveAttempt(kv, s, 3, 900, { now, pending: true });
    assert.equal(!refused.ok && refused.reason, "busy");
    await settleFailure(kv, third);
    // Three failures: the limit, until the window ends and a third of the next has passed
    // (3 × 2/3 = 2 still count then).
    refused = await reserveAttempt(kv, s, 3, 900, { now, pending: true });
    const end = (Math.floor(now / 900_000) + 1) * 900_000;
    assert.ok(!refused.ok && refused.reason === "limit");
    assert.equal(refused.retryAfter, Math.ceil((end - now + 300_000) / 1000));
    // Settling twice, or settling a final reservation, changes nothing.
    await settleFailure(kv, third);
    assert.equal(await attemptsUsed(kv, s[0], 900, now), 3);
  } finally {
    kv.close();
  }
});

Deno.test("counters stored as plain numbers (earlier versions) read as settled slots", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const now = Date.now();
    const first = await reserveAttempt(kv, subjects, 5, 900, { now });
    assert.ok(first.ok);
    for (const key of first.keys) await kv.set(key, 5);
    assert.equal(await attemptsUsed(kv, subjects[0], 900, now), 5);
    const refused = await reserveAttempt(kv, subjects, 5, 900, { now, pending: true });
    assert.equal(!refused.ok && refused.reason, "limit");
    await releaseAttempt(kv, { ...first, pending: false });
    assert.equal(await attemptsUsed(kv, subjects[0], 900, now), 4);
  } finally {
    kv.close();
  }
});

Deno.test("slots left in flight by a process that died free themselves, never a lockout", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    // The start of a window, so every moment below falls in the same 900 s window (the counts
    // read below are that window's own; the same across a boundary is tested further down).
    const t0 = Math.floor(Date.now() / 900_000) * 900_000;
    const s = [subjects[0]];
    // Three correct sign-ins are being checked when the process is killed: nobody settles them.
    for (let i = 0; i < 3; i++) {
      assert.ok((await reserveAttempt(kv, s, 3, 900, { now: t0, pending: true })).ok);
    }
    // Right after the restart: honestly "busy" (they might still be running somewhere)...
    const soon = await reserveAttempt(kv, s, 3, 900, { now: t0 + 1000, pending: true });
    assert.equal(!soon.ok && soon.reason, "busy");
    // ...but once they are older than any real check, their slots are free again.
    const later = t0 + STALE_IN_FLIGHT_MS + 1000;
    assert.equal(await attemptsUsed(kv, s[0], 900, later), 0);
    const again = await reserveAttempt(kv, s, 3, 900, { now: later, pending: true });
    assert.ok(again.ok);
    await releaseAttempt(kv, again, later);
    assert.equal(await attemptsUsed(kv, s[0], 900, later), 0);
    // Settled failures do not go stale: they keep counting.
    const failed = await reserveAttempt(kv, s, 3, 900, { now: later, pending: true });
    assert.ok(failed.ok);
    await settleFailure(kv, failed, later);
    assert.equal(await attemptsUsed(kv, s[0], 900, later + STALE_IN_FLIGHT_MS * 2), 1);
  } finally {
    kv.close();
  }
});

// --- Sliding window: the previous window's count weighs in, fading out over the current one ---

/** A window boundary (a multiple of every window length used below). */
const B = 1_800_000_000_000;
const acct = [subjects[0]];

/** Takes `n` slots at `now` and settles them as failures (a pending sign-in that failed). */
async function fail(
  kv: Deno.Kv,
  s: typeof subjects,
  n: number,
  max: number,
  window: number,
  now: number,
) {
  for (let i = 0; i < n; i++) {
    const r = await reserveAttempt(kv, s, max, window, { now, pending: true });
    assert.ok(r.ok, `failure ${i + 1} at ${now - B} ms`);
    await settleFailure(kv, r, now);
  }
}

Deno.test("sliding window: a burst of failures across a boundary does not get a fresh budget", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    // QA's repro: a 10 s window, 10 allowed, a wrong password every 100 ms from 1.5 s before a
    // boundary to 1.5 s after it. A fixed window let 10 through before and 10 more after.
    const granted: number[] = [];
    for (let t = B - 1500; t < B + 1500; t += 100) {
      const r = await reserveAttempt(kv, acct, 10, 10, { now: t, pending: true });
      if (!r.ok) {
        assert.equal(r.reason, "limit");
        continue;
      }
      granted.push(t - B);
      await settleFailure(kv, r, t);
    }
    // The ten before the boundary, then one more only when a tenth of the window has passed
    // (10 × 0.9 = 9 of them still weigh in).
    assert.deepEqual(granted, [...Array.from({ length: 10 }, (_, i) => -1500 + 100 * i), 1000]);
    // From then on, about one a second (a tenth of the previous window's count fades per second).
    assert.equal((await reserveAttempt(kv, acct, 10, 10, { now: B + 1999 })).ok, false);
    assert.equal((await reserveAttempt(kv, acct, 10, 10, { now: B + 2000 })).ok, true);
  } finally {
    kv.close();
  }
});

Deno.test("sliding window: halfway through the next window, half the previous count is forgiven", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    await fail(kv, acct, 10, 10, 900, B - 600_000);
    // A millisecond before halfway, a little over 5 still counts: four more fit, not five.
    const before = await Deno.openKv(":memory:");
    try {
      await fail(before, acct, 10, 10, 900, B - 600_000);
      await fail(before, acct, 4, 10, 900, B + 449_999);
      assert.equal((await reserveAttempt(before, acct, 10, 900, { now: B + 449_999 })).ok, false);
    } finally {
      before.close();
    }
    // At exactly halfway, 10 × 0.5 = 5: five more fit, the sixth is refused.
    await fail(kv, acct, 5, 10, 900, B + 450_000);
    const refused = await reserveAttempt(kv, acct, 10, 900, { now: B + 450_000 });
    assert.ok(!refused.ok && refused.reason === "limit");
    // The old window is forgotten entirely once the window after it ends: only the five remain.
    assert.ok((await reserveAttempt(kv, acct, 10, 900, { now: B + 900_000 + 450_000 })).ok);
  } finally {
    kv.close();
  }
});

Deno.test("sliding window: Retry-After is the true wait until one more attempt is allowed", async () => {
  // [failures: [count, at (ms from B)][], asked at, expected wait in ms] for 10 per 900 s.
  const cases: [[number, number][], number, number][] = [
    // 10 failures in the previous window, asked as the new one starts: 10·(1 − e) + 1 ≤ 10 at
    // e = 0.1, i.e. 90 s in.
    [[[10, -600_000]], 0, 90_000],
    // 10 failures in the current window, 300 s before its end: the whole next window's 90 s too.
    [[[10, -600_000]], -300_000, 390_000],
    // 7 before the boundary and 3 after it: 7·(1 − e) + 3 + 1 ≤ 10 from e = 1/7 (128 571.4 ms,
    // so the first whole millisecond is 128 572), not a whole number of seconds away.
    [[[7, -1000], [3, 1000]], 2000, 128_572 - 2000],
    // QA's shape in a 900 s window: 10 failures 1.5 s before the boundary, asked 0.2 s after it.
    [[[10, -1500]], 200, 90_000 - 200],
  ];
  for (const [failures, at, wait] of cases) {
    const kv = await Deno.openKv(":memory:");
    try {
      for (const [n, t] of failures) await fail(kv, acct, n, 10, 900, B + t);
      const refused = await reserveAttempt(kv, acct, 10, 900, { now: B + at });
      assert.ok(!refused.ok && refused.reason === "limit", `refused at ${at}`);
      assert.equal(refused.retryAfter, Math.max(1, Math.ceil(wait / 1000)), `wait ${wait} ms`);
      // A moment before the true wait: still refused; at it: allowed.
      assert.equal((await reserveAttempt(kv, acct, 10, 900, { now: B + at + wait - 1 })).ok, false);
      if (refused.retryAfter > 1) {
        const early = B + at + (refused.retryAfter - 1) * 1000;
        assert.equal((await reserveAttempt(kv, acct, 10, 900, { now: early })).ok, false);
      }
      assert.ok(
        (await reserveAttempt(kv, acct, 10, 900, { now: B + at + refused.retryAfter * 1000 })).ok,
      );
    } finally {
      kv.close();
    }
  }
});

Deno.test("sliding window: Retry-After is that of the subject that waits longest, at least 1 s", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    // The address failed 10 times in the previous window: allowed 90 s into this one, 40 s on.
    await fail(kv, [subjects[1]], 10, 10, 900, B - 1_000_000);
    // The account failed 10 times in this window: allowed 90 s into the next, 940 s on.
    await fail(kv, [subjects[0]], 10, 10, 900, B - 860_000);
    const at = B - 850_000;
    let refused = await reserveAttempt(kv, [subjects[1]], 10, 900, { now: at });
    assert.ok(!refused.ok && refused.retryAfter === 40, JSON.stringify(refused));
    refused = await reserveAttempt(kv, subjects, 10, 900, { now: at });
    assert.ok(!refused.ok && refused.retryAfter === 940, JSON.stringify(refused));
    // A subject whose estimate fades to the limit a millisecond from now: 1 s, never 0.
    refused = await reserveAttempt(kv, [subjects[1]], 10, 900, { now: B - 900_000 + 89_999 });
    assert.ok(!refused.ok && refused.retryAfter === 1);
  } finally {
    kv.close();
  }
});

Deno.test("sliding window: a concurrent burst across a boundary does not overshoot", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    // 10 failures last window; 30 at once halfway through this one: exactly five get through.
    await fail(kv, acct, 10, 10, 900, B - 600_000);
    const half = await Promise.all(
      Array.from({ length: 30 }, () => reserveAttempt(kv, acct, 10, 900, { now: B + 450_000 })),
    );
    assert.equal(half.filter((r) => r.ok).length, 5);
  } finally {
    kv.close();
  }
  const kv2 = await Deno.openKv(":memory:");
  try {
    // The sign-in shape (two subjects and the email index in one read), 40 at once: half of them
    // a millisecond before a boundary, half a millisecond after, interleaved. Ten in all.
    await kv2.set(["users_by_email", "ada@example.com"], "user-1");
    const burst = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        reserveAttempt(kv2, subjects, 10, 900, {
          now: i % 2 ? B + 1 : B - 1,
          pending: true,
          alsoRead: [["users_by_email", "ada@example.com"]],
        })),
    );
    const granted = burst.filter((r) => r.ok);
    assert.equal(granted.length, 10);
    for (const r of granted) assert.deepEqual(r.ok && r.alsoRead.map((e) => e.value), ["user-1"]);
    for (const r of granted) await settleFailure(kv2, r, B + 2);
    const after = await reserveAttempt(kv2, subjects, 10, 900, { now: B + 10 });
    assert.ok(!after.ok && after.reason === "limit");
  } finally {
    kv2.close();
  }
});

Deno.test("sliding window: the previous window's in-flight slots refuse as busy, and go stale too", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const held = [];
    for (let i = 0; i < 3; i++) {
      const r = await reserveAttempt(kv, acct, 3, 900, { now: B - 500, pending: true });
      assert.ok(r.ok);
      held.push(r);
    }
    // Across the boundary they still fill the limit, but nothing failed yet: busy.
    const busy = await reserveAttempt(kv, acct, 3, 900, { now: B + 500, pending: true });
    assert.deepEqual(busy, { ok: false, reason: "busy", retryAfter: BUSY_RETRY_SECONDS });
    // Settled (in the previous window's counter, where they were taken): now the limit.
    for (const r of held.slice(0, 2)) await settleFailure(kv, r, B + 600);
    const refused = await reserveAttempt(kv, acct, 3, 900, { now: B + 700 });
    assert.ok(!refused.ok && refused.reason === "busy"); // 2 failed + 1 in flight
    await settleFailure(kv, held[2], B + 800);
    const limit = await reserveAttempt(kv, acct, 3, 900, { now: B + 900 });
    // 3·(1 − e) + 1 ≤ 3 from e = 1/3: 300 s into the window, 299.1 s from now.
    assert.ok(!limit.ok && limit.reason === "limit" && limit.retryAfter === 300);
  } finally {
    kv.close();
  }
  const kv2 = await Deno.openKv(":memory:");
  try {
    // In flight just before the boundary when the process died: freed once stale, never a lockout.
    for (let i = 0; i < 3; i++) {
      assert.ok((await reserveAttempt(kv2, acct, 3, 900, { now: B - 500, pending: true })).ok);
    }
    const later = B - 500 + STALE_IN_FLIGHT_MS + 1;
    const r = await reserveAttempt(kv2, acct, 3, 900, { now: later, pending: true });
    assert.ok(r.ok);
    assert.equal(await attemptsUsed(kv2, acct[0], 900, later), 1);
  } finally {
    kv2.close();
  }
});

Deno.test("sliding window: a bare number in the previous window (earlier versions) counts as settled", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const r = await reserveAttempt(kv, acct, 10, 900, { now: B - 1000 });
    assert.ok(r.ok);
    await kv.set(r.keys[0], 10);
    const refused = await reserveAttempt(kv, acct, 10, 900, { now: B + 1000, pending: true });
    assert.ok(!refused.ok && refused.reason === "limit" && refused.retryAfter === 89);
  } finally {
    kv.close();
  }
});
