/**
 * Mail transports: Resend (`npm:resend`) when RESEND_API_KEY is set, otherwise the
 * development outbox in KV (read at `GET /dev/mail`). The Resend client honours
 * RESEND_BASE_URL (configuration passes it on), so tests point it at a local fake.
 *
 * @example
 * ```ts
 * const transport = mailTransport(config, kv);
 * const { id } = await transport.send(mail, messageId);
 * ```
 * @module
 */
import { Resend } from "resend";
import type { Config } from "../config.ts";
import { type OutgoingMail, storeOutboxMail } from "../../kv/mail.ts";

/** Why a send failed; `retryable` false means trying again cannot help (e.g. 422). */
export class MailSendError extends Error {
  constructor(
    /** Short, address-free description: provider error name and HTTP status. */
    readonly summary: string,
    readonly retryable: boolean,
  ) {
    super(`mail send failed: ${summary}`);
    this.name = "MailSendError";
  }
}

/** Something that delivers one mail and returns the provider's message id. */
export interface MailTransport {
  name: "resend" | "outbox";
  /** Sends `mail`; `messageId` is the idempotency key (one message id → at most one mail). */
  send(mail: OutgoingMail, messageId: string): Promise<{ id: string }>;
}

/** Resend: one POST /emails per mail, with an Idempotency-Key of the message id. */
export function resendTransport(
  options: { apiKey: string; from: string; baseUrl?: string },
): MailTransport {
  const client = new Resend(options.apiKey, options.baseUrl ? { baseUrl: options.baseUrl } : {});
  return {
    name: "resend",
    async send(mail, messageId) {
      const res = await client.emails.send({
        from: options.from,
        to: [mail.to],
        subject: mail.subject,
        html: mail.html,
        text: mail.text,
        tags: [{ name: "kind", value: mail.kind }],
      }, { idempotencyKey: `lodge-mail-${messageId}` });
      if (res.error || !res.data?.id) {
        const status = (res.error as { statusCode?: number | null } | null)?.statusCode ?? null;
        const name = res.error?.name ?? "no_id";
        // Network failures (no status), rate limits and server errors may pass on a retry;
        // validation and authorization errors will not.
        const retryable = status === null || status === 409 || status === 429 || status >= 500;
        throw new MailSendError(`${name} (${status ?? "no status"})`, retryable);
      }
      return { id: res.data.id };
    },
  };
}

/** The development outbox: the mail is stored in KV under its message id. */
export function outboxTransport(kv: Deno.Kv): MailTransport {
  return {
    name: "outbox",
    async send(mail, messageId) {
      await storeOutboxMail(kv, messageId, mail);
      return { id: messageId };
    },
  };
}

/** The transport configuration asks for. */
export function mailTransport(config: Config, kv: Deno.Kv): MailTransport {
  return config.resendApiKey
    ? resendTransport({
      apiKey: config.resendApiKey,
      from: config.emailFrom,
      baseUrl: config.resendBaseUrl,
    })
    : outboxTransport(kv);
}

/** The transport's name without building it (for /health). */
export function mailTransportName(config: Config): MailTransport["name"] {
  return config.resendApiKey ? "resend" : "outbox";
}
