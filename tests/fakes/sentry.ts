/**
 * A local stand-in for Sentry's ingest: accepts `POST /api/<project>/envelope/` (NDJSON
 * envelopes, as the real SDK sends them) and keeps every envelope's raw text and items, so
 * tests run the real `@sentry/deno` client against it.
 *
 * @example
 * ```ts
 * const sentry = fakeSentry();
 * initObservability({ sentryDsn: sentry.dsn, appEnv: "test", version: "t" });
 * // … then: sentry.events(), sentry.raw()
 * ```
 * @module
 */

/** One envelope item: its header and parsed payload. */
export interface EnvelopeItem {
  type: string;
  payload: Record<string, unknown>;
}

/** The fake server. */
export interface FakeSentry {
  dsn: string;
  /** Every envelope body received, as text (for "no secret anywhere" checks). */
  raw(): string[];
  /** Every item of type "event" (errors and messages). */
  events(): Record<string, unknown>[];
  close(): Promise<void>;
}

/**
 * Starts the fake on 127.0.0.1 and a free port.
 *
 * @example
 * ```ts
 * const sentry = fakeSentry();
 * initObservability({ sentryDsn: sentry.dsn, appEnv: "test", version: "t" });
 * ```
 */
export function fakeSentry(): FakeSentry {
  const bodies: string[] = [];
  const items: EnvelopeItem[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const url = new URL(req.url);
    if (req.method !== "POST" || !/^\/api\/\d+\/envelope\/$/.test(url.pathname)) {
      return new Response("not found", { status: 404 });
    }
    let stream = req.body!;
    if (req.headers.get("content-encoding") === "gzip") {
      stream = stream.pipeThrough(new DecompressionStream("gzip"));
    }
    const text = await new Response(stream).text();
    bodies.push(text);
    const lines = text.split("\n").filter((l) => l.trim());
    // Line 1: envelope header; then pairs of item header + payload.
    for (let i = 1; i + 1 < lines.length; i += 2) {
      try {
        const header = JSON.parse(lines[i]);
        items.push({ type: header.type, payload: JSON.parse(lines[i + 1]) });
      } catch { /* attachments and other binary items are not used here */ }
    }
    return Response.json({ id: crypto.randomUUID().replaceAll("-", "") });
  });
  const port = (server.addr as Deno.NetAddr).port;
  return {
    dsn: `http://publickey@127.0.0.1:${port}/1`,
    raw: () => [...bodies],
    events: () => items.filter((i) => i.type === "event").map((i) => i.payload),
    close: () => server.shutdown(),
  };
}
