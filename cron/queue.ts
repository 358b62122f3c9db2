/**
 * The one KV queue listener. Every queued job is a typed message `{ type, ... }`; each
 * type has one handler, registered in {@link JOB_HANDLERS}. Queues deliver at least once,
 * so every handler must be idempotent.
 *
 * Enqueue a job in the same atomic as the write that needs it:
 * @example
 * ```ts
 * const op = kv.atomic().set(key, value);
 * enqueueJob(op, { type: "example.noop", id: "1" });
 * await op.commit();
 * ```
 * @module
 */
import type { Config } from "../lib/config.ts";
import { type SendMailJob, sendMailJob } from "./send_mail.ts";

/** A queued job. Add new message shapes to this union. */
export type Job =
  | { type: "example.noop"; id: string }
  | SendMailJob;

/** What handlers get besides the message. */
export interface JobContext {
  kv: Deno.Kv;
  /** Configuration (the mail job picks its transport from it). */
  config: Config;
}

type Handler<T extends Job["type"]> = (
  job: Extract<Job, { type: T }>,
  ctx: JobContext,
) => Promise<void>;

/** One handler per job type. A handler that throws is retried by the queue's backoff. */
export const JOB_HANDLERS: { [T in Job["type"]]: Handler<T> } = {
  "example.noop": async () => {},
  "email.send": (job, ctx) => sendMailJob(job, ctx),
};

/** Default redelivery schedule for failed jobs, ms. */
export const DEFAULT_BACKOFF = [1_000, 5_000, 30_000, 120_000, 600_000];

/** Adds a job to an atomic (so it commits, or not, with the write that caused it). */
export function enqueueJob(
  op: Deno.AtomicOperation,
  job: Job,
  options: { delay?: number; backoffSchedule?: number[]; keysIfUndelivered?: Deno.KvKey[] } = {},
): Deno.AtomicOperation {
  return op.enqueue(job, { backoffSchedule: DEFAULT_BACKOFF, ...options });
}

function isJob(msg: unknown): msg is Job {
  return typeof msg === "object" && msg !== null &&
    typeof (msg as { type?: unknown }).type === "string" &&
    (msg as { type: string }).type in JOB_HANDLERS;
}

/** Dispatches one message; unknown messages are logged and dropped (never retried forever). */
export async function dispatchJob(msg: unknown, ctx: JobContext): Promise<void> {
  if (!isJob(msg)) {
    console.error("queue: dropping unknown message", JSON.stringify(msg)?.slice(0, 200));
    return;
  }
  const handler = JOB_HANDLERS[msg.type] as Handler<typeof msg.type>;
  await handler(msg, ctx);
}

/** Starts the listener (once per KV handle; main.ts calls it). */
export function startQueueListener(ctx: JobContext): Promise<void> {
  return ctx.kv.listenQueue((msg) => dispatchJob(msg, ctx));
}
