/**
 * The argon2id worker pool in lib/password.ts: real hashes through the real workers.
 */
import assert from "node:assert/strict";
import { hasher, hashPassword, verifyPassword } from "../../lib/password.ts";

/** Runs `code` in a fresh Deno process (its own pool) from the project root; returns stdout. */
async function runScript(code: string): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--ext=ts", code],
    cwd: new URL("../../", import.meta.url).pathname,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(60_000),
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  return new TextDecoder().decode(out.stdout);
}

Deno.test("argon2 runs in a pool of low-priority worker threads on Linux", async () => {
  const h = await hasher();
  assert.match(h.name, /worker thread/);
  if (Deno.build.os === "linux") assert.match(h.name, /(idle|low) priority/);
});

Deno.test("pool hashes verify, wrong passwords and malformed hashes do not", async () => {
  const phc = await hashPassword("violet-harbour-71-kites");
  assert.match(phc, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
  assert.equal(await verifyPassword(phc, "violet-harbour-71-kites"), true);
  assert.equal(await verifyPassword(phc, "violet-harbour-71-kiteS"), false);
  assert.equal(await verifyPassword("not-a-phc-string", "x"), false);
});

Deno.test("more concurrent requests than workers all get their own answer", async () => {
  const [a, b] = await Promise.all([hashPassword("first-password-1"), hashPassword("second-pw-2")]);
  const checks = await Promise.all(
    Array.from(
      { length: 12 },
      (_, i) =>
        i % 2 ? verifyPassword(a, "first-password-1") : verifyPassword(b, "first-password-1"),
    ),
  );
  assert.deepEqual(checks, Array.from({ length: 12 }, (_, i) => i % 2 === 1));
});

Deno.test("hash-wasm verifies the pool's hashes (same PHC strings)", async () => {
  const { argon2Verify } = await import("hash-wasm");
  const phc = await hashPassword("quiet-lantern-48-orchard");
  assert.equal(await argon2Verify({ password: "quiet-lantern-48-orchard", hash: phc }), true);
});

Deno.test("a script awaiting a hash gets it and then exits (idle workers hold nothing open)", async () => {
  const module = new URL("../../lib/password.ts", import.meta.url).href;
  const code = `import { hashPassword } from ${JSON.stringify(module)};
await new Promise((r) => setTimeout(r, 10));
console.log((await hashPassword("quiet-lantern-48-orchard")).slice(0, 9));`;
  assert.equal((await runScript(code)).trim(), "$argon2id");
});

Deno.test("a worker that dies fails only the jobs it held, and a new worker takes its place", async () => {
  const { Worker } = await import("node:worker_threads");
  await hashPassword("warm-up-the-pool");
  const { terminate, postMessage } = Worker.prototype;
  let killed = false;
  // Kill the first worker that is given a job, right after it is given it.
  Worker.prototype.postMessage = function (this: InstanceType<typeof Worker>, msg: unknown) {
    postMessage.call(this, msg);
    if (!killed) {
      killed = true;
      terminate.call(this);
    }
  };
  let results: PromiseSettledResult<string>[];
  try {
    results = await Promise.allSettled(
      Array.from({ length: 6 }, (_, i) => hashPassword(`password-number-${i}`)),
    );
  } finally {
    Worker.prototype.postMessage = postMessage;
  }
  const failed = results.filter((r) => r.status === "rejected");
  // The dead worker held its first job, and perhaps a second sent before its exit was seen.
  assert.ok(failed.length >= 1 && failed.length <= 2, `${failed.length} failed`);
  for (const r of results) {
    if (r.status === "rejected") assert.match(String(r.reason), /argon2 worker exited/);
    else assert.match(r.value, /^\$argon2id\$/);
  }
  const phc = await hashPassword("still-works-after-a-crash");
  assert.equal(await verifyPassword(phc, "still-works-after-a-crash"), true);
});

Deno.test("PASSWORD_HASH_THREADS sizes the pool (set before the first hash)", async () => {
  const module = new URL("../../lib/password.ts", import.meta.url).href;
  for (const threads of [1, 3]) {
    const code = `import { hasher, setHashingThreads } from ${JSON.stringify(module)};
setHashingThreads(${threads});
const h = await hasher();
console.log(h.name);`;
    assert.match(
      await runScript(code),
      new RegExp(`in ${threads} worker thread${threads === 1 ? "" : "s"}`),
    );
  }
});
