/**
 * The `email.send` queue job: delivers one mail through the configured transport.
 *
 * Idempotent: the message's status in KV says whether it was already sent, and the
 * provider gets the message id as its Idempotency-Key, so a redelivered job never sends
 * twice. A failed attempt is recorded and thrown, so the queue retries it with backoff;
 * after {@link MAIL_MAX_ATTEMPTS} (or an error a retry cannot fix) the mail is recorded as
 * failed and counted, never dropped quietly. Each outcome leaves a breadcrumb without
 * addresses.
 *
 * @example
 * ```ts
 * await sendMailJob({ type: "email.send", messageId, mail }, { kv, config });
 * ```
 * @module
 */
import type { Config } from "../lib/config.ts";
import { MailSendError, type MailTransport, mailTransport } from "../lib/mail/transport.ts";
import { getMailStatus, type OutgoingMail, recordFailure, recordSent } from "../kv/mail.ts";
import { breadcrumb, captureWarning } from "../lib/observability.ts";

/** The queued message. */
export interface SendMailJob {
  type: "email.send";
  messageId: string;
  mail: OutgoingMail;
}

/** Redelivery delays after a failed attempt, ms: five attempts over about 37 minutes. */
export const MAIL_BACKOFF = [10_000, 60_000, 300_000, 1_800_000];

/** Attempts before a mail is recorded as failed (the first try plus each backoff step). */
export const MAIL_MAX_ATTEMPTS = MAIL_BACKOFF.length + 1;

/** Delivers one queued mail (see module doc). Throws to ask the queue for a retry. */
export async function sendMailJob(
  job: SendMailJob,
  ctx: { kv: Deno.Kv; config: Config },
  transport: MailTransport = mailTransport(ctx.config, ctx.kv),
): Promise<void> {
  const { kv } = ctx;
  const kind = job.mail.kind;
  const entry = await getMailStatus(kv, job.messageId);
  if (entry.value?.state === "sent" || entry.value?.state === "failed") {
    breadcrumb("email", "duplicate delivery skipped", {
      kind,
      messageId: job.messageId,
      state: entry.value.state,
    });
    return;
  }
  try {
    const { id } = await transport.send(job.mail, job.messageId);
    await recordSent(kv, job.messageId, entry, { transport: transport.name, providerId: id });
    breadcrumb("email", "sent", {
      kind,
      transport: transport.name,
      messageId: job.messageId,
      providerId: id,
    });
  } catch (err) {
    const summary = err instanceof MailSendError ? err.summary : (err as Error)?.name ?? "error";
    const retryable = !(err instanceof MailSendError) || err.retryable;
    const attempt = (entry.value?.attempts ?? 0) + 1;
    const final = !retryable || attempt >= MAIL_MAX_ATTEMPTS;
    await recordFailure(kv, job.messageId, entry, {
      kind,
      error: summary,
      final,
      transport: transport.name,
    });
    breadcrumb(
      "email",
      final ? "send failed, giving up" : "send failed, will retry",
      { kind, transport: transport.name, messageId: job.messageId, attempt, error: summary },
      final ? "error" : "warning",
    );
    if (final) {
      console.error(
        `mail ${job.messageId} (${kind}) failed after ${attempt} attempt(s): ${summary}`,
      );
      captureWarning("mail delivery failed", { kind, attempts: attempt, error: summary });
      return;
    }
    throw err;
  }
}
