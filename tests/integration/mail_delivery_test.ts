import assert from "node:assert/strict";
import { testApp } from "../helpers.ts";
import { startMail } from "../mail_helpers.ts";
import { startFakeResend } from "../fakes/resend.ts";
import { testConfig } from "../../lib/config.ts";
import { openKv } from "../../kv/db.ts";
import { getFailedMail, getMailStatus, mailCounts, storeOutboxMail } from "../../kv/mail.ts";
import { MAIL_MAX_ATTEMPTS, type SendMailJob, sendMailJob } from "../../cron/send_mail.ts";
import { renderMail } from "../../lib/mail/templates.ts";
import { newId } from "../../lib/crypto.ts";
import { enqueueJob } from "../../cron/queue.ts";
import * as keys from "../../kv/keys.ts";

const KEY = "re_test_key";
const FROM = "Lodge <no-reply@lodge.example>";

function job(to = "ada@example.com"): SendMailJob {
  const content = renderMail({
    kind: "password_reset",
    link: "http://localhost:8000/password/reset?token=x",
    expiresInSeconds: 3600,
  });
  return {
    type: "email.send",
    messageId: newId(),
    mail: { to, kind: "password_reset", ...content },
  };
}

Deno.test("the real Resend SDK sends through RESEND_BASE_URL with an idempotency key; a redelivered job sends once", async () => {
  const fake = startFakeResend({ apiKey: KEY });
  const kv = await openKv(":memory:");
  try {
    const config = testConfig({ resendApiKey: KEY, emailFrom: FROM, resendBaseUrl: fake.url });
    const j = job();
    await sendMailJob(j, { kv, config });
    await sendMailJob(j, { kv, config }); // the queue delivers at least once
    assert.equal(fake.emails.length, 1);
    const sent = fake.emails[0];
    assert.deepEqual(sent.to, ["ada@example.com"]);
    assert.equal(sent.from, FROM);
    assert.equal(sent.idempotencyKey, `lodge-mail-${j.messageId}`);
    assert.match(sent.text, /password\/reset\?token=x/);
    assert.match(sent.html, /<a href="http:\/\/localhost:8000\/password\/reset\?token=x"/);
    const status = (await getMailStatus(kv, j.messageId)).value!;
    assert.equal(status.state, "sent");
    assert.equal(status.providerId, sent.id);
    assert.deepEqual(await mailCounts(kv), { sent: 1, failed: 0, undelivered: 0 });
  } finally {
    kv.close();
    await fake.close();
  }
});

Deno.test("a failed send is retried (the job throws) and then succeeds once", async () => {
  const fake = startFakeResend({ apiKey: KEY });
  const kv = await openKv(":memory:");
  try {
    const config = testConfig({ resendApiKey: KEY, emailFrom: FROM, resendBaseUrl: fake.url });
    fake.failNext(2, 503);
    const j = job();
    await assert.rejects(sendMailJob(j, { kv, config }));
    await assert.rejects(sendMailJob(j, { kv, config }));
    assert.equal((await getMailStatus(kv, j.messageId)).value?.attempts, 2);
    await sendMailJob(j, { kv, config });
    assert.equal(fake.emails.length, 1);
    assert.equal(fake.requests, 3);
    assert.deepEqual(await mailCounts(kv), { sent: 1, failed: 0, undelivered: 0 });
  } finally {
    kv.close();
    await fake.close();
  }
});

Deno.test("a mail that finally fails is recorded without address or link, counted, and shown on /health", async () => {
  const fake = startFakeResend({ apiKey: KEY });
  const t = await testApp({ resendApiKey: KEY, emailFrom: FROM, resendBaseUrl: fake.url });
  try {
    fake.failNext(100, 500);
    const j = job("secret-person@example.com");
    for (let i = 1; i < MAIL_MAX_ATTEMPTS; i++) {
      await assert.rejects(sendMailJob(j, t), `attempt ${i} asks for a retry`);
    }
    await sendMailJob(j, t); // the last attempt records the failure instead of throwing
    const failed = await getFailedMail(t.kv, j.messageId);
    assert.equal(failed?.attempts, MAIL_MAX_ATTEMPTS);
    assert.equal(failed?.kind, "password_reset");
    assert.ok(!JSON.stringify(failed).includes("secret-person"));
    assert.ok(!JSON.stringify(failed).includes("token"));
    await sendMailJob(j, t); // a late redelivery does nothing
    assert.equal(fake.requests, MAIL_MAX_ATTEMPTS);

    // A validation error cannot be fixed by retrying: recorded at once.
    fake.failNext(0);
    const bad = job("not-an-address");
    await sendMailJob(bad, t);
    assert.equal((await getFailedMail(t.kv, bad.messageId))?.attempts, 1);

    const health = await (await t.request("/health")).json();
    assert.deepEqual(health.email, { transport: "resend", sent: 0, failed: 2, undelivered: 0 });
  } finally {
    t.close();
    await fake.close();
  }
});

