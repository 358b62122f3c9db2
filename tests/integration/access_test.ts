import assert from "node:assert/strict";
import { GOOD_PASSWORD, testApp } from "../helpers.ts";

function normalize(html: string): string {
  return html.replace(/nonce="[^"]*"/g, "").replace(/[0-9a-f-]{36}/g, "");
}

Deno.test("workspace: members only; others get the same 404 as a missing workspace", async () => {
  const t = await testApp();
  try {
    const a = await t.signup("owner@example.com", "Owner");
    t.jar.cookies.clear();
    await t.signup("stranger@example.com", "Stranger");
    const forbidden = await t.request(a.location);
    const missing = await t.request("/w/no-such-workspace");
    const invalid = await t.request("/w/..%2F..%2Fetc");
    assert.equal(forbidden.status, 404);
    assert.equal(missing.status, 404);
    assert.equal(invalid.status, 404);
    assert.equal(normalize(await forbidden.text()), normalize(await missing.text()));
  } finally {
    t.close();
  }
});

Deno.test("workspace: no session → sign-in with next; /api → 401 JSON; expired → message", async () => {
  const t = await testApp();
  try {
    let res = await t.request("/w/anything?x=1");
    assert.equal(res.status, 303);
    assert.equal(res.headers.get("location"), "/login?next=%2Fw%2Fanything%3Fx%3D1");
    res = await t.request("/api/me");
    assert.equal(res.status, 401);
    assert.equal(res.headers.get("content-type"), "application/json");
    const body = await res.json();
    assert.equal(body.error, "unauthenticated");
    assert.equal(body.reason, "missing");

    // Unknown cookie: cleared, and the same redirect.
    res = await t.request("/w/anything", {
      headers: { cookie: `lodge_session=${"A".repeat(43)}` },
    });
    assert.equal(res.status, 303);
    assert.match(res.headers.get("set-cookie") ?? "", /lodge_session=;/);

    // Signed in, then the stored session goes idle past the timeout.
    const { location } = await t.signup("idle@example.com");
    for await (const e of t.kv.list<{ lastSeenAt: number }>({ prefix: ["sessions"] })) {
      await t.kv.set(e.key, {
        ...e.value,
        lastSeenAt: Date.now() - t.config.sessionIdleTimeout * 1000 - 1,
      });
    }
    res = await t.request(location);
    assert.equal(res.status, 303);
    assert.match(res.headers.get("location")!, /^\/login\?next=.*&m=expired$/);
    res = await t.request(res.headers.get("location")!);
    assert.match(await res.text(), /Your session has expired/);
  } finally {
    t.close();
  }
});

Deno.test("workspace: signed-in API answers JSON", async () => {
  const t = await testApp();
  try {
    await t.signup("api@example.com", "Api User");
    const res = await t.request("/api/me");
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(body.user.email, "api@example.com");
    assert.deepEqual(body.workspaces.map((w: { slug: string }) => w.slug), ["api-user"]);
    assert.equal(body.user.passwordHash, undefined);
  } finally {
    t.close();
  }
});

Deno.test("csrf: cross-site unsafe requests are refused; same-origin passes", async () => {
  const t = await testApp();
  try {
    const { location } = await t.signup("csrf@example.com");
    const form = { email: "x@example.com", password: GOOD_PASSWORD };
    const attempts: Record<string, string>[] = [
      { origin: "https://evil.example" },
      { origin: "null" },
      { "sec-fetch-site": "cross-site" },
      { "sec-fetch-site": "same-site", origin: "http://sub.localhost:8000" },
      { "sec-fetch-site": "same-origin", origin: "https://evil.example" },
      {}, // neither header, but a cookie
    ];
    for (const headers of attempts) {
      const h = new Headers(headers);
      h.set("content-type", "application/x-www-form-urlencoded");
      const res = await t.request("/logout", { method: "POST", headers: h, body: "" });
      assert.equal(res.status, 403, JSON.stringify(headers));
      assert.match(await res.text(), /Request blocked/);
    }
    // Still signed in: none of them logged us out.
    assert.equal((await t.request(location)).status, 200);
    // JSON bodies too.
    const res = await t.request("/logout", {
      method: "POST",
      headers: { origin: "https://evil.example", "content-type": "application/json" },
      body: "{}",
    });
    assert.equal(res.status, 403);
    // Same origin by Sec-Fetch-Site alone passes.
    const ok = await t.request("/logout", {
      method: "POST",
      headers: { "sec-fetch-site": "same-origin" },
    });
    assert.equal(ok.status, 303);
    void form;
  } finally {
    t.close();
  }
});

Deno.test("headers: CSP with a fresh nonce per request that the island script carries", async () => {
  const t = await testApp();
  try {
    const r1 = await t.request("/login");
    const r2 = await t.request("/login");
    const csp = r1.headers.get("content-security-policy")!;
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /script-src 'nonce-[A-Za-z0-9+/=]+' 'strict-dynamic'/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.match(csp, /object-src 'none'/);
    assert.match(csp, /base-uri 'none'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    const nonce = csp.match(/'nonce-([^']+)'/)![1];
    const html = await r1.text();
    assert.match(
      html,
      new RegExp(
        `<script type="module" src="/static/build/islands-[0-9a-f]+\\.js" nonce="${
          nonce.replace(/[+/=]/g, "\\$&")
        }"`,
      ),
    );
    assert.notEqual(nonce, r2.headers.get("content-security-policy")!.match(/'nonce-([^']+)'/)![1]);
    assert.equal(r1.headers.get("x-content-type-options"), "nosniff");
    assert.equal(r1.headers.get("x-frame-options"), "DENY");
    assert.equal(r1.headers.get("cache-control"), "no-store");
    assert.match(r1.headers.get("x-request-id") ?? "", /^[0-9a-f-]{36}$/);
  } finally {
    t.close();
  }
});

