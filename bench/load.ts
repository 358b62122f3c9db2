/**
 * Runs one load phase against a local server in a separate process: `wrk` (Debian package)
 * when installed, else bench/load_client.ts in its own Deno process. Both report the same
 * figures, parsed from their `BENCH_RESULT {json}` line.
 *
 * @example
 * ```ts
 * const tool = await pickLoadTool();
 * const r = await runLoad(tool, { url: "http://127.0.0.1:8000/", connections: 50, seconds: 5 });
 * console.log(r.rps, r.p99Ms);
 * ```
 * @module
 */

/** One phase: where, how many connections, how long, what to send. */
export interface LoadSpec {
  url: string;
  connections: number;
  seconds: number;
  method?: "GET" | "POST";
  headers?: Record<string, string>;
  /** Bodies sent round-robin; with `xff`, body i comes from address `xff[i]`. */
  bodies?: string[];
  xff?: string[];
  /** Pause before each request on a connection, ms (a paced latency probe). */
  delayMs?: number;
}

/** What a phase measured. */
export interface LoadResult {
  requests: number;
  seconds: number;
  /** Requests per second (all answers, any status). */
  rps: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Answers with status ≥ 400 (wrk's "Non-2xx or 3xx"). */
  errorsStatus: number;
  /** Connect, read, write and timeout errors. */
  errorsSocket: number;
  bytesPerRequest: number;
}

/** The load generator in use. */
export type LoadTool = "wrk" | "deno";

/** `wrk` when it runs here, else the Deno client (with a hint on installing wrk). */
export async function pickLoadTool(forced?: string): Promise<LoadTool> {
  if (forced === "deno") return "deno";
  try {
    const out = await new Deno.Command("wrk", { args: ["-v"], stdout: "piped", stderr: "piped" })
      .output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    if (/^wrk /m.test(text)) return "wrk";
  } catch {
    // not installed
  }
  if (forced === "wrk") throw new Error("--tool=wrk given but wrk is not installed");
  console.warn(
    "wrk not found: using the Deno load client (bench/load_client.ts) in a subprocess.\n" +
      "For the reference figures install wrk: `sudo apt-get install -y wrk` (Debian/Ubuntu)\n" +
      "or `brew install wrk` (macOS). The Deno client is slower than wrk, so the ceiling (a)\n" +
      "reads low; compare ratios within one run.",
  );
  return "deno";
}

const WRK_SCRIPT = new URL("./wrk.lua", import.meta.url).pathname;
const CLIENT = new URL("./load_client.ts", import.meta.url).pathname;

/** Runs one phase and returns its figures. Throws when the tool fails or prints no result. */
export async function runLoad(tool: LoadTool, spec: LoadSpec): Promise<LoadResult> {
  const host = new URL(spec.url).hostname;
  if (host !== "127.0.0.1") throw new Error(`bench targets 127.0.0.1 only (got ${host})`);
  const cmd = tool === "wrk" ? wrkCommand(spec) : clientCommand(spec);
  const out = await cmd.output();
  const stdout = new TextDecoder().decode(out.stdout);
  const line = stdout.split("\n").find((l) => l.startsWith("BENCH_RESULT "));
  if (!out.success || !line) {
    throw new Error(
      `${tool} failed (${out.code}): ${stdout}\n${new TextDecoder().decode(out.stderr)}`,
    );
  }
  const r = JSON.parse(line.slice("BENCH_RESULT ".length));
  const seconds = r.durationUs / 1e6;
  return {
    requests: r.requests,
    seconds,
    rps: r.requests / seconds,
    p50Ms: r.p50Us / 1000,
    p99Ms: r.p99Us / 1000,
    maxMs: r.maxUs / 1000,
    errorsStatus: r.errorsStatus,
    errorsSocket: r.errorsConnect + r.errorsRead + r.errorsWrite + r.errorsTimeout,
    bytesPerRequest: r.requests ? r.bytes / r.requests : 0,
  };
}

function wrkCommand(spec: LoadSpec): Deno.Command {
  const env: Record<string, string> = {
    BENCH_METHOD: spec.method ?? "GET",
    BENCH_HEADERS: Object.entries(spec.headers ?? {}).map(([k, v]) => `${k}: ${v}`).join("\n"),
    BENCH_BODIES: (spec.bodies ?? []).join("\n"),
    BENCH_XFF: (spec.xff ?? []).join("\n"),
    BENCH_DELAY_MS: String(spec.delayMs ?? 0),
  };
  return new Deno.Command("wrk", {
    // One wrk thread: on 2 cores the other core is the server's.
    args: [
      "-t1",
      `-c${spec.connections}`,
      `-d${Math.max(1, Math.round(spec.seconds))}s`,
      "--timeout",
      "10s",
      "-s",
      WRK_SCRIPT,
      spec.url,
    ],
    env,
    stdout: "piped",
    stderr: "piped",
  });
}

function clientCommand(spec: LoadSpec): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net=127.0.0.1", CLIENT, JSON.stringify(spec)],
    stdout: "piped",
    stderr: "piped",
  });
}
