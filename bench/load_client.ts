/**
 * A closed-loop HTTP load client, run as its own process by bench/load.ts when `wrk` is not
 * installed, so it never shares the server's event loop. Prints one `BENCH_RESULT {json}`
 * line with the same fields as bench/wrk.lua.
 *
 * @example
 * ```sh
 * deno run --allow-net=127.0.0.1 bench/load_client.ts '{"url":"http://127.0.0.1:8000/","connections":50,"seconds":5}'
 * ```
 * @module
 */

/** What to send, as JSON in the first argument. */
export interface ClientSpec {
  url: string;
  connections: number;
  seconds: number;
  method?: string;
  headers?: Record<string, string>;
  /** Bodies sent round-robin; `xff[i]` goes with `bodies[i]`. */
  bodies?: string[];
  xff?: string[];
  /** Pause before each request on a connection (paced probe), ms. */
  delayMs?: number;
}

async function main(spec: ClientSpec) {
  const host = new URL(spec.url).hostname;
  if (host !== "127.0.0.1" && host !== "localhost") {
    throw new Error("load client targets 127.0.0.1 only");
  }
  const latencies: number[] = [];
  let bytes = 0;
  let errorsStatus = 0;
  let errorsRead = 0;
  let next = 0;
  const started = performance.now();
  const end = started + spec.seconds * 1000;
  const bodies = spec.bodies ?? [];

  async function connection() {
    while (performance.now() < end) {
      if (spec.delayMs) await new Promise((r) => setTimeout(r, spec.delayMs));
      const i = bodies.length ? next++ % bodies.length : 0;
      const headers = new Headers(spec.headers);
      if (spec.xff?.[i]) headers.set("x-forwarded-for", spec.xff[i]);
      const t0 = performance.now();
      try {
        const res = await fetch(spec.url, {
          method: spec.method ?? "GET",
          headers,
          body: bodies.length ? bodies[i] : undefined,
          redirect: "manual",
        });
        const body = await res.arrayBuffer();
        latencies.push(performance.now() - t0);
        bytes += body.byteLength;
        if (res.status >= 400) errorsStatus++;
      } catch {
        errorsRead++;
      }
    }
  }

  await Promise.all(Array.from({ length: spec.connections }, connection));
  const durationUs = Math.round((performance.now() - started) * 1000);
  latencies.sort((a, b) => a - b);
  const pct = (p: number) =>
    latencies.length
      ? Math.round(
        latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] * 1000,
      )
      : 0;
  const mean = latencies.reduce((a, b) => a + b, 0) / Math.max(1, latencies.length);
  const result = {
    requests: latencies.length,
    durationUs,
    bytes,
    p50Us: pct(0.5),
    p99Us: pct(0.99),
    maxUs: pct(1),
    meanUs: mean * 1000,
    errorsStatus,
    errorsConnect: 0,
    errorsRead,
    errorsWrite: 0,
    errorsTimeout: 0,
  };
  console.log(`BENCH_RESULT ${JSON.stringify(result)}`);
}

if (import.meta.main) await main(JSON.parse(Deno.args[0]) as ClientSpec);
