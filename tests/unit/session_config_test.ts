import assert from "node:assert/strict";
import { ConfigError, loadConfig } from "../../lib/config.ts";
import { describeUserAgent } from "../../lib/user_agent.ts";
import { acquireLease, finishLease, releaseLease, withLease } from "../../kv/leases.ts";
import { scrubEvent } from "../../lib/observability.ts";

Deno.test("config: token and banner settings default, accept short test values, refuse nonsense", () => {
  const d = loadConfig({});
  assert.equal(d.accessTokenTtl, 900);
  assert.equal(d.refreshBuffer, 120);
  assert.equal(d.statusBanner, true);
  assert.equal(d.sentryDsn, undefined);
  const short = loadConfig({
    ACCESS_TOKEN_TTL: "6",
    REFRESH_BUFFER: "3",
    SESSION_IDLE_TIMEOUT: "8",
    IDLE_WARNING: "4",
    STATUS_BANNER: "off",
  });
  assert.deepEqual(
    [short.accessTokenTtl, short.refreshBuffer, short.idleWarning, short.statusBanner],
    [6, 3, 4, false],
  );
  assert.equal(loadConfig({ ACCESS_TOKEN_TTL: "10" }).refreshBuffer, 5, "default fits the TTL");
  const bad: Record<string, string>[] = [
    { ACCESS_TOKEN_TTL: "15m" },
    { ACCESS_TOKEN_TTL: "60", REFRESH_BUFFER: "60" },
    { SESSION_IDLE_TIMEOUT: "10", IDLE_WARNING: "10" },
    { SIGNING_KEY_ROTATION: "5" },
    { SENTRY_DSN: "not a dsn" },
    { STATUS_BANNER: "maybe" },
  ];
  for (const env of bad) {
    assert.throws(() => loadConfig(env), (e) => {
      assert.ok(e instanceof ConfigError);
      assert.ok(
        Object.keys(env).includes(e.variable),
        `${e.variable} named for ${JSON.stringify(env)}`,
      );
      return true;
    });
  }
});

Deno.test("user agent: common browsers described briefly", () => {
  assert.equal(
    describeUserAgent(
      "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
    ),
    "Chrome 126 on Linux",
  );
  assert.equal(
    describeUserAgent(
      "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    ),
    "Safari 17 on iOS",
  );
  assert.equal(
    describeUserAgent(
      "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0",
    ),
    "Firefox 128 on Windows",
  );
  assert.equal(
    describeUserAgent(
      "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0",
    ),
    "Edge 126 on Windows",
  );
  assert.equal(describeUserAgent(""), "Unknown device");
});

Deno.test("cron lease: one holder at a time; it lapses by itself", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const t0 = Date.now();
    const take = (job: string, now: number, owner: string, takeFinished = false) =>
      acquireLease(kv, job, 1000, { now, owner, takeFinished });
    const a = await take("job", t0, "a");
    assert.ok(a);
    assert.equal(await take("job", t0 + 500, "b"), null);
    assert.equal(await take("job", t0 + 500, "a"), null, "not re-entrant");
    assert.ok(await take("job", t0 + 1001, "b"));
    const racing = await Promise.all(["c", "d", "e"].map((o) => take("other", t0, o)));
    assert.equal(racing.filter(Boolean).length, 1);

    // Finished: kept until it lapses, unless a run by hand takes it over.
    const f = (await take("finish", t0, "x"))!;
    await finishLease(kv, f, t0 + 10);
    assert.equal(await take("finish", t0 + 20, "y"), null);
    assert.ok(await take("finish", t0 + 20, "y", true));
    // Released: free at once; releasing a lease someone else retook changes nothing.
    const r = (await take("release", t0, "x"))!;
    await releaseLease(kv, r);
    const retaken = await take("release", t0, "y");
    assert.ok(retaken);
    await releaseLease(kv, r);
    assert.equal(await take("release", t0, "z"), null);

    // withLease: runs once; a failing run releases the lease for a retry.
    let runs = 0;
    assert.equal(
      await withLease(kv, "w", 1000, () => Promise.resolve(void runs++), { now: t0 }),
      true,
    );
    assert.equal(
      await withLease(kv, "w", 1000, () => Promise.resolve(void runs++), { now: t0 + 1 }),
      false,
    );
    await assert.rejects(() => withLease(kv, "fails", 1000, () => Promise.reject(new Error("x"))));
    assert.equal(await withLease(kv, "fails", 1000, () => Promise.resolve(void runs++)), true);
    assert.equal(runs, 2);
  } finally {
    kv.close();
  }
});

Deno.test("scrubEvent drops cookies, auth headers and bodies, keeps only the user id", () => {
  const event = scrubEvent({
    message: "failed for bob@example.com",
    user: { id: "u1", email: "bob@example.com", ip_address: "203.0.113.9" },
    request: {
      url: "https://lodge.test/api/events?access_token=eyJa.eyJb.sig",
      headers: { Cookie: "lodge_session=abc", Authorization: "Bearer xyz", Accept: "*/*" },
      cookies: { lodge_session: "abc" },
      data: "password=hunter2",
    },
    extra: { password: "hunter2", nested: { token: "t", note: "from bob@example.com" } },
  });
  const text = JSON.stringify(event);
  for (const secret of ["bob@example.com", "hunter2", "abc", "xyz", "eyJa", "203.0.113.9"]) {
    assert.ok(!text.includes(secret), secret);
  }
  assert.deepEqual(event.user, { id: "u1" });
  assert.equal(event.request?.headers?.Accept, "*/*");
});
