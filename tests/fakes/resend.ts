/**
 * A local stand-in for Resend's HTTP API (`POST /emails`), so the real `resend` SDK runs in
 * tests. It checks the bearer key and required fields like the service does, honours
 * `Idempotency-Key` (a repeated key returns the first answer and sends nothing new), and
 * can be told to fail the next requests.
 *
 * @example
 * ```ts
 * const fake = startFakeResend({ apiKey: "re_test" });
 * const config = testConfig({ resendApiKey: "re_test", resendBaseUrl: fake.url, emailFrom: "Lodge <a@b.co>" });
 * // … fake.emails[0].to
 * await fake.close();
 * ```
 * @module
 */

/** One mail the fake accepted. */
export interface ReceivedEmail {
  id: string;
  idempotencyKey: string | null;
  from: string;
  to: string[];
  subject: string;
  html: string;
  text: string;
  tags: { name: string; value: string }[];
}

/** A running fake. */
export interface FakeResend {
  url: string;
  /** Accepted mails, in order (a repeated idempotency key adds nothing). */
  emails: ReceivedEmail[];
  /** Every POST /emails received, including failed and repeated ones. */
  requests: number;
  /** Answer the next `n` requests with `status` (default 500). */
  failNext(n: number, status?: number): void;
  close(): Promise<void>;
}

/** Starts the fake on 127.0.0.1 and a free port. */
export function startFakeResend(options: { apiKey: string }): FakeResend {
  let failures = 0;
  let failStatus = 500;
  const byKey = new Map<string, ReceivedEmail>();
  const fake: FakeResend = {
    url: "",
    emails: [],
    requests: 0,
    failNext(n, status = 500) {
      failures = n;
      failStatus = status;
    },
    close: () => server.shutdown(),
  };
  const error = (statusCode: number, name: string, message: string) =>
    Response.json({ statusCode, name, message }, { status: statusCode });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const url = new URL(req.url);
    if (req.method !== "POST" || url.pathname !== "/emails") {
      return error(404, "not_found", "The requested endpoint does not exist.");
    }
    fake.requests++;
    if (req.headers.get("authorization") !== `Bearer ${options.apiKey}`) {
      return error(401, "missing_api_key", "Missing API key in the authorization header.");
    }
    if (failures > 0) {
      failures--;
      return error(
        failStatus,
        failStatus === 429 ? "rate_limit_exceeded" : "internal_server_error",
        "fake failure",
      );
    }
    let body: Record<string, unknown>;
    try {
      body = await req.json();
    } catch {
      return error(422, "validation_error", "Invalid JSON body.");
    }
    const to = Array.isArray(body.to) ? body.to as string[] : [body.to as string];
    if (typeof body.from !== "string" || !to[0] || typeof body.subject !== "string") {
      return error(422, "validation_error", "The `from`, `to` and `subject` fields are required.");
    }
    if (to.some((a) => !/^[^@\s]+@[^@\s]+$/.test(a))) {
      return error(422, "validation_error", "Invalid `to` field.");
    }
    const key = req.headers.get("idempotency-key");
    const seen = key ? byKey.get(key) : undefined;
    if (seen) return Response.json({ id: seen.id });
    const mail: ReceivedEmail = {
      id: crypto.randomUUID(),
      idempotencyKey: key,
      from: body.from,
      to,
      subject: body.subject,
      html: String(body.html ?? ""),
      text: String(body.text ?? ""),
      tags: (body.tags as ReceivedEmail["tags"]) ?? [],
    };
    if (key) byKey.set(key, mail);
    fake.emails.push(mail);
    return Response.json({ id: mail.id });
  });
  fake.url = `http://127.0.0.1:${server.addr.port}`;
  return fake;
}
