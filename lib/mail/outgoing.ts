/**
 * Queuing mail: {@link enqueueMail} renders a template for a recipient and adds the
 * `email.send` job to the caller's atomic, so the mail commits (or not) together with the
 * token it carries.
 *
 * @example
 * ```ts
 * const op = kv.atomic().set(keys.resetToken(hash), record);
 * enqueueMail(op, user.email, { kind: "password_reset", link, expiresInSeconds: 3600 });
 * await op.commit();
 * ```
 * @module
 */
import { enqueueJob } from "../../cron/queue.ts";
import { MAIL_BACKOFF } from "../../cron/send_mail.ts";
import * as keys from "../../kv/keys.ts";
import { newId } from "../crypto.ts";
import { type MailContent, renderMail } from "./templates.ts";

/**
 * Renders `content` for `to` and enqueues it in `op`. Returns the message id. When every
 * redelivery fails, KV stores the job under `mail_undelivered` (counted on /health).
 */
export function enqueueMail(op: Deno.AtomicOperation, to: string, content: MailContent): string {
  const messageId = newId();
  const rendered = renderMail(content);
  enqueueJob(op, { type: "email.send", messageId, mail: { to, kind: content.kind, ...rendered } }, {
    backoffSchedule: MAIL_BACKOFF,
    keysIfUndelivered: [keys.mailUndelivered(messageId)],
  });
  return messageId;
}
