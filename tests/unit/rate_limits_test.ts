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
    // Three failures: the limit, until the window ends.
    refused = await reserveAttempt(kv, s, 3, 900, { now, pending: true });
    assert.ok(!refused.ok && refused.reason === "limit" && refused.retryAfter > 60);
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
    // The start of a window, so every moment below falls in the same 900 s window.
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
    // Settled failures do not go stale: they count until the window ends.
    const failed = await reserveAttempt(kv, s, 3, 900, { now: later, pending: true });
    assert.ok(failed.ok);
    await settleFailure(kv, failed, later);
    assert.equal(await attemptsUsed(kv, s[0], 900, later + STALE_IN_FLIGHT_MS * 2), 1);
  } finally {
    kv.close();
  }
});
