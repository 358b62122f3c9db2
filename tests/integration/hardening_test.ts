import assert from "node:assert/strict";
import { GOOD_PASSWORD, testApp } from "../helpers.ts";

Deno.test("signup: attempts are limited per client address (429 with Retry-After)", async () => {
  const t = await testApp({ signupRateLimitMax: 3, signupRateLimitWindow: 3600 });
  try {
    for (let i = 0; i < 3; i++) {
      const res = await t.post("/signup", { email: "taken@example.com", password: GOOD_PASSWORD }, {
        ip: "203.0.113.7",
      });
      assert.equal(res.status, i === 0 ? 303 : 409);
      t.jar.cookies.clear();
    }
    const res = await t.post("/signup", { email: "new@example.com", password: GOOD_PASSWORD }, {
      ip: "203.0.113.7",
    });
    assert.equal(res.status, 429);
    assert.ok(Number(res.headers.get("retry-after")) > 0);
    assert.match(await res.text(), /Too many sign-up attempts/);
    // Another address is not affected.
    const other = await t.post("/signup", { email: "new@example.com", password: GOOD_PASSWORD }, {
      ip: "203.0.113.8",
    });
    assert.equal(other.status, 303);
  } finally {
    t.close();
  }
});

Deno.test("routes: other methods get 405 with Allow", async () => {
  const t = await testApp();
  try {
    for (
      const [method, path, allow] of [
        ["PUT", "/login", "GET, HEAD, POST"],
        ["DELETE", "/signup", "GET, HEAD, POST"],
        ["PATCH", "/logout", "POST"],
        ["GET", "/logout", "POST"],
        ["POST", "/w/anything", "GET, HEAD"],
        // Paths without a per-route 405 of their own: found from the app's route table.
        ["POST", "/health", "GET, HEAD"],
        ["DELETE", "/api/me", "GET, HEAD"],
        ["POST", "/account/sessions", "GET, HEAD"],
        ["GET", "/account/sessions/abc/revoke", "POST"],
        ["PUT", "/password/forgot", "GET, HEAD, POST"],
      ]
    ) {
      const res = await t.request(path, { method, headers: { origin: t.origin } });
      assert.equal(res.status, 405, `${method} ${path}`);
      assert.equal(res.headers.get("allow"), allow, `${method} ${path}`);
      if (path.startsWith("/api/")) assert.equal((await res.json()).error, "method_not_allowed");
      else await res.body?.cancel();
    }
    // A path no route has is still a 404.
    const missing = await t.request("/no-such-page", {
      method: "POST",
      headers: { origin: t.origin },
    });
    assert.equal(missing.status, 404);
    await missing.body?.cancel();
  } finally {
    t.close();
  }
});

Deno.test("request id: a client-sent X-Request-Id is not trusted", async () => {
  const t = await testApp();
  try {
    const res = await t.request("/login", { headers: { "x-request-id": "forged-id" } });
    assert.notEqual(res.headers.get("x-request-id"), "forged-id");
    assert.match(res.headers.get("x-request-id")!, /^[0-9a-f-]{36}$/);
  } finally {
    t.close();
  }
});

Deno.test("csrf: with a localhost APP_URL in development, 127.0.0.1 is the same app", async () => {
  const t = await testApp({ appUrl: new URL("http://localhost:8000"), appEnv: "development" });
  try {
    const origins = ["http://127.0.0.1:8000", "http://[::1]:8000", "http://localhost:8000"];
    for (const [i, origin] of origins.entries()) {
      const res = await t.post("/signup", {
        email: `o${i}@example.com`,
        password: GOOD_PASSWORD,
      }, {
        headers: { origin },
      });
      assert.equal(res.status, 303, origin);
      t.jar.cookies.clear();
    }
    const evil = await t.post("/signup", { email: "e@example.com", password: GOOD_PASSWORD }, {
      headers: { origin: "http://127.0.0.1:8001" },
    });
    assert.equal(evil.status, 403);
  } finally {
    t.close();
  }
  const prod = await testApp({ appUrl: new URL("https://localhost"), appEnv: "production" });
  try {
    const res = await prod.post("/signup", { email: "p@example.com", password: GOOD_PASSWORD }, {
      headers: { origin: "https://127.0.0.1" },
    });
    assert.equal(res.status, 403);
  } finally {
    prod.close();
  }
});

