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
 * - 8 concurrent `POST /login` sign-ins alone, right after the hashing limit (like for like:
 *   the target's ratio), then again with the same probe running beside them (its p99).
 *
 * Flags: `--quick` (one round), `--rounds=N` (default 3), `--slice=S` (seconds per round,
 * default 2), `--tool=wrk|deno`, `--priority=idle|low|normal` (PASSWORD_HASH_PRIORITY),
 * `--threads=N` (PASSWORD_HASH_THREADS; default one per core but one).
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
import * as keys from "../kv/keys.ts";
import { hasher, setHashingPriority, setHashingThreads, verifyPassword } from "../lib/password.ts";
import { defaultHashThreads } from "../lib/config.ts";
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
/** The paced probe: 2 connections, each pausing 5 ms between requests (~350 req/s). */
const PROBE = { connections: 2, delayMs: 5 };

interface Options {
  /** Interleaved rounds per phase. */
  rounds: number;
  /** Seconds per round of a phase (whole seconds: wrk's unit). */
  slice: number;
  warmup: number;
  tool?: string;
  /** PASSWORD_HASH_PRIORITY for the hashing threads. */
  priority: "idle" | "low" | "normal";
  /** PASSWORD_HASH_THREADS: the hashing pool's size. */
  threads: number;
}

function parseArgs(args: string[]): Options {
  const quick = args.includes("--quick");
  const opts: Options = {
    rounds: quick ? 1 : 3,
    slice: 2,
    warmup: 1,
    priority: "idle",
    threads: defaultHashThreads(),
  };
  for (const a of args) {
    const [k, v] = a.split("=");
    const n = Math.round(Number(v));
    if (k === "--rounds" && n >= 1 && n <= 20) opts.rounds = n;
    else if (k === "--slice" && n >= 1 && n <= 30) opts.slice = n;
    else if (k === "--tool" && (v === "wrk" || v === "deno")) opts.tool = v;
    else if (k === "--priority" && (v === "idle" || v === "low" || v === "normal")) {
      opts.priority = v;
    } else if (k === "--threads" && n >= 1 && n <= 256) opts.threads = n;
    else if (k !== "--quick") {
      console.error(
        `unknown argument ${a}; use --quick, --rounds=1..20, --slice=1..30 (s), --tool=wrk|deno, ` +
          `--priority=idle|low|normal, --threads=1..256`,
      );
      Deno.exit(2);
    }
  }
  return opts;
}

/** Runs `verifyPassword` from `concurrency` loops for `seconds`; how many completed, in how long. */
async function hashLimit(
  phc: string,
  concurrency: number,
  seconds: number,
): Promise<{ done: number; seconds: number }> {
  const end = performance.now() + seconds * 1000;
  let done = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < end) {
      if (!await verifyPassword(phc, BENCH_PASSWORD)) throw new Error("bench hash did not verify");
      done++;
    }
  }));
  return { done, seconds: (performance.now() - started) / 1000 };
}

/** CPU time (user + system) of this process so far in ms, from /proc; null elsewhere. */
function processCpuMs(): number | null {
  try {
    const stat = Deno.readTextFileSync("/proc/self/stat");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // utime and stime are fields 14 and 15 of stat(5), in clock ticks (100 per second on Linux).
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return null;
  }
}

/** Successful answers per second (a refused sign-in is not a sign-in). */
function okRate(r: LoadResult): number {
  return (r.requests - r.errorsStatus) / r.seconds;
}

