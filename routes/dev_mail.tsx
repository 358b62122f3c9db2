/**
 * `GET /dev/mail`: the development outbox — every mail stored by the outbox transport,
 * newest first, with its links clickable. Answers 404 when APP_ENV=production, whatever
 * the transport, and 403 to any client not on this machine: the outbox holds live reset links,
 * so a development server bound to `0.0.0.0` must not hand them to the network.
 *
 * @example
 * ```sh
 * open http://localhost:8000/dev/mail
 * ```
 * @module
 */
import { Hono } from "hono";
import { Layout } from "../components/Layout.tsx";
import { type AppEnv, fromThisMachine } from "../lib/http.ts";
import { pageContext, renderPage } from "../lib/render.tsx";
import { listOutbox, type OutboxMail } from "../kv/mail.ts";
import { mailTransportName } from "../lib/mail/transport.ts";
import { errorResponse } from "./errors.tsx";

const URL_RE = /https?:\/\/[^\s<>"]+/g;

/** Plain text with each http(s) URL turned into a link (everything else stays text). */
function Linkified({ text }: { text: string }) {
  const parts: (string | { href: string })[] = [];
  let last = 0;
  for (const m of text.matchAll(URL_RE)) {
    parts.push(text.slice(last, m.index), { href: m[0] });
    last = m.index! + m[0].length;
  }
  parts.push(text.slice(last));
  return (
    <pre class="mail-body">{parts.map((p, i) => typeof p === "string" ? p : <a key={i} href={p.href}>{p.href}</a>)}</pre>
  );
}

function MailItem({ mail }: { mail: OutboxMail }) {
  const at = new Date(mail.createdAt).toISOString();
  return (
    <article class="card mail" aria-labelledby={`m-${mail.id}`}>
      <h2 id={`m-${mail.id}`}>{mail.subject}</h2>
      <dl class="facts">
        <dt>To</dt>
        <dd>{mail.to}</dd>
        <dt>Sent</dt>
        <dd>
          <time dateTime={at}>{at.replace("T", " ").slice(0, 19)} UTC</time>
        </dd>
        <dt>Kind</dt>
        <dd>{mail.kind}</dd>
      </dl>
      <Linkified text={mail.text} />
    </article>
  );
}

/** Routes: /dev/mail. */
export function devMailRoutes(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.get("/dev/mail", async (c) => {
    const config = c.get("config");
    if (config.appEnv === "production") return errorResponse(c, 404);
    if (!fromThisMachine(c, config.trustProxy)) {
      return errorResponse(
        c,
        403,
        "The development outbox opens only in a browser on the machine Lodge runs on.",
      );
    }
    const mails = await listOutbox(c.get("kv"));
    c.header("Referrer-Policy", "no-referrer");
    return renderPage(
      c,
      <Layout page={pageContext(c)} title="Development outbox">
        <section class="workspace-head">
          <p class="eyebrow">Development only</p>
          <h1>Outbox</h1>
          <p class="muted">
            {mailTransportName(config) === "outbox"
              ? "Mail is not delivered in this environment: every mail Lodge sends appears here, newest first."
              : "RESEND_API_KEY is set, so new mail goes to Resend; older outbox mail is shown below."}
          </p>
        </section>
        {mails.length === 0
          ? <p class="muted">No mail yet.</p>
          : mails.map((m) => <MailItem key={m.id} mail={m} />)}
      </Layout>,
    );
  });
  return app;
}
