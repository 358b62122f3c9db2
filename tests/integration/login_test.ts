import assert from "node:assert/strict";
import { GOOD_PASSWORD, testApp } from "../helpers.ts";
import { attemptsUsed } from "../../kv/rate_limits.ts";

/** Strips what legitimately differs between two answers (request ids, nonces). */
function normalize(html: string): string {
  return html.replace(/nonce="[^"]*"/g, "").replace(/[0-9a-f-]{36}/g, "");
}

Deno.test("login: success lands in the default workspace; sign out ends the session", async () => {
  const t = await testApp();
  try {
    const { email, location } = await t.signup("kim@example.com", "Kim");
    assert.equal(location, "/w/kim");
    const first = t.jar.header();
    let res = await t.post("/logout", {});
    assert.equal(res.status, 303);
    assert.equal(res.headers.get("location"), "/login?m=signed_out");
    assert.match(res.headers.get("set-cookie")!, /lodge_session=;.*Max-Age=0/);
    // The old cookie is dead on the very next request.
    res = await t.app.request(`${t.origin}/w/kim`, { headers: { cookie: first } });
    assert.equal(res.status, 303);
    assert.equal(res.headers.get("location"), "/login?next=%2Fw%2Fkim&m=signed_out");

    res = await t.request("/login?m=signed_out");
    assert.match(await res.text(), /You have signed out/);

    res = await t.post("/login", { email: " KIM@example.com", password: GOOD_PASSWORD });
    assert.equal(res.status, 303);
    assert.equal(res.headers.get("location"), "/w/kim");
    assert.notEqual(t.jar.header(), first);
    assert.equal((await t.request("/w/kim")).status, 200);
    void email;
  } finally {
    t.close();
  }
});

Deno.test("login: unknown email and wrong password give the same 401 page", async () => {
  const t = await testApp();
  try {
    await t.signup("known@example.com");
    t.jar.cookies.clear();
    const wrong = await t.post("/login", {
      email: "known@example.com",
      password: "wrong-password-1",
    });
    const unknown = await t.post("/login", {
      email: "nobody@example.com",
      password: "wrong-password-1",
    });
    assert.equal(wrong.status, 401);
    assert.equal(unknown.status, 401);
    const a = normalize(await wrong.text()).replace("known@example.com", "X");
    const b = normalize(await unknown.text()).replace("nobody@example.com", "X");
    assert.equal(a, b);
    assert.match(a, /The email address or password is incorrect/);
    assert.equal(wrong.headers.get("set-cookie"), null);

    const empty = await t.post("/login", { email: "", password: "" });
    assert.equal(empty.status, 422);
  } finally {
    t.close();
  }
});

Deno.test("login: next is honoured only for same-site relative paths", async () => {
  const t = await testApp();
  try {
    const { email } = await t.signup("nx@example.com", "Nx");
    const cases: [string, string][] = [
      ["/account", "/account"],
      ["/w/nx?tab=members", "/w/nx?tab=members"],
      ["//evil.example", "/w/nx"],
      ["/\\evil.example", "/w/nx"],
      ["https://evil.example/", "/w/nx"],
      ["javascript:alert(1)", "/w/nx"],
      ["evil.example", "/w/nx"],
      ["/\t/evil.example", "/w/nx"],
    ];
    for (const [next, expected] of cases) {
      t.jar.cookies.clear();
      const res = await t.post("/login", { email, password: GOOD_PASSWORD, next });
      assert.equal(res.status, 303, next);
      assert.equal(res.headers.get("location"), expected, next);
    }
    // The sign-in page carries next into its form, escaped.
    t.jar.cookies.clear();
    const page = await (await t.request("/login?next=%2Fw%2Fnx%22%3E")).text();
    assert.match(page, /name="next" value="\/w\/nx%22%3E"/);
  } finally {
    t.close();
  }
});

