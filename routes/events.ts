/**
 * The live channel: `GET /api/events`, Server-Sent Events authenticated by an access token
 * (`Authorization: Bearer …`, or `?access_token=` for the browser's EventSource).
 *
 * Events: `ready` (once), `heartbeat` (every EVENTS_HEARTBEAT s, no id), user events from
 * kv/events.ts by their type (`session.revoked` with `{reason}`), and `token_expired` just
 * before the stream closes at the token's expiry (the client reconnects with a fresh token).
 * Each stream `kv.watch`es its session's index key and the user's event head, so a revocation
 * reaches it at once; it then says why and closes. `Last-Event-ID` (header, or
 * `?last_event_id=`) replays the user's events after that id.
 *
 * @example
 * ```ts
 * app.route("/", eventRoutes());
 * // new EventSource(`/api/events?access_token=${token}`)
 * ```
 * @module
 */
import { Hono } from "hono";
import type { AppEnv, Ctx } from "../lib/http.ts";
import { problem } from "../lib/http.ts";
import * as keys from "../kv/keys.ts";
import { eventIdTime, listUserEventsSince, type UserEvent } from "../kv/events.ts";
import {
  endSession,
  getSessionRevocation,
  type Session,
  sessionDeadline,
  sessionExpiry,
} from "../kv/sessions.ts";
import { type VerifiedClaims, verifyAccessToken } from "../lib/tokens.ts";
import { newId } from "../lib/crypto.ts";

/** Streams open in this process, so shutdown can end them (Deno.serve waits for open bodies). */
const openStreams = new Set<() => void>();

/**
 * Most event streams one session may hold open on one instance (a browser opens one per tab).
 * Each open stream costs ≈ 70 KiB and a KV watch, so one token must not open thousands.
 */
export const MAX_STREAMS_PER_SESSION = 8;
/** Most event streams one user may hold open on one instance, over all their sessions. */
export const MAX_STREAMS_PER_USER = 32;

/** Open streams per session id and per user id in this process. */
const streamsPerSession = new Map<string, number>();
const streamsPerUser = new Map<string, number>();

function adjust(counts: Map<string, number>, id: string, by: 1 | -1): void {
  const n = (counts.get(id) ?? 0) + by;
  if (n > 0) counts.set(id, n);
  else counts.delete(id);
}

/**
 * How many event streams this process holds.
 *
 * @example
 * ```ts
 * console.log(`${openEventStreamCount()} live streams`);
 * ```
 */
export function openEventStreamCount(): number {
  return openStreams.size;
}

/**
 * Ends every open event stream (main.ts calls this before `server.shutdown()`).
 *
 * @example
 * ```ts
 * closeEventStreams();
 * await server.shutdown();
 * ```
 */
export function closeEventStreams(): void {
  for (const close of [...openStreams]) close();
}

function bearer(c: Ctx): string | null {
  const h = c.req.header("authorization");
  if (h) {
    const m = /^Bearer\s+([A-Za-z0-9._~+/=-]+)$/i.exec(h.trim());
    return m ? m[1] : null;
  }
  return c.req.query("access_token") ?? null;
}

const encoder = new TextEncoder();

