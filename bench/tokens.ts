/**
 * Benchmark for access tokens and the live channel (issue 3). Runs alone:
 *
 * ```sh
 * deno run -A bench/tokens.ts            # or: STREAMS=2000 MINTS=5000 deno run -A bench/tokens.ts
 * ```
 *
 * Prints:
 * - token mint latency through `POST /api/token` (session read, user, workspace, ES256 sign),
 *   p50/p99 over MINTS requests, and the bare `mintAccessToken` sign for comparison;
 *   target p99 < 5 ms.
 * - memory growth of this (server) process while STREAMS event streams are open, each for
 *   its own session, held by a client in a separate process over real sockets; target < 50 MB.
 *
 * Uses a temporary SQLite KV file (like a local deployment), deleted afterwards.
 * @module
 */
import { createApp } from "../app.ts";
import { testConfig } from "../lib/config.ts";
import { loadAssets } from "../lib/assets.ts";
import { openKv } from "../kv/db.ts";
import { createSession } from "../kv/sessions.ts";
import { currentSigningKey, mintAccessToken } from "../lib/tokens.ts";
import { closeEventStreams, openEventStreamCount } from "../routes/events.ts";
import { GOOD_PASSWORD } from "../tests/helpers.ts";

// Memory figures need a real GC between samples: re-run this file with --expose-gc once.
if (!(globalThis as { gc?: unknown }).gc && !Deno.env.get("LODGE_BENCH_CHILD")) {
  const { code } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--v8-flags=--expose-gc", new URL(import.meta.url).pathname],
    env: { LODGE_BENCH_CHILD: "1" },
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  Deno.exit(code);
}

const MINTS = Number(Deno.env.get("MINTS") ?? 2000);
const STREAMS = Number(Deno.env.get("STREAMS") ?? 1000);

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

function fmt(ms: number): string {
  return `${ms.toFixed(3)} ms`;
}

const dir = await Deno.makeTempDir({ prefix: "lodge-bench-tokens-" });
const kv = await openKv(`${dir}/bench.kv`);
const port = (() => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const p = (l.addr as Deno.NetAddr).port;
  l.close();
  return p;
})();
const config = testConfig({
  appUrl: new URL(`http://127.0.0.1:${port}`),
  accessTokenTtl: 900,
  eventsHeartbeat: 25,
});
const app = createApp({ config, kv, assets: await loadAssets() });
const origin = config.appUrl.origin;

// --- token mint through the endpoint -------------------------------------------------------
const signup = await app.request(`${origin}/signup`, {
  method: "POST",
  headers: { origin, "content-type": "application/x-www-form-urlencoded" },
  body: new URLSearchParams({ email: "bench@example.com", password: GOOD_PASSWORD }),
});
const cookie = signup.headers.get("set-cookie")!.split(";")[0];
const mint = () =>
  app.request(`${origin}/api/token`, { method: "POST", headers: { origin, cookie } });
for (let i = 0; i < 200; i++) await (await mint()).arrayBuffer(); // warm up (JIT, key import)
const endpoint: number[] = [];
for (let i = 0; i < MINTS; i++) {
  const t0 = performance.now();
  const res = await mint();
  await res.arrayBuffer();
  endpoint.push(performance.now() - t0);
  if (res.status !== 200) throw new Error(`mint failed: ${res.status}`);
}
endpoint.sort((a, b) => a - b);

const key = await currentSigningKey(kv, config);
const claims = { sub: "u", sid: "s", ws: "w", role: "owner" };
const bare: number[] = [];
for (let i = 0; i < MINTS; i++) {
  const t0 = performance.now();
  await mintAccessToken(config, key, claims);
  bare.push(performance.now() - t0);
}
bare.sort((a, b) => a - b);

const p99 = percentile(endpoint, 0.99);
console.log(`Token mint, POST /api/token (${MINTS} requests, one process, SQLite KV):`);
console.log(
  `  p50 ${fmt(percentile(endpoint, 0.5))}  p99 ${fmt(p99)}  max ${fmt(endpoint.at(-1)!)}` +
    `  → ${p99 < 5 ? "PASS" : "FAIL"} (target p99 < 5 ms)`,
);
console.log(
  `  bare ES256 sign: p50 ${fmt(percentile(bare, 0.5))}  p99 ${fmt(percentile(bare, 0.99))}`,
);

// --- 1,000 open event streams ----------------------------------------------------------------
const server = Deno.serve(
  { hostname: "127.0.0.1", port, onListen() {} },
  (req, info) => app.fetch(req, { remoteAddr: info.remoteAddr }),
);
const tokens: string[] = [];
for (let i = 0; i < STREAMS; i++) {
  const userId = `bench-user-${i}`;
  const s = await createSession(kv, config, { userId, userAgent: "bench", ip: "127.0.0.1" });
  const { token } = await mintAccessToken(config, key, {
    sub: userId,
    sid: s.session.id,
    ws: null,
    role: null,
  });
  tokens.push(token);
}
const tokenFile = `${dir}/tokens.json`;
await Deno.writeTextFile(tokenFile, JSON.stringify(tokens));

