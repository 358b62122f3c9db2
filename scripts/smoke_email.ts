/**
 * Staging smoke test for mail: sends one real test mail through the configured provider
 * (Resend when RESEND_API_KEY is set, else the KV outbox) and prints the provider's id.
 * It sends directly, not through the queue, so the answer is the provider's own.
 *
 * @example
 * ```sh
 * RESEND_API_KEY=re_… EMAIL_FROM="Lodge <no-reply@example.com>" deno task smoke:email you@example.com
 * ```
 * @module
 */
import { ConfigError, loadConfig } from "../lib/config.ts";
import { parseEmail } from "../lib/email.ts";
import { newId } from "../lib/crypto.ts";
import { renderMail } from "../lib/mail/templates.ts";
import { MailSendError, mailTransport } from "../lib/mail/transport.ts";
import { openKv } from "../kv/db.ts";

const address = parseEmail(Deno.args[0] ?? "");
if (!address.ok) {
  console.error(`usage: deno task smoke:email <address>\n${address.error}`);
  Deno.exit(2);
}
let config;
try {
  config = loadConfig(Deno.env.toObject());
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(err.message);
    Deno.exit(2);
  }
  throw err;
}
const kv = config.resendApiKey ? null : await openKv(config.kvPath);
const transport = mailTransport(config, kv!);
const content = renderMail({ kind: "smoke_test", sentAt: new Date().toISOString() });
try {
  const { id } = await transport.send(
    { to: address.display, kind: "smoke_test", ...content },
    newId(),
  );
  console.error(
    transport.name === "resend"
      ? "Sent through Resend; the provider's id:"
      : "RESEND_API_KEY is not set: stored in the development outbox (/dev/mail); its id:",
  );
  console.log(id);
} catch (err) {
  console.error(
    `Sending failed: ${err instanceof MailSendError ? err.summary : (err as Error).message}`,
  );
  Deno.exitCode = 1;
} finally {
  kv?.close();
}
