/**
 * `deno task bench`: Lodge's speed figures, measured in one run on this machine against
 * real servers on free ports of 127.0.0.1, with the load generator in its own process
 * (`wrk` when installed, else bench/load_client.ts). A benchmark, not a test: it prints a
 * table with PASS/MISS per target and exits 0 either way.
 *
 * Phases (50 connections each for the page phases):
 * - (a) bare `Deno.serve` "ok" — the ceiling;
 * - (b) the workspace page behind one `kv.getMany` — the floor of any authenticated page;
 * - (c) the real authenticated `GET /w/:slug` through `createApp`;
 * - the argon2id limit: `verifyPassword` completions/s at concurrency 8;
 * - a cheap page's (`GET /login`) p99 under a paced probe, idle;
 * - 8 concurrent `POST /login` sign-ins, with the same probe running beside them.
 *
 * Flags: `--quick` (short phases), `--seconds=N` (phase length), `--tool=wrk|deno`.
 *
 * @example
 * ```sh
 * deno task bench            # full run, ~1 minute
 * deno task bench --quick    # ~20 s
 * ```
 * @module
 */
import { testConfig } from "../lib/config.ts";
import { loadAssets } from "../lib/assets.ts";
import { openKv } from "../kv/db.ts";
import { hasher, verifyPassword } from "../lib/password.ts";
import { type LoadResult, type LoadSpec, type LoadTool, pickLoadTool, runLoad } from "./load.ts";
import { BENCH_PASSWORD, prepareFixture, startApp, startCeiling, startFloor } from "./servers.tsx";

/** Targets from issue 2. */
export const TARGETS = {
  /** (c) requests/s at least this share of (b). */
  appOverFloor: 0.7,
  /** (c) p99 below this, ms. */
  appP99Ms: 25,
  /** Sign-in throughput at least this share of the argon2id limit. */
  signinOverHashLimit: 0.8,
  /** Cheap page p99 during sign-ins below this multiple of its idle p99. */
  probeSlowdown: 2,
} as const;

const CONNECTIONS = 50;
const SIGNIN_CONCURRENCY = 8;
/** The paced probe: 2 connections, each pausing 5 ms between requests (~300 req/s). */
const PROBE = { connections: 2, delayMs: 5 };

interface Options {
  seconds: number;
  warmup: number;
  tool?: string;
}

function parseArgs(args: string[]): Options {
  const quick = args.includes("--quick");
  const opts: Options = { seconds: quick ? 2 : 6, warmup: quick ? 1 : 2 };
  for (const a of args) {
    const [k, v] = a.split("=");
    if (k === "--seconds") opts.seconds = Math.max(1, Number(v) || opts.seconds);
    else if (k === "--tool") opts.tool = v;
    else if (k !== "--quick") {
      console.error(`unknown argument ${a}; use --quick, --seconds=N, --tool=wrk|deno`);
      Deno.exit(2);
    }
  }
  return opts;
}

async function phase(
  tool: LoadTool,
  label: string,
  spec: LoadSpec,
  warmup: number,
): Promise<LoadResult> {
  if (warmup > 0) await runLoad(tool, { ...spec, seconds: warmup });
  const r = await runLoad(tool, spec);
  console.error(`  ${label}: ${fmtInt(r.rps)} req/s, p99 ${fmtMs(r.p99Ms)} ms`);
  return r;
}

/** Runs `verifyPassword` from `concurrency` loops for `seconds`; completions per second. */
async function hashLimit(phc: string, concurrency: number, seconds: number): Promise<number> {
  const end = performance.now() + seconds * 1000;
  let done = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < end) {
      if (!await verifyPassword(phc, BENCH_PASSWORD)) throw new Error("bench hash did not verify");
      done++;
    }
  }));
  return done / ((performance.now() - started) / 1000);
}

function fmtInt(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}
function fmtMs(n: number): string {
  return n < 10 ? n.toFixed(2) : n.toFixed(1);
}
function pct(n: number): string {
  return `${(n * 100).toFixed(0)}%`;
}
function verdict(ok: boolean): string {
  return ok ? "PASS" : "MISS";
}

