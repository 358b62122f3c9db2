/**
 * The workspace audit log: one key per event under ["audit", workspaceId, eventId],
 * written in the same atomic as the change it records. Event ids sort by time.
 *
 * @example
 * ```ts
 * const op = kv.atomic();
 * addAuditEvent(op, { workspaceId, type: "workspace.created", actorId: userId });
 * await op.commit();
 * const events = await listAuditEvents(kv, workspaceId);
 * ```
 * @module
 */
import * as keys from "./keys.ts";
import { newId } from "../lib/crypto.ts";

/** What happened. Add new event types here. */
export type AuditEventType = "workspace.created" | "workspace.exported" | "workspace.restored";

/** One audit event. `data` holds no secrets and no email addresses. */
export interface AuditEvent {
  id: string;
  workspaceId: string;
  type: AuditEventType;
  /** User id of who did it (null for the system). */
  actorId: string | null;
  at: number;
  data: Record<string, string | number | boolean | null>;
}

/**
 * Adds an audit event to an atomic; returns the event written.
 *
 * @example
 * ```ts
 * addAuditEvent(op, { workspaceId, type: "workspace.created", actorId: userId });
 * ```
 */
export function addAuditEvent(
  op: Deno.AtomicOperation,
  input: Omit<AuditEvent, "id" | "at" | "data"> & { data?: AuditEvent["data"] },
  now = Date.now(),
): AuditEvent {
  const event: AuditEvent = { id: newId(now), at: now, data: {}, ...input };
  op.set(keys.auditEvent(event.workspaceId, event.id), event);
  return event;
}

/**
 * Lists a workspace's audit events, oldest first (paged by KV cursor internally).
 *
 * @example
 * ```ts
 * const events = await listAuditEvents(kv, workspaceId);
 * ```
 */
export async function listAuditEvents(kv: Deno.Kv, workspaceId: string): Promise<AuditEvent[]> {
  const out: AuditEvent[] = [];
  for await (const e of kv.list<AuditEvent>({ prefix: keys.workspaceAudit(workspaceId) })) {
    out.push(e.value);
  }
  return out;
}