Deno.test("sign-up queues a verification mail that the queue delivers through Resend", async () => {
  const fake = startFakeResend({ apiKey: KEY });
  const t = await testApp({ resendApiKey: KEY, emailFrom: FROM, resendBaseUrl: fake.url });
  const mail = startMail(t);
  try {
    const { email } = await t.signup();
    const end = Date.now() + 5000;
    while (fake.emails.length === 0 && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(fake.emails.length, 1);
    assert.deepEqual(fake.emails[0].to, [email]);
    assert.match(fake.emails[0].subject, /Confirm your email address/);
    assert.match(fake.emails[0].text, /\/verify-email\?token=[A-Za-z0-9_-]{43}/);
    assert.deepEqual(fake.emails[0].tags, [{ name: "kind", value: "verify_email" }]);
    assert.equal((await mail.all()).length, 0, "nothing goes to the outbox when Resend is on");
  } finally {
    await mail.close();
    await fake.close();
  }
});

Deno.test("deno task smoke:email sends one mail through RESEND_BASE_URL and prints the provider's id", async () => {
  const fake = startFakeResend({ apiKey: KEY });
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["task", "-q", "smoke:email", "ops@example.com"],
      env: { RESEND_API_KEY: KEY, EMAIL_FROM: FROM, RESEND_BASE_URL: fake.url, NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(out.stdout).trim();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    assert.equal(fake.emails.length, 1);
    assert.equal(stdout, fake.emails[0].id);
    assert.deepEqual(fake.emails[0].to, ["ops@example.com"]);
    assert.match(fake.emails[0].subject, /smoke test/);
  } finally {
    await fake.close();
  }
});

Deno.test("/dev/mail opens only to this machine: a development server on 0.0.0.0 keeps its reset links", async () => {
  for (const trustProxy of [false, true]) {
    const t = await testApp({ trustProxy });
    try {
      await storeOutboxMail(t.kv, newId(), {
        to: "victim@example.com",
        kind: "password_reset",
        ...renderMail({
          kind: "password_reset",
          link: "http://localhost:8000/password/reset?token=SECRET",
          expiresInSeconds: 60,
        }),
      });
      for (const ip of ["127.0.0.1", "127.3.2.1", "::1", "::ffff:127.0.0.1"]) {
        const res = await t.request("/dev/mail", { ip });
        assert.equal(res.status, 200, `${ip} (TRUST_PROXY=${trustProxy})`);
        assert.match(await res.text(), /token=SECRET/);
      }
      for (const ip of ["192.0.2.7", "10.0.0.2", "::ffff:10.0.0.2", "fe80::1", "128.0.0.1"]) {
        const res = await t.request("/dev/mail", { ip });
        assert.equal(res.status, 403, `${ip} (TRUST_PROXY=${trustProxy})`);
        const html = await res.text();
        assert.ok(!html.includes("SECRET") && !html.includes("victim@"), ip);
        assert.match(html, /only in a browser on the machine Lodge runs on/);
      }
      // A proxy on this machine forwards a visitor from elsewhere, or junk, or Lodge was not told
      // about the proxy at all: not local, whatever the entry says.
      for (
        const headers of <Record<string, string>[]> [
          { "x-forwarded-for": "203.0.113.9" },
          { "x-forwarded-for": "unknown" },
          { "x-forwarded-for": "[::1]" },
          { "x-forwarded-for": "0x7f.0.0.1" },
          { "x-forwarded-for": "1".repeat(80) },
          { forwarded: "for=127.0.0.1" },
          { "x-real-ip": "127.0.0.1" },
        ]
      ) {
        const res = await t.request("/dev/mail", { ip: "127.0.0.1", headers });
        assert.equal(res.status, 403, `${JSON.stringify(headers)} (TRUST_PROXY=${trustProxy})`);
        await res.body?.cancel();
      }
      // DNS rebinding: the developer's browser, on loopback, but asking for another site's name.
      for (const host of ["attacker.example", "attacker.example:8000", "127.0.0.1.nip.example"]) {
        const res = await t.app.request(`http://${host}/dev/mail`, {}, {
          remoteAddr: { hostname: "127.0.0.1" },
        });
        assert.equal(res.status, 403, host);
        await res.body?.cancel();
      }
      for (const host of ["localhost:8000", "127.0.0.1:8000", "[::1]:8000", "app.localhost"]) {
        const res = await t.app.request(`http://${host}/dev/mail`, {}, {
          remoteAddr: { hostname: "127.0.0.1" },
        });
        assert.equal(res.status, 200, host);
        await res.body?.cancel();
      }
      // Behind the trusted proxy, a visitor on this machine is still local.
      const local = await t.request("/dev/mail", {
        ip: "127.0.0.1",
        headers: { "x-forwarded-for": "127.0.0.1" },
      });
      assert.equal(local.status, trustProxy ? 200 : 403);
      await local.body?.cancel();
    } finally {
      t.close();
    }
  }
});

Deno.test("/dev/mail lists the outbox newest first with clickable links; 404 in production", async () => {
  const t = await testApp();
  try {
    const first = renderMail({
      kind: "verify_email",
      link: "http://localhost:8000/verify-email?token=AAA",
      expiresInSeconds: 60,
    });
    const second = renderMail({
      kind: "password_reset",
      link: "http://localhost:8000/password/reset?token=BBB",
      expiresInSeconds: 60,
    });
    await storeOutboxMail(t.kv, newId(Date.now() - 1000), {
      to: "a@example.com",
      kind: "verify_email",
      ...first,
    });
    await storeOutboxMail(t.kv, newId(), {
      to: "<b>@example.com",
      kind: "password_reset",
      ...second,
    });
    const res = await t.request("/dev/mail", { ip: "127.0.0.1" });
    assert.equal(res.status, 200);
    const html = await res.text();
    assert.ok(
      html.indexOf("Reset your Lodge password") < html.indexOf("Confirm your email address"),
    );
    assert.match(html, /<a href="http:\/\/localhost:8000\/password\/reset\?token=BBB">/);
    assert.match(html, /<a href="http:\/\/localhost:8000\/verify-email\?token=AAA">/);
    assert.ok(
      html.includes("&lt;b>@example.com") && !html.includes("<b>@"),
      "addresses are escaped",
    );
  } finally {
    t.close();
  }
  const prod = await testApp({ appEnv: "production" });
  try {
    await storeOutboxMail(prod.kv, newId(), {
      to: "a@example.com",
      kind: "smoke_test",
      ...renderMail({ kind: "smoke_test", sentAt: "now" }),
    });
    const res = await prod.request("/dev/mail", { ip: "127.0.0.1" });
    assert.equal(res.status, 404);
    assert.ok(!(await res.text()).includes("a@example.com"));
  } finally {
    prod.close();
  }
});

Deno.test("when the queue gives up redelivering, KV keeps the job under mail_undelivered and /health counts it", async () => {
  const fake = startFakeResend({ apiKey: KEY });
  const t = await testApp({ resendApiKey: KEY, emailFrom: FROM, resendBaseUrl: fake.url });
  const mail = startMail(t);
  try {
    fake.failNext(100, 503);
    const j = job();
    // Fewer deliveries than MAIL_MAX_ATTEMPTS, so every one throws and KV's own backstop acts.
    const op = t.kv.atomic();
    enqueueJob(op, j, {
      backoffSchedule: [20],
      keysIfUndelivered: [keys.mailUndelivered(j.messageId)],
    });
    await op.commit();
    const end = Date.now() + 5000;
    while (Date.now() < end && !(await t.kv.get(keys.mailUndelivered(j.messageId))).value) {
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(fake.requests, 2);
    const health = await (await t.request("/health")).json();
    assert.equal(health.email.undelivered, 1);
  } finally {
    await mail.close();
    await fake.close();
  }
});