const client = `
const tokens = JSON.parse(await Deno.readTextFile(${JSON.stringify(tokenFile)}));
const readers = [];
let i = 0;
async function open(token) {
  const res = await fetch(${JSON.stringify(origin)} + "/api/events", {
    headers: { authorization: "Bearer " + token, accept: "text/event-stream" },
  });
  if (res.status !== 200) throw new Error("stream " + res.status);
  const reader = res.body.getReader();
  const { value } = await reader.read();
  readers.push(reader);
  // keep draining so the server never blocks on a full socket
  (async () => { while (!(await reader.read()).done); })().catch(() => {});
}
for (let at = 0; at < tokens.length; at += 50) {
  await Promise.all(tokens.slice(at, at + 50).map(open));
}
console.log("open " + readers.length);
await Deno.stdin.read(new Uint8Array(1));
`;

const gcIfPossible = () => (globalThis as { gc?: () => void }).gc?.();
gcIfPossible();
await new Promise((r) => setTimeout(r, 200));
const before = Deno.memoryUsage();
const child = new Deno.Command(Deno.execPath(), {
  args: ["eval", "--quiet", client],
  stdin: "piped",
  stdout: "piped",
  stderr: "inherit",
}).spawn();
const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
const opened = performance.now();
let out = "";
while (!out.includes("\n")) {
  const { value, done } = await lines.read();
  if (done) break;
  out += value;
}
const openMs = performance.now() - opened;
await new Promise((r) => setTimeout(r, 1000));
gcIfPossible();
const after = Deno.memoryUsage();
const held = openEventStreamCount();
const mb = (n: number) => (n / 1024 / 1024).toFixed(1);
const rssGrowth = after.rss - before.rss;
console.log(
  `Event streams: ${held} open on one process (client: ${out.trim()}, ${
    openMs.toFixed(0)
  } ms to open):`,
);
console.log(
  `  memory growth rss +${mb(rssGrowth)} MB, heap +${mb(after.heapUsed - before.heapUsed)} MB` +
    `  (${(rssGrowth / Math.max(1, held) / 1024).toFixed(1)} KiB per stream)` +
    `  → ${held >= STREAMS && rssGrowth < 50 * 1024 * 1024 ? "PASS" : "FAIL"} (target < 50 MB)`,
);

// --- the platform's floor: a bare Deno.serve SSE server, same client, separate process -------
// Measured twice: from a server that has served nothing yet (like Lodge above), and "warm",
// after 2,000 ordinary requests, so one-time start-up growth is not counted as the streams'.
const floorScript = (warm: boolean) => `
const enc = new TextEncoder();
const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, (req) =>
  req.url.endsWith("/plain") ? new Response("ok") :
  new Response(new ReadableStream({ start(c) { c.enqueue(enc.encode("event: ready\\ndata: {}\\n\\n")); } }),
    { headers: { "content-type": "text/event-stream" } }));
const port = server.addr.port;
if (${warm}) {
  for (let i = 0; i < 40; i++) {
    await Promise.all(Array.from({ length: 50 }, async () =>
      (await fetch("http://127.0.0.1:" + port + "/plain")).text()));
  }
}
const client = \`
const rs = [];
async function open() { const r = await fetch("http://127.0.0.1:\${port}/"); const rd = r.body.getReader(); await rd.read(); rs.push(rd); }
for (let i = 0; i < ${STREAMS}; i += 50) await Promise.all(Array.from({ length: 50 }, open));
console.log("open " + rs.length); await Deno.stdin.read(new Uint8Array(1));\`;
globalThis.gc(); await new Promise((r) => setTimeout(r, 200));
const before = Deno.memoryUsage().rss;
const child = new Deno.Command(Deno.execPath(), { args: ["eval", client], stdin: "piped", stdout: "piped" }).spawn();
await child.stdout.pipeThrough(new TextDecoderStream()).getReader().read();
await new Promise((r) => setTimeout(r, 1000)); globalThis.gc();
console.log(((Deno.memoryUsage().rss - before) / 1048576).toFixed(1));
child.stdin.close(); await child.status; Deno.exit(0);
`;
const floorMb = async (warm: boolean) => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--v8-flags=--expose-gc", floorScript(warm)],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  return new TextDecoder().decode(out.stdout).trim();
};
const cold = await floorMb(false);
const warm = await floorMb(true);
console.log(
  `  platform floor: a bare Deno.serve holding ${STREAMS} SSE responses grows rss +${cold} MB` +
    ` → Lodge's own share +${(rssGrowth / 1048576 - Number(cold)).toFixed(1)} MB;` +
    ` +${warm} MB when warm (after 2,000 plain requests)`,
);

// --- clean up ---------------------------------------------------------------------------------
closeEventStreams();
child.stdin.close();
await child.status;
await server.shutdown();
kv.close();
await Deno.remove(dir, { recursive: true });