function median(values: number[]): number {
  const s = [...values].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** Rounds of one phase as one figure: totals for rates, the median round for percentiles. */
function combine(rounds: LoadResult[]): LoadResult {
  const requests = rounds.reduce((n, r) => n + r.requests, 0);
  const seconds = rounds.reduce((n, r) => n + r.seconds, 0);
  return {
    requests,
    seconds,
    rps: requests / seconds,
    p50Ms: median(rounds.map((r) => r.p50Ms)),
    p99Ms: median(rounds.map((r) => r.p99Ms)),
    maxMs: Math.max(...rounds.map((r) => r.maxMs)),
    errorsStatus: rounds.reduce((n, r) => n + r.errorsStatus, 0),
    errorsSocket: rounds.reduce((n, r) => n + r.errorsSocket, 0),
    bytesPerRequest: rounds.reduce((n, r) => n + r.bytesPerRequest * r.requests, 0) /
      Math.max(1, requests),
  };
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

/**
 * The floor must serve the very page (c) serves, nonce aside: a floor that renders less (say,
 * without the status banner) would flatter nothing and understate (c)'s ratio.
 */
async function assertSamePage(appUrl: string, floorUrl: string, headers: Record<string, string>) {
  const body = async (url: string) =>
    (await (await fetch(url, { headers })).text()).replace(/nonce="[^"]*"/g, 'nonce=""');
  const [real, floorPage] = await Promise.all([body(appUrl), body(floorUrl)]);
  if (real !== floorPage) {
    throw new Error(
      `the floor (b) does not serve the same page as (c): ${floorPage.length} vs ${real.length} bytes`,
    );
  }
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
  setHashingPriority(opts.priority);
  setHashingThreads(opts.threads);
  const hashName = (await hasher()).name;

  const ceiling = startCeiling();
  const app = startApp(kv, config, assets);
  const fixture = await prepareFixture(app.url, kv, config, SIGNIN_CONCURRENCY);
  const floor = startFloor(kv, config, assets, fixture);
  const pagePath = `/w/${encodeURIComponent(fixture.slug)}`;
  const cookie = { cookie: fixture.cookie };
  await assertSamePage(app.url + pagePath, floor.url + pagePath, cookie);

  console.error(
    `Lodge bench: ${opts.rounds} round(s) of ${opts.slice} s per phase (+${opts.warmup} s warm-up), ${tool}`,
  );
  try {
    const pageSpec = (url: string, headers?: Record<string, string>): LoadSpec => ({
      url,
      connections: CONNECTIONS,
      seconds: opts.slice,
      headers,
    });
    const specs = {
      a: pageSpec(`${ceiling.url}/`),
      b: pageSpec(floor.url + pagePath, cookie),
      c: pageSpec(app.url + pagePath, cookie),
    };
    for (const spec of Object.values(specs)) await runLoad(tool, { ...spec, seconds: opts.warmup });
    // Rounds interleave a, b, c so that load from elsewhere on the machine hits all alike.
    const rounds = { a: [] as LoadResult[], b: [] as LoadResult[], c: [] as LoadResult[] };
    for (let i = 0; i < opts.rounds; i++) {
      for (const k of ["a", "b", "c"] as const) rounds[k].push(await runLoad(tool, specs[k]));
      console.error(
        `  round ${i + 1}: ` +
          (["a", "b", "c"] as const).map((k) =>
            `(${k}) ${fmtInt(rounds[k][i].rps)} req/s p99 ${fmtMs(rounds[k][i].p99Ms)} ms`
          ).join(", "),
      );
    }
    const a = combine(rounds.a);
    const b = combine(rounds.b);
    const c = combine(rounds.c);

    const phc = (await kv.get<{ passwordHash: string }>(keys.user(fixture.userId))).value!
      .passwordHash;
    const probeSpec: LoadSpec = {
      url: `${app.url}/login`,
      connections: PROBE.connections,
      delayMs: PROBE.delayMs,
      seconds: opts.slice,
    };
    const signinSpec: LoadSpec = {
      url: `${app.url}/login`,
      connections: SIGNIN_CONCURRENCY,
      // Runs a second longer than the probe beside it, so the probe sees sign-ins throughout.
      seconds: opts.slice + 1,
      method: "POST",
      headers: {
        origin: config.appUrl.origin,
        "content-type": "application/x-www-form-urlencoded",
      },
      bodies: fixture.logins.map((l) => new URLSearchParams(l).toString()),
      xff: fixture.logins.map((_, i) => `192.0.2.${i + 10}`),
    };
    await hashLimit(phc, SIGNIN_CONCURRENCY, 1);
    await runLoad(tool, { ...probeSpec, seconds: opts.warmup });
    let hashed = 0;
    // CPU time of this process (the app's server, its KV and hashing threads) per hash and per
    // sign-in: a second view of the same ratio that a busy host skews far less than rates.
    const cpuPerHash: number[] = [];
    const cpuPerSignin: number[] = [];
    let hashSeconds = 0;
    const idleRounds: LoadResult[] = [];
    const signinRounds: LoadResult[] = [];
    const besideRounds: LoadResult[] = [];
    const busyRounds: LoadResult[] = [];
    for (let i = 0; i < opts.rounds; i++) {
      // Like for like, back to back: the hashing limit alone, then sign-ins alone.
      const cpu0 = processCpuMs();
      const h = await hashLimit(phc, SIGNIN_CONCURRENCY, opts.slice);
      const cpu1 = processCpuMs();
      hashed += h.done;
      hashSeconds += h.seconds;
      const signin = await runLoad(tool, { ...signinSpec, seconds: opts.slice });
      const cpu2 = processCpuMs();
      signinRounds.push(signin);
      if (cpu0 !== null && cpu1 !== null && cpu2 !== null) {
        cpuPerHash.push((cpu1 - cpu0) / h.done);
        cpuPerSignin.push((cpu2 - cpu1) / (signin.requests - signin.errorsStatus));
      }
      idleRounds.push(await runLoad(tool, probeSpec));
      // Then the probe's latency while sign-ins run (they start first and end last).
      const [beside, busy] = await Promise.all([
        runLoad(tool, signinSpec),
        new Promise((r) => setTimeout(r, 500)).then(() => runLoad(tool, probeSpec)),
      ]);
      besideRounds.push(beside);
      busyRounds.push(busy);
      console.error(
        `  round ${i + 1}: argon2id ${(h.done / h.seconds).toFixed(1)}/s, sign-ins ${
          okRate(signin).toFixed(1)
        }/s (${okRate(beside).toFixed(1)}/s beside the probe), probe p99 idle ${
          fmtMs(idleRounds[i].p99Ms)
        } ms, busy ${fmtMs(busy.p99Ms)} ms`,
      );
    }
    const hashes = hashed / hashSeconds;
    const idle = combine(idleRounds);
    const signin = combine(signinRounds);
    const beside = combine(besideRounds);
    const busy = combine(busyRounds);
    const signinRate = okRate(signin);

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
      `${opts.rounds} interleaved round(s) of ${opts.slice} s per phase (rates: totals; ` +
        `percentiles: median round) · ${CONNECTIONS} connections · ` +
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
      `| POST /login, 8 concurrent, probe beside | ${okRate(beside).toFixed(1)} | ${
        fmtMs(beside.p50Ms)
      } | ${fmtMs(beside.p99Ms)} | ${beside.errorsStatus + beside.errorsSocket} | ${
        pct(okRate(beside) / hashes)
      } of limit (the probe's requests share the CPU) |`,
      `| argon2id verify limit, concurrency 8 | ${hashes.toFixed(1)} | | | | lib/password.ts |`,
    );
    if (cpuPerHash.length) {
      const perHash = median(cpuPerHash);
      const perSignin = median(cpuPerSignin);
      out.push(
        "",
        `CPU of the server process (median round): ${perHash.toFixed(2)} ms per verify, ` +
          `${perSignin.toFixed(2)} ms per sign-in → a sign-in costs ${
            (perSignin / perHash).toFixed(2)
          }× a verify (${pct(perHash / perSignin)} by CPU; rates above are the target's measure)`,
      );
    }
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
    for (
      const [name, r] of [["(a)", a], ["(b)", b], ["(c)", c], ["sign-in", signin], [
        "sign-in beside the probe",
        beside,
      ]] as const
    ) {
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
