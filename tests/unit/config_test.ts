import assert from "node:assert/strict";
import { ConfigError, defaultHashThreads, loadConfig } from "../../lib/config.ts";

Deno.test("config: defaults for the embedded set-up", () => {
  const c = loadConfig({});
  assert.equal(c.port, 8000);
  assert.equal(c.appUrl.href, "http://localhost:8000/");
  assert.equal(c.kvPath, "data/lodge.kv");
  assert.equal(c.appEnv, "development");
  assert.equal(c.secureCookies, false);
  assert.equal(c.sessionIdleTimeout, 7 * 86400);
  assert.equal(c.sessionAbsoluteLifetime, 30 * 86400);
  assert.equal(c.sessionTouchInterval, 3600);
  assert.equal(c.loginRateLimitMax, 10);
  assert.equal(c.loginRateLimitWindow, 900);
  assert.equal(c.trustProxy, false);
});

Deno.test("config: APP_URL follows PORT; https turns on secure cookies", () => {
  assert.equal(loadConfig({ PORT: "9001" }).appUrl.origin, "http://localhost:9001");
  const c = loadConfig({ APP_URL: "https://lodge.example.com" });
  assert.equal(c.secureCookies, true);
});

Deno.test("config: on Deno Deploy the hosted KV is the default", () => {
  assert.equal(loadConfig({ DENO_DEPLOYMENT_ID: "abc" }).kvPath, undefined);
  assert.equal(loadConfig({ DENO_KV_PATH: ":memory:" }).kvPath, ":memory:");
});

Deno.test("config: a bad value names the variable", () => {
  const cases: [Record<string, string>, string, RegExp][] = [
    [{ PORT: "eighty" }, "PORT", /whole number/],
    [{ PORT: "70000" }, "PORT", /between/],
    [{ APP_URL: "not a url" }, "APP_URL", /absolute/],
    [{ APP_URL: "ftp://x" }, "APP_URL", /http or https/],
    [{ APP_URL: "http://localhost:8000/app/" }, "APP_URL", /origin only/],
    [{ APP_URL: "https://lodge.example.com/?x=1" }, "APP_URL", /origin only/],
    [{ APP_URL: "https://user:pw@lodge.example.com" }, "APP_URL", /origin only/],
    [{ APP_ENV: "staging" }, "APP_ENV", /one of/],
    [{ APP_ENV: "production", APP_URL: "http://x.com" }, "APP_URL", /https/],
    [{ TRUST_PROXY: "maybe" }, "TRUST_PROXY", /true or false/],
    [{ SESSION_IDLE_TIMEOUT: "1.5" }, "SESSION_IDLE_TIMEOUT", /whole number/],
    [
      { SESSION_IDLE_TIMEOUT: "100", SESSION_ABSOLUTE_LIFETIME: "50" },
      "SESSION_ABSOLUTE_LIFETIME",
      /at least/,
    ],
  ];
  for (const [env, variable, message] of cases) {
    assert.throws(() => loadConfig(env), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.variable, variable);
      assert.match(err.message, new RegExp(`^Configuration error: ${variable} `));
      assert.match(err.message, message);
      return true;
    });
  }
});

Deno.test("config: main.ts exits 1 with one clear line for a bad variable", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "main.ts"],
    env: { PORT: "abc", DENO_KV_PATH: ":memory:", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 1);
  const stderr = new TextDecoder().decode(out.stderr);
  assert.match(stderr, /Configuration error: PORT must be a whole number/);
  assert.doesNotMatch(stderr, /at \w+ \(/); // no stack trace
});

Deno.test("config: PASSWORD_HASH_PRIORITY is idle, low or normal", () => {
  assert.equal(loadConfig({}).passwordHashPriority, "idle");
  assert.equal(loadConfig({ PASSWORD_HASH_PRIORITY: "normal" }).passwordHashPriority, "normal");
  assert.throws(
    () => loadConfig({ PASSWORD_HASH_PRIORITY: "high" }),
    /PASSWORD_HASH_PRIORITY must be one of/,
  );
});

Deno.test("config: PASSWORD_HASH_THREADS defaults to one per core but one, and is bounded", () => {
  const expected = Math.max(1, (navigator.hardwareConcurrency || 1) - 1);
  assert.equal(loadConfig({}).passwordHashThreads, expected);
  assert.equal(loadConfig({ PASSWORD_HASH_THREADS: "2" }).passwordHashThreads, 2);
  assert.equal(defaultHashThreads(1), 1);
  assert.equal(defaultHashThreads(2), 1);
  assert.equal(defaultHashThreads(8), 7);
  assert.throws(() => loadConfig({ PASSWORD_HASH_THREADS: "0" }), /PASSWORD_HASH_THREADS/);
  assert.throws(() => loadConfig({ PASSWORD_HASH_THREADS: "two" }), /PASSWORD_HASH_THREADS/);
});