async function start(env: Record<string, string>) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "main.ts"],
    env: { NO_COLOR: "1", DENO_KV_PATH: ":memory:", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

Deno.test("start-up: each failure is one clear line and exit code 1", async () => {
  const busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const port = String((busy.addr as Deno.NetAddr).port);
    const cases: [Record<string, string>, RegExp][] = [
      [{ PORT: port }, /^Cannot listen on 127\.0\.0\.1:\d+: port \d+ is already in use/],
      [{ HOST: "not a host" }, /^Configuration error: HOST must be a host name or IP address/],
      [{ PORT: "0" }, /^Configuration error: PORT must be between 1 and 65535/],
      [
        { DENO_KV_PATH: "/nonexistent-lodge-dir/x.kv" },
        /^Cannot open the KV store at DENO_KV_PATH=/,
      ],
    ];
    for (const [env, expected] of cases) {
      const r = await start(env);
      assert.equal(r.code, 1, JSON.stringify(env));
      const lines = r.stderr.trim().split("\n").filter((l) => !/^Password hashing/.test(l));
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0], expected);
    }
    await assert.rejects(() => Deno.stat("/nonexistent-lodge-dir"));
  } finally {
    busy.close();
  }
});

Deno.test("body limit over a real socket: by Content-Length before reading, and counted when chunked", async () => {
  const t = await testApp();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (req, info) => t.app.fetch(req, { remoteAddr: info.remoteAddr }),
  );
  const url = `http://127.0.0.1:${server.addr.port}/signup`;
  const headers = { origin: t.origin, "content-type": "application/x-www-form-urlencoded" };
  const big = `email=a%40example.com&password=${"x".repeat(t.config.bodyLimit)}`;
  try {
    // Declared length over the limit: refused from the header.
    let res = await fetch(url, { method: "POST", headers, body: big });
    assert.equal(res.status, 413);
    await res.body?.cancel();
    // No length (a stream is sent chunked): counted as it arrives, refused past the limit.
    const chunked = (text: string) =>
      new ReadableStream<Uint8Array>({
        start(c) {
          const bytes = new TextEncoder().encode(text);
          for (let at = 0; at < bytes.length; at += 4096) c.enqueue(bytes.slice(at, at + 4096));
          c.close();
        },
      });
    res = await fetch(url, { method: "POST", headers, body: chunked(big) });
    assert.equal(res.status, 413);
    await res.body?.cancel();
    // Small forms pass both ways and reach the form's own checks (422: bad password).
    for (
      const body of [
        "email=a%40example.com&password=short",
        chunked("email=a%40example.com&password=short"),
      ]
    ) {
      res = await fetch(url, { method: "POST", headers, body, redirect: "manual" });
      assert.equal(res.status, 422);
      assert.match(await res.text(), /a@example\.com/);
    }
  } finally {
    await server.shutdown();
    t.close();
  }
});

Deno.test("a chunked body that breaks off mid-upload is a 400 for the client, not a server error", async () => {
  const t = await testApp();
  try {
    for (const path of ["/signup", "/no-such-page", "/api/token"]) {
      const body = new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(new TextEncoder().encode("email=a%40example.com&pass"));
          c.error(new Error("connection reset by peer"));
        },
      });
      const res = await t.request(path, {
        method: "POST",
        headers: { origin: t.origin, "content-type": "application/x-www-form-urlencoded" },
        body,
      });
      assert.equal(res.status, 400, path);
      assert.match(await res.text(), /cut off before it arrived/);
    }
  } finally {
    t.close();
  }
});

Deno.test("notice codes from the query find only their own messages: ?m=constructor shows no empty alert", async () => {
  const t = await testApp();
  try {
    const noAlert = async (path: string) => {
      const res = await t.request(path);
      assert.equal(res.status, 200, path);
      const html = await res.text();
      assert.ok(
        !/class="alert[^"]*"/.test(html),
        `${path} shows an alert: ${html.match(/<div[^>]*alert[^>]*>[^<]*/)?.[0]}`,
      );
    };
    for (const code of ["constructor", "__proto__", "toString", "hasOwnProperty"]) {
      await noAlert(`/login?m=${code}`);
    }
    // A real code still shows its message.
    assert.match(await (await t.request("/login?m=signed_out")).text(), /You have signed out/);
    await t.signup();
    for (const code of ["constructor", "__proto__", "valueOf"]) {
      await noAlert(`/account/sessions?m=${code}`);
      await noAlert(`/account?email=${code}`);
    }
  } finally {
    t.close();
  }
});

