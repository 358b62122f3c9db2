/**
 * A short-lived per-user event log for the live channel (`GET /api/events`).
 *
 * Every write that others must hear about adds an event in its own atomic with
 * {@link addUserEvent}; that also moves the user's head key, which open event streams
 * `kv.watch`. Events live {@link EVENT_RETENTION_MS} so a reconnecting stream can resume
 * from `Last-Event-ID`; ids sort by time.
 *
 * @example
 * ```ts
 * const op = kv.atomic().delete(someKey);
 * addUserEvent(op, userId, "session.revoked", { sessionIds: [sid], reason: "logout" });
 * await op.commit();
 * ```
 * @module
 */
import * as keys from "./keys.ts";
import { newId } from "../lib/crypto.ts";

/** How long events stay replayable, ms. */
export const EVENT_RETENTION_MS = 60 * 60 * 1000;

/** One event for one user. `type` names it (`session.revoked`, later `workspace.*`). */
export interface UserEvent {
  id: string;
  type: string;
  at: number;
  /** End of replayability, ms since epoch (checked on read; `expireIn` only cleans up). */
  expiresAt: number;
  data: Record<string, unknown>;
}

/**
 * Adds an event (and moves the watched head) to an atomic. Returns the event.
 *
 * @example
 * ```ts
 * addUserEvent(op, userId, "session.revoked", { sessionIds: [sid], reason: "logout" });
 * ```
 */
export function addUserEvent(
  op: Deno.AtomicOperation,
  userId: string,
  type: string,
  data: Record<string, unknown>,
  now = Date.now(),
): UserEvent {
  const event: UserEvent = {
    id: newId(now),
    type,
    at: now,
    expiresAt: now + EVENT_RETENTION_MS,
    data,
  };
  op.set(keys.userEvent(userId, event.id), event, { expireIn: EVENT_RETENTION_MS })
    .set(keys.userEventsHead(userId), event.id, { expireIn: EVENT_RETENTION_MS });
  return event;
}

/**
 * The time part of an event id (ms), or null when it is not one of ours.
 *
 * @example
 * ```ts
 * eventIdTime(event.id); // ms since epoch
 * ```
 */
export function eventIdTime(id: string): number | null {
  if (!/^[0-9a-hjkmnp-tv-z]{26}$/.test(id)) return null;
  const alphabet = "0123456789abcdefghjkmnpqrstvwxyz";
  let t = 0;
  for (const ch of id.slice(0, 10)) t = t * 32 + alphabet.indexOf(ch);
  return t;
}

/**
 * Lists a user's live events with ids from `sinceMs` on (oldest first). Ids made in the same
 * millisecond may sort out of order, so callers start a little early and skip ids they sent.
 *
 * @example
 * ```ts
 * const events = await listUserEventsSince(kv, userId, Date.now() - 60_000);
 * ```
 */
export async function listUserEventsSince(
  kv: Deno.Kv,
  userId: string,
  sinceMs: number,
  now = Date.now(),
  limit = 200,
): Promise<UserEvent[]> {
  const out: UserEvent[] = [];
  const start = [...keys.userEvent(userId, newId(Math.max(0, sinceMs)).slice(0, 10))];
  const end = [...keys.userEvents(userId), "\uffff"];
  for await (const e of kv.list<UserEvent>({ start, end }, { limit })) {
    if (e.value.expiresAt > now) out.push(e.value);
  }
  return out;
}