Deno.test("login: 10 failures in the window → 429 with Retry-After, per account and per address", async () => {
  const t = await testApp({ loginRateLimitMax: 10, loginRateLimitWindow: 900 });
  try {
    const { email } = await t.signup("rl@example.com");
    t.jar.cookies.clear();
    for (let i = 0; i < 10; i++) {
      const res = await t.post("/login", { email, password: `wrong-${i}-password` }, {
        ip: `198.51.100.${i}`,
      });
      assert.equal(res.status, 401);
    }
    // Per account: even the right password from a new address waits.
    let res = await t.post("/login", { email, password: GOOD_PASSWORD }, { ip: "203.0.113.9" });
    assert.equal(res.status, 429);
    // Sliding window: until the ten fade to nine, at most the rest of this window and a tenth
    // of the next.
    const retry = Number(res.headers.get("retry-after"));
    assert.ok(retry >= 1 && retry <= 990, `Retry-After ${retry}`);
    assert.match(await res.text(), /Too many failed sign-in attempts/);

    // Per client address, across accounts; X-Forwarded-For is ignored without TRUST_PROXY.
    for (let i = 0; i < 10; i++) {
      res = await t.post("/login", { email: `other${i}@example.com`, password: "nope-nope-nope" }, {
        ip: "192.0.2.77",
        headers: { "x-forwarded-for": `10.0.0.${i}` },
      });
      assert.equal(res.status, 401);
    }
    res = await t.post("/login", { email: "fresh@example.com", password: "nope-nope-nope" }, {
      ip: "192.0.2.77",
      headers: { "x-forwarded-for": "10.9.9.9" },
    });
    assert.equal(res.status, 429);
    // An unknown account is limited exactly like a known one.
    for (let i = 0; i < 10; i++) {
      await t.post("/login", { email: "ghost@example.com", password: "nope-nope-nope" }, {
        ip: `198.18.0.${i}`,
      });
    }
    res = await t.post("/login", { email: "ghost@example.com", password: "nope-nope-nope" }, {
      ip: "198.18.1.1",
    });
    assert.equal(res.status, 429);
  } finally {
    t.close();
  }
});

Deno.test("login: with TRUST_PROXY the forwarded address is the client", async () => {
  const t = await testApp({ trustProxy: true, loginRateLimitMax: 3 });
  try {
    for (let i = 0; i < 3; i++) {
      await t.post("/login", { email: `p${i}@example.com`, password: "nope-nope-nope" }, {
        ip: "127.0.0.1",
        headers: { "x-forwarded-for": "203.0.113.50" },
      });
    }
    let res = await t.post("/login", { email: "p9@example.com", password: "nope-nope-nope" }, {
      ip: "127.0.0.1",
      headers: { "x-forwarded-for": "203.0.113.50" },
    });
    assert.equal(res.status, 429);
    res = await t.post("/login", { email: "p9@example.com", password: "nope-nope-nope" }, {
      ip: "127.0.0.1",
      headers: { "x-forwarded-for": "203.0.113.51" },
    });
    assert.equal(res.status, 401);
  } finally {
    t.close();
  }
});

Deno.test("logout: GET is 405; a successful sign-in does not use up the failure budget", async () => {
  const t = await testApp({ loginRateLimitMax: 2 });
  try {
    const res = await t.request("/logout");
    assert.equal(res.status, 405);
    assert.equal(res.headers.get("allow"), "POST");
    const { email } = await t.signup("ok@example.com");
    for (let i = 0; i < 5; i++) {
      t.jar.cookies.clear();
      assert.equal((await t.post("/login", { email, password: GOOD_PASSWORD })).status, 303);
    }
  } finally {
    t.close();
  }
});

