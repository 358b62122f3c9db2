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
    const jwt = (await ok.json()).token as string;
    await t.post("/account/sessions/revoke-others", {});
    const refused = await t.app.request(`${t.origin}/api/token`, {
      method: "POST",
      headers: { origin: t.origin, cookie: phone.header(), authorization: `Bearer ${jwt}` },
    });
    assert.equal(refused.status, 401);

    const boom = await t.request("/boom");
    assert.equal(boom.status, 500);
    const requestId = boom.headers.get("x-request-id")!;

    assert.ok(await flushObservability(5000));
    const events = sentry.events();
    const warning = events.find((e) => e.level === "warning") as {
      message?: string;
      tags?: Record<string, string>;
      breadcrumbs?: { category?: string; message?: string; data?: Record<string, unknown> }[];
    };
    assert.ok(warning, "warning event arrived");
    assert.equal(warning.tags?.reason, "signed_out_everywhere");
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
      const secret of [email, wrongPassword, GOOD_PASSWORD, phoneToken, jwt, jwt.split(".")[2]]
    ) {
      assert.ok(!everything.includes(secret), `a secret reached Sentry: ${secret.slice(0, 6)}…`);
    }
    assert.doesNotMatch(everything, /lodge_session=|"cookie"|authorization/i);
  } finally {
    t.close();
    await sentry.close();
  }
});
