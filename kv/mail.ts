/**
 * Mail records in KV: the development outbox, each message's delivery status (so a queued
 * mail delivered twice is sent once), failure records and the sent/failed counters that
 * `/health` shows. Records hold no tokens except the outbox, which exists only for
 * development and is never served in production.
 *
 * @example
 * ```ts
 * await storeOutboxMail(kv, messageId, mail);
 * const { sent, failed } = await mailCounts(kv);
 * ```
 * @module
 */
import * as keys from "./keys.ts";
import type { MailKind } from "../lib/mail/templates.ts";

/** A mail ready to send: recipient plus rendered content. */
export interface OutgoingMail {
  to: string;
  subject: string;
  html: string;
  text: string;
  kind: MailKind;
}

/** A mail kept in the development outbox. */
export interface OutboxMail extends OutgoingMail {
  id: string;
  createdAt: number;
}

/** Delivery status of one queued message. */
export interface MailStatus {
  state: "pending" | "sent" | "failed";
  attempts: number;
  updatedAt: number;
  transport?: string;
  /** The provider's message id once sent. */
  providerId?: string;
  /** Error name and status of the last failure (never the address or the body). */
  lastError?: string;
}

/** What is kept about a mail that could not be delivered (no address, no body, no link). */
export interface FailedMail {
  messageId: string;
  kind: MailKind;
  attempts: number;
  lastError: string;
  failedAt: number;
}

/** How long outbox mails, statuses and failure records are kept, ms. */
export const MAIL_RECORD_TTL_MS = 14 * 86_400_000;

/** Stores a mail in the development outbox (idempotent: keyed by message id). */
export async function storeOutboxMail(
  kv: Deno.Kv,
  messageId: string,
  mail: OutgoingMail,
  now = Date.now(),
): Promise<void> {
  const value: OutboxMail = { ...mail, id: messageId, createdAt: now };
  await kv.set(keys.mailOutbox(messageId), value, { expireIn: MAIL_RECORD_TTL_MS });
}

/** Lists the outbox, newest first (message ids sort by time). */
export async function listOutbox(kv: Deno.Kv, limit = 100): Promise<OutboxMail[]> {
  const out: OutboxMail[] = [];
  for await (
    const e of kv.list<OutboxMail>({ prefix: keys.mailOutboxAll() }, { reverse: true, limit })
  ) out.push(e.value);
  return out;
}

/** Reads a message's status entry (value null before the first attempt). */
export function getMailStatus(
  kv: Deno.Kv,
  messageId: string,
): Promise<Deno.KvEntryMaybe<MailStatus>> {
  return kv.get<MailStatus>(keys.mailStatus(messageId));
}

/**
 * Records a successful send and counts it, once: when a concurrent delivery already
 * recorded it, nothing is counted twice.
 */
export async function recordSent(
  kv: Deno.Kv,
  messageId: string,
  entry: Deno.KvEntryMaybe<MailStatus>,
  info: { transport: string; providerId: string },
  now = Date.now(),
): Promise<void> {
  let current = entry;
  for (let i = 0; i < 10; i++) {
    if (current.value?.state === "sent") return;
    const status: MailStatus = {
      state: "sent",
      attempts: (current.value?.attempts ?? 0) + 1,
      updatedAt: now,
      ...info,
    };
    const res = await kv.atomic().check(current)
      .set(keys.mailStatus(messageId), status, { expireIn: MAIL_RECORD_TTL_MS })
      .sum(keys.mailCounter("sent"), 1n)
      .commit();
    if (res.ok) return;
    current = await getMailStatus(kv, messageId);
  }
}

/**
 * Records a failed attempt. When `final`, the mail is marked failed, a {@link FailedMail}
 * record is written and the failed counter goes up (once).
 */
export async function recordFailure(
  kv: Deno.Kv,
  messageId: string,
  entry: Deno.KvEntryMaybe<MailStatus>,
  info: { kind: MailKind; error: string; final: boolean; transport: string },
  now = Date.now(),
): Promise<number> {
  let current = entry;
  for (let i = 0; i < 10; i++) {
    if (current.value?.state === "sent" || current.value?.state === "failed") {
      return current.value.attempts;
    }
    const attempts = (current.value?.attempts ?? 0) + 1;
    const status: MailStatus = {
      state: info.final ? "failed" : "pending",
      attempts,
      updatedAt: now,
      transport: info.transport,
      lastError: info.error,
    };
    const op = kv.atomic().check(current)
      .set(keys.mailStatus(messageId), status, { expireIn: MAIL_RECORD_TTL_MS });
    if (info.final) {
      const failed: FailedMail = {
        messageId,
        kind: info.kind,
        attempts,
        lastError: info.error,
        failedAt: now,
      };
      op.set(keys.mailFailed(messageId), failed, { expireIn: MAIL_RECORD_TTL_MS })
        .sum(keys.mailCounter("failed"), 1n);
    }
    if ((await op.commit()).ok) return attempts;
    current = await getMailStatus(kv, messageId);
  }
  return current.value?.attempts ?? 0;
}

/** Adds one to a named counter inside an atomic (e.g. reset requests). */
export function countIn(op: Deno.AtomicOperation, name: string): Deno.AtomicOperation {
  return op.sum(keys.mailCounter(name), 1n);
}

/** Mail figures for /health. `undelivered` counts messages KV gave up redelivering. */
export interface MailCounts {
  sent: number;
  failed: number;
  undelivered: number;
}

/** Reads the sent/failed counters and counts undelivered messages (up to 1000). */
export async function mailCounts(kv: Deno.Kv): Promise<MailCounts> {
  const [sent, failed] = await kv.getMany<[Deno.KvU64, Deno.KvU64]>([
    keys.mailCounter("sent"),
    keys.mailCounter("failed"),
  ]);
  let undelivered = 0;
  for await (const _ of kv.list({ prefix: keys.mailUndeliveredAll() }, { limit: 1000 })) {
    undelivered++;
  }
  return {
    sent: Number(sent.value?.value ?? 0n),
    failed: Number(failed.value?.value ?? 0n),
    undelivered,
  };
}

/** Reads one failure record. */
export async function getFailedMail(kv: Deno.Kv, messageId: string): Promise<FailedMail | null> {
  return (await kv.get<FailedMail>(keys.mailFailed(messageId))).value;
}