function frameText(event: string, data: unknown, id?: string): string {
  return (id ? `id: ${id}\n` : "") + `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

function frame(event: string, data: unknown, id?: string): Uint8Array {
  return encoder.encode(frameText(event, data, id));
}

/** Whether a stored event concerns this stream (other sessions' revocations do not). */
function relevant(e: UserEvent, sid: string): boolean {
  if (e.type !== "session.revoked") return true;
  return Array.isArray(e.data.sessionIds) && (e.data.sessionIds as string[]).includes(sid);
}

/**
 * Why a session is gone: its revocation event (with the id to resume after), else the reason
 * record kept under its token hash, else "unknown" — never a guess such as "revoked".
 */
async function whyEnded(
  kv: Deno.Kv,
  claims: VerifiedClaims,
  tokenHash: string | null,
): Promise<{ reason: string; id?: string }> {
  const events = await listUserEventsSince(kv, claims.sub, Date.now() - 60 * 60_000);
  const e = events.reverse().find((e) => e.type === "session.revoked" && relevant(e, claims.sid));
  if (e) return { reason: String(e.data.reason ?? "unknown"), id: e.id };
  const record = tokenHash ? await getSessionRevocation(kv, tokenHash) : null;
  return { reason: record?.reason ?? "unknown" };
}

function openStream(c: Ctx, claims: VerifiedClaims, tokenHash: string): Response {
  const kv = c.get("kv");
  const config = c.get("config");
  const sid = claims.sid;
  const lastEventId = c.req.header("last-event-id") ?? c.req.query("last_event_id") ?? null;
  const resumeTime = lastEventId ? eventIdTime(lastEventId) : null;
  let lastTime = resumeTime ?? Date.now();
  // Without a resume point, only events from now on (a time prefix sorts before its ids).
  let lastId = resumeTime !== null ? lastEventId! : newId(lastTime).slice(0, 10);
  const sent = new Set<string>();

  let closed = false;
  let heartbeat: ReturnType<typeof setInterval> | undefined;
  let expiry: ReturnType<typeof setTimeout> | undefined;
  let deadline: ReturnType<typeof setTimeout> | undefined;
  let watchReader: ReadableStreamDefaultReader<Deno.KvEntryMaybe<unknown>[]> | undefined;
  let controller!: ReadableStreamDefaultController<Uint8Array>;

  // Counted synchronously with the cap check in the route, so concurrent opens cannot overshoot.
  adjust(streamsPerSession, sid, 1);
  adjust(streamsPerUser, claims.sub, 1);
  const close = () => {
    if (closed) return;
    closed = true;
    openStreams.delete(close);
    adjust(streamsPerSession, sid, -1);
    adjust(streamsPerUser, claims.sub, -1);
    clearInterval(heartbeat);
    clearTimeout(expiry);
    clearTimeout(deadline);
    watchReader?.cancel().catch(() => {});
    try {
      controller.close();
    } catch { /* already closed by the client */ }
  };
  const send = (bytes: Uint8Array) => {
    if (closed) return;
    try {
      controller.enqueue(bytes);
    } catch {
      close();
    }
  };
  const revoked = (reason: string, id?: string) => {
    send(frame("session.revoked", { type: "session.revoked", reason }, id));
    close();
  };

  const deliverNew = async () => {
    const events = await listUserEventsSince(kv, claims.sub, lastTime - 2000);
    for (const e of events) {
      if (sent.has(e.id) || (lastId && e.id <= lastId)) continue;
      sent.add(e.id);
      if (sent.size > 500) sent.delete(sent.values().next().value!);
      lastTime = Math.max(lastTime, e.at);
      lastId = e.id > lastId ? e.id : lastId;
      if (!relevant(e, sid)) continue;
      if (e.type === "session.revoked") return revoked(String(e.data.reason ?? "revoked"), e.id);
      send(frame(e.type, { type: e.type, at: e.at, ...e.data }, e.id));
    }
  };

  const watchSession = async () => {
    const stream = kv.watch([keys.userSession(claims.sub, sid), keys.userEventsHead(claims.sub)]);
    watchReader = stream.getReader();
    if (closed) return void watchReader.cancel().catch(() => {});
    while (!closed) {
      const { value, done } = await watchReader.read();
      if (done || closed) break;
      if (value[0].value === null) {
        // The session is gone. The event that says why is written in the same atomic.
        const why = await whyEnded(kv, claims, tokenHash);
        return revoked(why.reason, why.id);
      }
      await deliverNew();
    }
  };

  // The heartbeat also re-reads what the watch covers: locally, kv.watch does not see writes
  // from another process sharing the SQLite file, so this bounds the delay there.
  const checkSessionTimes = async () => {
    const entry = await kv.get<Session>(keys.session(tokenHash));
    const s = entry.value;
    if (closed) return;
    if (!s) {
      const why = await whyEnded(kv, claims, tokenHash);
      return revoked(why.reason, why.id);
    }
    const failure = sessionExpiry(config, s);
    if (failure) {
      // End it now, with its reason (and the operators' warning), as a request would.
      await endSession(kv, tokenHash, entry as Deno.KvEntry<Session>, failure);
      return revoked(failure);
    }
    // Look again the moment the session would end unless used (a request may move it), when
    // that comes before the next heartbeat would (which checks anyway).
    clearTimeout(deadline);
    const left = sessionDeadline(config, s) - Date.now();
    if (left < config.eventsHeartbeat * 1000) {
      deadline = setTimeout(() => void checkSessionTimes().catch(() => close()), left + 50);
    }
  };
  const heartbeatTick = async () => {
    await checkSessionTimes();
    if (closed) return;
    await deliverNew();
    send(frame("heartbeat", { at: Date.now() }));
  };

  const body = new ReadableStream<Uint8Array>({
    start(ctrl) {
      controller = ctrl;
      openStreams.add(close);
      send(encoder.encode(`retry: 2000\n\n`));
      send(frame("ready", { sid, heartbeat: config.eventsHeartbeat, exp: claims.exp }));
      heartbeat = setInterval(() => {
        heartbeatTick().catch(() => close());
      }, config.eventsHeartbeat * 1000);
      expiry = setTimeout(() => {
        send(frame("token_expired", { exp: claims.exp }));
        close();
      }, Math.max(0, claims.exp * 1000 - Date.now()));
      (async () => {
        // A session past its deadline (kept a while so its reason is known) ends here at once.
        await checkSessionTimes();
        if (closed) return;
        if (resumeTime !== null) await deliverNew();
        await watchSession();
      })().catch(() => close());
    },
    cancel() {
      close();
    },
  });

  return new Response(body, {
    headers: {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      "x-accel-buffering": "no",
    },
  });
}

/**
 * Routes: GET /api/events.
 *
 * @example
 * ```ts
 * app.route("/", eventRoutes());
 * ```
 */
export function eventRoutes(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  app.get("/api/events", async (c) => {
    const token = bearer(c);
    if (!token) {
      return c.json({
        error: "unauthenticated",
        reason: "missing_token",
        message: "Send an access token from POST /api/token.",
        requestId: c.get("requestId"),
      }, 401);
    }
    const kv = c.get("kv");
    const verified = await verifyAccessToken(kv, c.get("config"), token);
    if (!verified.ok) {
      return c.json({
        error: "unauthenticated",
        reason: verified.reason,
        message: verified.reason === "token_expired"
          ? "The access token has expired. Get a new one from POST /api/token."
          : "The access token is not valid.",
        requestId: c.get("requestId"),
      }, 401);
    }
    const claims = verified.claims;
    const index = await kv.get<string>(keys.userSession(claims.sub, claims.sid));
    if (!index.value) {
      // The token outlived its session: open just long enough to say why, so an
      // EventSource (which cannot read a 401's body) learns it too.
      const why = await whyEnded(kv, claims, null);
      return new Response(
        frameText("session.revoked", { type: "session.revoked", reason: why.reason }, why.id),
        {
          headers: {
            "content-type": "text/event-stream; charset=utf-8",
            "cache-control": "no-store",
          },
        },
      );
    }
    if (c.req.header("accept") && !/text\/event-stream|\*\/\*/.test(c.req.header("accept")!)) {
      return problem(c, 400, "bad_request", "This endpoint speaks text/event-stream.");
    }
    // No await between this check and openStream's count: the cap holds under concurrency.
    if (
      (streamsPerSession.get(claims.sid) ?? 0) >= MAX_STREAMS_PER_SESSION ||
      (streamsPerUser.get(claims.sub) ?? 0) >= MAX_STREAMS_PER_USER
    ) {
      c.header("Cache-Control", "no-store");
      return problem(
        c,
        429,
        "too_many_streams",
        `Too many open event streams (at most ${MAX_STREAMS_PER_SESSION} per session and ` +
          `${MAX_STREAMS_PER_USER} per user on each server). Close some tabs and try again.`,
        { "Retry-After": "30" },
      );
    }
    return openStream(c, claims, index.value);
  });

  app.all("/api/events", (c) => {
    c.header("Allow", "GET, HEAD");
    return problem(c, 405, "method_not_allowed", "Use GET for /api/events.");
  });

  return app;
}