Deno.test("a page's path with a trailing slash redirects to the page, relatively; never to another host", async () => {
  const t = await testApp();
  try {
    for (
      const [path, location] of [
        ["/login/", "/login"],
        ["/signup/?next=%2Fw%2Fx", "/signup?next=%2Fw%2Fx"],
        ["/w/some-team/", "/w/some-team"],
        ["/login//", "/login"],
      ]
    ) {
      const res = await t.request(path, { redirect: "manual" });
      assert.equal(res.status, 301, path);
      assert.equal(res.headers.get("location"), location, path);
    }
    for (const path of ["//evil.example/", "/no-such-page/", "/w/a/b/", "/\\evil.example/"]) {
      // The path as sent on the wire (new URL() would read "//evil.example/" as a host).
      const res = await t.app.request(`${t.origin}${path}`, { redirect: "manual" });
      assert.equal(res.status, 404, path);
      await res.body?.cancel();
    }
    const post = await t.post("/login/", { email: "a@example.com", password: "x" });
    assert.equal(post.status, 404, "a form post is not redirected (it would lose its body)");
    await post.body?.cancel();
    const put = await t.request("/login/", { method: "PUT", headers: { origin: t.origin } });
    assert.equal(put.status, 405);
    assert.equal(put.headers.get("allow"), "GET, HEAD, POST");
    await put.body?.cancel();
  } finally {
    t.close();
  }
});

Deno.test("POST /api/token: a signed-out caller gets 401 whatever it sent; a signed-in one 415 for a non-JSON body", async () => {
  const t = await testApp();
  try {
    const send = (type: string, body: string) =>
      t.request("/api/token", {
        method: "POST",
        headers: { origin: t.origin, "content-type": type },
        body,
      });
    const anon = await send("text/plain", "hello");
    assert.equal(anon.status, 401);
    assert.equal((await anon.json()).error, "unauthenticated");
    await t.signup();
    for (const type of ["text/plain", "application/x-www-form-urlencoded"]) {
      const res = await send(type, "workspace=x");
      assert.equal(res.status, 415, type);
      assert.equal((await res.json()).error, "unsupported_media_type");
    }
    const bad = await send("application/json", "{not json");
    assert.equal(bad.status, 400);
    assert.equal((await bad.json()).error, "bad_request");
    const ok = await send("application/json", "{}");
    assert.equal(ok.status, 200);
    assert.ok((await ok.json()).token);
  } finally {
    t.close();
  }
});

Deno.test("TRACE, TRACK and other odd methods on a real server: 405 with Allow, never a 500", async () => {
  const t = await testApp();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, t.app.fetch);
  const { port } = server.addr as Deno.NetAddr;
  const raw = async (request: string) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(new TextEncoder().encode(request));
    const buf = new Uint8Array(4096);
    const n = await conn.read(buf);
    conn.close();
    return new TextDecoder().decode(buf.subarray(0, n ?? 0));
  };
  try {
    for (const method of ["TRACE", "TRACK", "track"]) {
      for (const path of ["/login", "/health", "/no-such-page"]) {
        const head = await raw(
          `${method} ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`,
        );
        const status = Number(head.split(" ")[1]);
        assert.ok(
          status === 405 || status === 404 || status === 400,
          `${method} ${path}: ${head.split("\r\n")[0]}`,
        );
        if (path !== "/no-such-page" && status === 405) assert.match(head, /allow: GET, HEAD/i);
      }
    }
  } finally {
    await server.shutdown();
    t.close();
  }
});

Deno.test("trailing-slash redirects keep the path percent-encoded: control characters never reach a header (one GET crashed the server)", async () => {
  const t = await testApp();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, t.app.fetch);
  const { port } = server.addr as Deno.NetAddr;
  try {
    for (
      const [path, location] of [
        ["/w/%7f/", "/w/%7f"],
        ["/w/a%0d%0aX-Evil:%20y/", "/w/a%0d%0aX-Evil:%20y"],
        ["/w/a%00b/", "/w/a%00b"],
        ["/w/caf%C3%A9/", "/w/caf%C3%A9"],
        ["/w/x/export/", "/w/x/export"],
      ]
    ) {
      const res = await fetch(`http://127.0.0.1:${port}${path}`, { redirect: "manual" });
      assert.equal(res.status, 301, path);
      assert.equal(res.headers.get("location"), location, path);
      await res.body?.cancel();
    }
    // The server is still up.
    const ok = await fetch(`http://127.0.0.1:${port}/login`);
    assert.equal(ok.status, 200);
    await ok.body?.cancel();
  } finally {
    await server.shutdown();
    t.close();
  }
});