async function machine(tool: LoadTool): Promise<string> {
  let cpu = "unknown CPU";
  try {
    const info = await Deno.readTextFile("/proc/cpuinfo");
    cpu = info.match(/model name\s*:\s*(.+)/)?.[1]?.trim() ?? cpu;
  } catch {
    // not Linux
  }
  let toolVersion = "Deno client";
  if (tool === "wrk") {
    const out = await new Deno.Command("wrk", { args: ["-v"], stdout: "piped", stderr: "piped" })
      .output();
    toolVersion = (new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr))
      .match(/^wrk (?:debian\/)?([\d.]+)/m)?.[1] ?? "?";
    toolVersion = `wrk ${toolVersion}`;
  }
  return `${navigator.hardwareConcurrency} cores (${cpu}), ${Deno.build.os}, ` +
    `Deno ${Deno.version.deno}, load: ${toolVersion}`;
}

async function main() {
  const opts = parseArgs(Deno.args);
  const tool = await pickLoadTool(opts.tool);
  const dir = await Deno.makeTempDir({ prefix: "lodge-bench-" });
  // A SQLite-file KV like `deno task start`'s default, not :memory:.
  const kv = await openKv(`${dir}/bench.kv`);
  const config = testConfig({
    // The bench signs in thousands of times; the limiter must not be what is measured.
    loginRateLimitMax: 1_000_000,
    // Each sign-in connection stands for its own client address (X-Forwarded-For).
    trustProxy: true,
  });
  const assets = await loadAssets();
  const hashName = (await hasher()).name;

  const ceiling = startCeiling();
  const app = startApp(kv, config, assets);
  const fixture = await prepareFixture(app.url, kv, config, SIGNIN_CONCURRENCY);
  const floor = startFloor(kv, config, assets, fixture);
  const pagePath = `/w/${encodeURIComponent(fixture.slug)}`;
  const cookie = { cookie: fixture.cookie };

  console.error(`Lodge bench: ${opts.seconds} s phases (+${opts.warmup} s warm-up), ${tool}`);
  try {
    const a = await phase(
      tool,
      "(a) ceiling",
      { url: `${ceiling.url}/`, connections: CONNECTIONS, seconds: opts.seconds },
      opts.warmup,
    );
    const b = await phase(tool, "(b) floor", {
      url: floor.url + pagePath,
      connections: CONNECTIONS,
      seconds: opts.seconds,
      headers: cookie,
    }, opts.warmup);
    const c = await phase(tool, "(c) app", {
      url: app.url + pagePath,
      connections: CONNECTIONS,
      seconds: opts.seconds,
      headers: cookie,
    }, opts.warmup);

    const phc = (await kv.get<{ passwordHash: string }>(["users", fixture.userId])).value!
      .passwordHash;
    await hashLimit(phc, SIGNIN_CONCURRENCY, Math.min(1, opts.warmup));
    const hashes = await hashLimit(phc, SIGNIN_CONCURRENCY, opts.seconds);
    console.error(`  argon2id limit: ${hashes.toFixed(1)} verifications/s`);

    const probeSpec: LoadSpec = {
      url: `${app.url}/login`,
      connections: PROBE.connections,
      delayMs: PROBE.delayMs,
      seconds: opts.seconds,
    };
    const idle = await phase(tool, "probe idle", probeSpec, opts.warmup);
    const signinSpec: LoadSpec = {
      url: `${app.url}/login`,
      connections: SIGNIN_CONCURRENCY,
      seconds: opts.seconds,
      method: "POST",
      headers: {
        origin: config.appUrl.origin,
        "content-type": "application/x-www-form-urlencoded",
      },
      bodies: fixture.logins.map((l) => new URLSearchParams(l).toString()),
      xff: fixture.logins.map((_, i) => `192.0.2.${i + 10}`),
    };
    const [signin, busy] = await Promise.all([
      runLoad(tool, signinSpec),
      // Start the probe once the sign-ins are underway, and end it before they do.
      new Promise((r) => setTimeout(r, 300)).then(() =>
        runLoad(tool, { ...probeSpec, seconds: Math.max(1, opts.seconds - 1) })
      ),
    ]);
    const signinOk = signin.requests - signin.errorsStatus;
    const signinRate = signinOk / signin.seconds;
    console.error(`  sign-ins: ${signinRate.toFixed(1)}/s, probe p99 ${fmtMs(busy.p99Ms)} ms`);

    // --- report ---
    const rows: [string, LoadResult, string][] = [
      ['(a) bare Deno.serve "ok"', a, ""],
      ["(b) floor: 1 getMany + WorkspacePage", b, `${pct(b.rps / a.rps)} of (a)`],
      ["(c) GET /w/:slug via createApp", c, `${pct(c.rps / b.rps)} of (b)`],
      ["GET /login probe, idle", idle, "paced"],
      [
        "GET /login probe, 8 sign-ins running",
        busy,
        `${(busy.p99Ms / idle.p99Ms).toFixed(2)}x idle p99`,
      ],
    ];
    // wrk counts header bytes too: a page answer is its body plus ~1 KiB of headers.
    const pageOk = (r: LoadResult) =>
      r.bytesPerRequest >= fixture.pageBytes && r.bytesPerRequest < fixture.pageBytes + 2048;
    const out: string[] = [];
    out.push(`Lodge bench ${new Date().toISOString().slice(0, 16)}Z · ${await machine(tool)}`);
    out.push(
      `${opts.seconds} s per phase after ${opts.warmup} s warm-up · ${CONNECTIONS} connections · ` +
        `KV: SQLite file · argon2: ${hashName}`,
    );
    out.push("");
    out.push(
      "| phase | req/s | p50 ms | p99 ms | errors | note |",
      "| --- | ---: | ---: | ---: | ---: | --- |",
    );
    for (const [name, r, note] of rows) {
      const errors = r.errorsStatus + r.errorsSocket;
      out.push(
        `| ${name} | ${fmtInt(r.rps)} | ${fmtMs(r.p50Ms)} | ${
          fmtMs(r.p99Ms)
        } | ${errors} | ${note} |`,
      );
    }
    out.push(
      `| POST /login, 8 concurrent | ${signinRate.toFixed(1)} | ${fmtMs(signin.p50Ms)} | ${
        fmtMs(signin.p99Ms)
      } | ${signin.errorsStatus + signin.errorsSocket} | ${pct(signinRate / hashes)} of limit |`,
      `| argon2id verify limit, concurrency 8 | ${hashes.toFixed(1)} | | | | lib/password.ts |`,
    );
    out.push("");
    const checks: [string, boolean, string][] = [
      [
        "(c) ≥ 70% of (b) req/s",
        c.rps >= TARGETS.appOverFloor * b.rps,
        `${pct(c.rps / b.rps)}`,
      ],
      ["(c) p99 < 25 ms", c.p99Ms < TARGETS.appP99Ms, `${fmtMs(c.p99Ms)} ms`],
      [
        "sign-ins ≥ 80% of argon2id limit",
        signinRate >= TARGETS.signinOverHashLimit * hashes,
        `${pct(signinRate / hashes)} (${signinRate.toFixed(1)} vs ${hashes.toFixed(1)}/s)`,
      ],
      [
        "cheap page p99 during sign-ins < 2x idle",
        busy.p99Ms < TARGETS.probeSlowdown * idle.p99Ms,
        `${fmtMs(busy.p99Ms)} vs ${fmtMs(idle.p99Ms)} ms (${
          (busy.p99Ms / idle.p99Ms).toFixed(2)
        }x)`,
      ],
    ];
    for (const [name, ok, value] of checks) out.push(`${verdict(ok)}  ${name}: ${value}`);
    out.push(`ratio b/a: ${pct(b.rps / a.rps)} (the cost of KV + rendering over a bare server)`);
    const notes: string[] = [];
    if (!pageOk(b) || !pageOk(c)) {
      notes.push(
        `WARNING: average answer size (b) ${fmtInt(b.bytesPerRequest)} B, (c) ${
          fmtInt(c.bytesPerRequest)
        } B does not match the page (${
          fmtInt(fixture.pageBytes)
        } B body): not every answer was the page.`,
      );
    }
    for (const [name, r] of [["(a)", a], ["(b)", b], ["(c)", c], ["sign-in", signin]] as const) {
      if (r.errorsStatus + r.errorsSocket) {
        notes.push(
          `WARNING: ${name} had ${r.errorsStatus} error statuses, ${r.errorsSocket} socket errors.`,
        );
      }
    }
    console.log(out.concat(notes).join("\n"));
  } finally {
    await Promise.allSettled([ceiling.shutdown(), app.shutdown(), floor.shutdown()]);
    kv.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) {
  await main();
  // Timers left by the app (none expected) must not keep the bench alive.
  Deno.exit(0);
}