Deno.test("static: hashed island bundle is immutable; other files revalidate; unknown → 404", async () => {
  const t = await testApp();
  try {
    const html = await (await t.request("/login")).text();
    const src = html.match(/src="(\/static\/build\/islands-[0-9a-f]+\.js)"/)![1];
    const js = await t.request(src);
    assert.equal(js.status, 200);
    assert.equal(js.headers.get("cache-control"), "public, max-age=31536000, immutable");
    assert.match(js.headers.get("content-type")!, /javascript/);
    const body = await js.text();
    assert.ok(body.length > 1000 && body.length < 60_000, `bundle ${body.length} bytes`);
    const css = await t.request("/static/app.css");
    assert.equal(css.status, 200);
    assert.match(css.headers.get("cache-control")!, /must-revalidate/);
    const again = await t.request("/static/app.css", {
      headers: { "if-none-match": css.headers.get("etag")! },
    });
    assert.equal(again.status, 304);
    assert.equal((await t.request("/static/../deno.json")).status, 404);
    assert.equal((await t.request("/static/nope.js")).status, 404);
  } finally {
    t.close();
  }
});

Deno.test("errors: friendly 404 page, JSON for /api, 500 without a stack trace", async () => {
  const t = await testApp();
  try {
    let res = await t.request("/nowhere");
    assert.equal(res.status, 404);
    assert.match(res.headers.get("content-type")!, /text\/html/);
    assert.match(await res.text(), /Page not found/);
    res = await t.request("/api/nowhere");
    assert.equal(res.status, 404);
    assert.equal((await res.json()).error, "not_found");

    // Corrupt one record so rendering the workspace page throws inside the route.
    const { location } = await t.signup("boom@example.com");
    for await (const e of t.kv.list({ prefix: ["user_workspaces"] })) await t.kv.set(e.key, null);
    const orig = console.error;
    console.error = () => {};
    try {
      res = await t.request(location);
    } finally {
      console.error = orig;
    }
    assert.equal(res.status, 500);
    const html = await res.text();
    assert.match(html, /Something went wrong/);
    assert.doesNotMatch(html, /Cannot read|TypeError|\.tsx?:\d|at \w+ \(/);
    assert.match(html, new RegExp(res.headers.get("x-request-id")!));
  } finally {
    t.close();
  }
});

Deno.test("health: ok with KV; 503 naming kv when KV fails", async () => {
  const t = await testApp();
  try {
    let res = await t.request("/health");
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(body.status, "ok");
    assert.equal(body.kv, "ok");
    assert.equal(typeof body.version, "string");
    t.kv.close();
    res = await t.request("/health");
    assert.equal(res.status, 503);
    const down = await res.json();
    assert.equal(down.status, "unavailable");
    assert.notEqual(down.kv, "ok");
    assert.deepEqual(down.failing, ["kv"]);
  } finally {
    try {
      t.close();
    } catch { /* already closed */ }
  }
});

Deno.test("login: an unknown email costs a password hash too (dummy verify)", async () => {
  const t = await testApp({ loginRateLimitMax: 1000 });
  try {
    await t.signup("timing@example.com");
    t.jar.cookies.clear();
    const time = async (email: string) => {
      const start = performance.now();
      const res = await t.post("/login", { email, password: "wrong-password-here" });
      assert.equal(res.status, 401);
      return performance.now() - start;
    };
    await time("warmup@example.com");
    const known: number[] = [];
    const unknown: number[] = [];
    for (let i = 0; i < 7; i++) {
      known.push(await time("timing@example.com"));
      unknown.push(await time(`nobody${i}@example.com`));
    }
    const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    // Skipping the hash for unknown accounts would make them ~100x faster.
    assert.ok(
      median(unknown) > median(known) * 0.5,
      `known ${median(known)} unknown ${median(unknown)}`,
    );
  } finally {
    t.close();
  }
});

Deno.test("error pages keep the signed-in header: a 404 never looks like being signed out", async () => {
  const t = await testApp();
  try {
    await t.signup("nia@example.com", "Nia");
    for (
      const path of [
        "/nope",
        "/w/does-not-exist",
        "/account/sessions/01aaaaaaaaaaaaaaaaaaaaaaaa/revoke",
      ]
    ) {
      const res = path.endsWith("/revoke")
        ? await t.request(path, { method: "POST", headers: { origin: t.origin } })
        : await t.request(path);
      assert.equal(res.status, 404, path);
      const html = await res.text();
      assert.match(html, /Sign out<\/button>/, path);
      assert.doesNotMatch(html, /Create account/, path);
    }
    // Signed out, the same 404 offers sign-in.
    t.jar.cookies.clear();
    const html = await (await t.request("/nope")).text();
    assert.match(html, /Create account/);
  } finally {
    t.close();
  }
});

Deno.test("API routes answer a wrong method with 405 and Allow, in JSON", async () => {
  const t = await testApp();
  try {
    for (
      const [method, path, allow] of [
        ["GET", "/api/token", "POST"],
        ["PUT", "/api/token", "POST"],
        ["DELETE", "/api/token", "POST"],
        ["POST", "/api/events", "GET, HEAD"],
        ["DELETE", "/api/events", "GET, HEAD"],
      ]
    ) {
      const res = await t.request(path, { method, headers: { origin: t.origin } });
      assert.equal(res.status, 405, `${method} ${path}`);
      assert.equal(res.headers.get("allow"), allow);
      assert.equal((await res.json()).error, "method_not_allowed");
    }
  } finally {
    t.close();
  }
});
