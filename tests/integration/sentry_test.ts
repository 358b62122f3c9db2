import assert from "node:assert/strict";
import { CookieJar, GOOD_PASSWORD, testApp } from "../helpers.ts";
import { fakeSentry } from "../fakes/sentry.ts";
import { flushObservability, initObservability, scrubString } from "../../lib/observability.ts";
import { sessionCookieName } from "../../lib/auth.ts";

Deno.test("scrubber removes emails, JWTs, bearer credentials, long tokens and secret query values", () => {
  const s = scrubString(
    "ada@example.com Bearer abc.def eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln " +
      "/api/events?access_token=xyz&x=1 " + "A".repeat(43),
  );
  assert.doesNotMatch(
    s,
    /ada@example\.com|abc\.def|eyJ|xyz|AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/,
  );
  assert.match(
    s,
    /\[email\].*Bearer \[Filtered\].*\[jwt\].*access_token=\[Filtered\]&x=1.*\[token\]/,
  );
});

Deno.test("Sentry: breadcrumbs and a warning for an unexpected sign-out arrive, with no secret", async () => {
  const sentry = fakeSentry();
  initObservability({ sentryDsn: sentry.dsn, appEnv: "test", version: "test" });
  const t = await testApp();
  // A route that fails, to see route errors arrive with their request id.
  t.app.get("/boom", () => {
    throw new Error("boom for grace@example.org");
  });
  try {
    const email = "grace@example.org";
    const wrongPassword = "my-wrong-password-9";
    await t.signup(email);
    const failed = await t.app.request(`${t.origin}/login`, {
      method: "POST",
      headers: { origin: t.origin, "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ email, password: wrongPassword }),
    });
    assert.equal(failed.status, 401);

    // A second device signs in; the first signs every other device out.
    const phone = new CookieJar();
    phone.update(
      await t.app.request(`${t.origin}/login`, {
        method: "POST",
        headers: { origin: t.origin, "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ email, password: GOOD_PASSWORD }),
      }),
    );
    const phoneToken = phone.cookies.get(sessionCookieName(t.config))!;
    const ok = await t.request("/api/token", { method: "POST", headers: { origin: t.origin } });
    const okBody = await ok.json();
    const jwt = okBody.token as string;
    const userId = okBody.userId as string;
    assert.match(userId, /^[0-9a-z]{26}$/);
    await t.post("/account/sessions/revoke-others", {});
    const refused = await t.app.request(`${t.origin}/api/token`, {
      method: "POST",
      headers: { origin: t.origin, cookie: phone.header(), authorization: `Bearer ${jwt}` },
    });
    assert.equal(refused.status, 401);

    // A device that only holds the live channel: its session times out for inactivity, the
    // stream's heartbeat notices, ends it and reports it (no token refresh involved).
    const idle = await testApp({
      sessionIdleTimeout: 2,
      sessionTouchInterval: 1,
      eventsHeartbeat: 1,
    });
    let idleUserId = "";
    try {
      await idle.signup("ida@example.org");
      const idleToken = await (await idle.request("/api/token", {
        method: "POST",
        headers: { origin: idle.origin },
      })).json();
      idleUserId = idleToken.userId;
      const stream = await idle.app.request(`${idle.origin}/api/events`, {
        headers: { authorization: `Bearer ${idleToken.token}` },
      });
      assert.match(await stream.text(), /event: session\.revoked\ndata: .*"idle_timeout"/);
    } finally {
      idle.close();
    }

    const boom = await t.request("/boom");
    assert.equal(boom.status, 500);
    const requestId = boom.headers.get("x-request-id")!;

    assert.ok(await flushObservability(5000));
    type Warning = {
      message?: string;
      tags?: Record<string, string>;
      user?: { id?: string };
      breadcrumbs?: { category?: string; message?: string; data?: Record<string, unknown> }[];
    };
    const events = sentry.events();
    const warnings = events.filter((e) => e.level === "warning") as Warning[];
    // At revocation time, whether or not the phone ever asks for a token again (a device
    // usually learns of it over the live channel): one warning for the batch, with the user.
    const revokedWarning = warnings.find((w) => w.message === "session ended unexpectedly");
    assert.ok(revokedWarning, "revocation warning arrived");
    assert.equal(revokedWarning.tags?.reason, "signed_out_everywhere");
    assert.equal(revokedWarning.tags?.count, "1");
    assert.equal(revokedWarning.user?.id, userId);
    assert.ok(
      revokedWarning.breadcrumbs?.some((b) =>
        b.message === "sessions revoked" && b.data?.userId === userId
      ),
      "revocation breadcrumb rides along",
    );
    const idleWarning = warnings.find((w) =>
      w.message === "session ended unexpectedly" && w.tags?.reason === "idle_timeout"
    );
    assert.ok(idleWarning, "a session ending by inactivity on the live channel is reported");
    assert.equal(idleWarning.user?.id, idleUserId);
    // The phone's later refusal still knows whose session it was (kept in the revocation record).
    const warning = warnings.find((w) => w.message === "token refresh refused");
    assert.ok(warning, "refusal warning arrived");
    assert.equal(warning.tags?.reason, "signed_out_everywhere");
    assert.equal(warning.user?.id, userId);
    assert.equal(warning.tags?.userId, userId);
    const crumbs = warning.breadcrumbs ?? [];
    const has = (category: string, message: string, reason?: string) =>
      crumbs.some((b) =>
        b.category === category && b.message === message &&
        (reason === undefined || b.data?.reason === reason)
      );
    assert.ok(has("auth", "sign-in failed", "bad_password"), "failed sign-in breadcrumb");
    assert.ok(has("token", "token refreshed"), "successful refresh breadcrumb");
    assert.ok(has("session", "sessions revoked", "signed_out_everywhere"), "revocation breadcrumb");
    assert.ok(has("token", "token refresh refused", "signed_out_everywhere"), "refusal breadcrumb");

    const error = events.find((e) => e.level === "error") as { tags?: Record<string, string> };
    assert.ok(error, "route error arrived");
    assert.equal(error.tags?.request_id, requestId);

    const everything = sentry.raw().join("\n");
    for (
      const secret of [
        email,
        "ida@example.org",
        wrongPassword,
        GOOD_PASSWORD,
        phoneToken,
        jwt,
        jwt.split(".")[2],
      ]
    ) {
      assert.ok(!everything.includes(secret), `a secret reached Sentry: ${secret.slice(0, 6)}…`);
    }
    assert.doesNotMatch(everything, /lodge_session=|"cookie"|authorization/i);
  } finally {
    t.close();
    await sentry.close();
  }
});