Deno.test("login: a refused sign-in marks both fields invalid and ties them to the alert; odd input is echoed safely", async () => {
  const t = await testApp();
  try {
    await t.signup("lee@example.com");
    t.jar.cookies.clear();
    let res = await t.post("/login", { email: "lee@example.com", password: "wrong-password-1" });
    assert.equal(res.status, 401);
    let html = await res.text();
    assert.match(html, /<div id="login-error" class="alert alert-error" role="alert">/);
    for (const id of ["f-email", "f-password"]) {
      const input = html.match(new RegExp(`<input id="${id}"[^>]*>`))![0];
      assert.match(input, /aria-invalid="true"/, id);
      assert.match(input, /aria-describedby="login-error"/, id);
    }
    // A NUL or escape typed into a field comes back visible, never raw in the HTML.
    res = await t.post("/login", { email: "lee\u0000\u001b@example.com", password: "x".repeat(9) });
    html = await res.text();
    assert.equal(res.status, 401);
    // deno-lint-ignore no-control-regex
    assert.ok(!/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/.test(html), "no control characters");
    assert.match(html, /value="lee\ufffd\ufffd@example.com"/);
  } finally {
    t.close();
  }
});

Deno.test("login: a burst of correct sign-ins from one address is never told it failed, and leaves nothing counted", async () => {
  const t = await testApp({ loginRateLimitMax: 10, loginRateLimitWindow: 900 });
  try {
    const emails: string[] = [];
    for (let i = 0; i < 16; i++) emails.push((await t.signup(`burst${i}@example.com`)).email);
    const form = (email: string, password: string) => ({
      method: "POST",
      headers: { origin: t.origin, "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ email, password }),
    });
    const env = { remoteAddr: { hostname: "203.0.113.50" } }; // one office behind one address
    const send = (email: string, password: string) =>
      t.app.request(`${t.origin}/login`, form(email, password), env);
    // 16 people sign in at once, each with the right password.
    const answers = await Promise.all(emails.map((e) => send(e, GOOD_PASSWORD)));
    for (const res of answers) {
      if (res.status === 303) continue;
      assert.equal(res.status, 429);
      assert.equal(res.headers.get("retry-after"), "2");
      const html = await res.text();
      assert.match(html, /being checked right now\. Try again in a few seconds/);
      assert.doesNotMatch(html, /failed/);
    }
    assert.ok(answers.filter((r) => r.status === 303).length >= 10);
    // Counted in the window each attempt fell in: this one or, if a boundary just passed, the last.
    const used = async () => {
      const subject = { bucket: "login-ip", subject: "203.0.113.50" };
      const now = Date.now();
      return await attemptsUsed(t.kv, subject, 900, now) +
        await attemptsUsed(t.kv, subject, 900, now - 900_000);
    };
    assert.equal(await used(), 0);
    // Mixed: 8 right and 8 wrong at once; afterwards exactly the failures are counted.
    const mixed = await Promise.all(
      emails.slice(0, 16).map((e, i) => send(e, i % 2 ? GOOD_PASSWORD : "wrong-password-9")),
    );
    const failed = mixed.filter((r) => r.status === 401).length;
    assert.ok(failed >= 1);
    assert.equal(await used(), failed);
  } finally {
    t.close();
  }
});

Deno.test("login: the per-address limit counts an IPv6 client by its /64", async () => {
  const t = await testApp({ loginRateLimitMax: 3, loginRateLimitWindow: 900 });
  try {
    for (let i = 0; i < 3; i++) {
      const res = await t.post("/login", {
        email: `v6-${i}@example.com`,
        password: "nope-nope-nope",
      }, {
        ip: `2001:db8:5:6::${i + 1}`,
      });
      assert.equal(res.status, 401);
    }
    const same64 = await t.post(
      "/login",
      { email: "v6-x@example.com", password: "nope-nope-nope" },
      {
        ip: "2001:db8:5:6:ffff:1:2:3",
      },
    );
    assert.equal(same64.status, 429, "another address in the same /64 shares the budget");
    const other64 = await t.post("/login", {
      email: "v6-y@example.com",
      password: "nope-nope-nope",
    }, {
      ip: "2001:db8:5:7::1",
    });
    assert.equal(other64.status, 401);
  } finally {
    t.close();
  }
});
