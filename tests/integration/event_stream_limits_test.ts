/**
 * `GET /api/events` caps the streams one session and one user may hold open on an instance
 * (routes/events.ts: MAX_STREAMS_PER_SESSION, MAX_STREAMS_PER_USER).
 */
import assert from "node:assert/strict";
import { CookieJar, GOOD_PASSWORD, testApp } from "../helpers.ts";
import {
  closeEventStreams,
  MAX_STREAMS_PER_SESSION,
  MAX_STREAMS_PER_USER,
  openEventStreamCount,
} from "../../routes/events.ts";

Deno.test("events: at most 8 streams per session and 32 per user on an instance, then 429", async () => {
  const t = await testApp();
  const open: Response[] = [];
  try {
    const { email } = await t.signup();
    const tokenFor = async (cookie: string) => {
      const res = await t.app.request(`${t.origin}/api/token`, {
        method: "POST",
        headers: { origin: t.origin, cookie },
      });
      return (await res.json()).token as string;
    };
    const stream = (token: string) =>
      t.app.request(`${t.origin}/api/events`, { headers: { authorization: `Bearer ${token}` } });

    const first = await tokenFor(t.jar.header());
    // Concurrent opens must not slip past the cap.
    const burst = await Promise.all(
      Array.from({ length: MAX_STREAMS_PER_SESSION + 4 }, () => stream(first)),
    );
    const accepted = burst.filter((r) => r.status === 200);
    const refused = burst.filter((r) => r.status === 429);
    open.push(...accepted);
    assert.equal(accepted.length, MAX_STREAMS_PER_SESSION);
    assert.equal(refused.length, 4);
    const problem = await refused[0].json();
    assert.equal(problem.error, "too_many_streams");
    assert.match(problem.message, /at most 8 per session and 32 per user/);
    assert.equal(refused[0].headers.get("retry-after"), "30");

    // Closing one frees its place.
    await accepted[0].body!.cancel();
    open.shift();
    const again = await stream(first);
    assert.equal(again.status, 200);
    open.push(again);

    // Other sessions of the same user fill the per-user cap.
    for (let s = 1; s < MAX_STREAMS_PER_USER / MAX_STREAMS_PER_SESSION; s++) {
      const jar = new CookieJar();
      jar.update(
        await t.app.request(`${t.origin}/login`, {
          method: "POST",
          headers: { origin: t.origin, "content-type": "application/x-www-form-urlencoded" },
          body: new URLSearchParams({ email, password: GOOD_PASSWORD }),
        }),
      );
      const token = await tokenFor(jar.header());
      for (let i = 0; i < MAX_STREAMS_PER_SESSION; i++) {
        const r = await stream(token);
        assert.equal(r.status, 200);
        open.push(r);
      }
    }
    assert.equal(openEventStreamCount(), MAX_STREAMS_PER_USER);
    const fifthDevice = new CookieJar();
    fifthDevice.update(
      await t.app.request(`${t.origin}/login`, {
        method: "POST",
        headers: { origin: t.origin, "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ email, password: GOOD_PASSWORD }),
      }),
    );
    const over = await stream(await tokenFor(fifthDevice.header()));
    assert.equal(over.status, 429);
    assert.equal((await over.json()).error, "too_many_streams");

    // Another user is not affected.
    const other = await testApp({}, t.kv);
    await other.signup();
    const otherStream = await stream(await tokenFor(other.jar.header()));
    assert.equal(otherStream.status, 200);
    open.push(otherStream);
  } finally {
    await Promise.all(open.map((r) => r.body?.cancel().catch(() => {})));
    closeEventStreams();
    assert.equal(openEventStreamCount(), 0);
    t.close();
  }
});
