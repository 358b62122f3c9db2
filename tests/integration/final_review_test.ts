import assert from "node:assert/strict";
import { GOOD_PASSWORD, testApp } from "../helpers.ts";
import { linkIn, startMail } from "../mail_helpers.ts";
import * as keys from "../../kv/keys.ts";

Deno.test("header: the signed-in name links to the account page", async () => {
  const t = await testApp();
  try {
    const { location } = await t.signup("hdr@example.com", "Hedda");
    const html = await (await t.request(location)).text();
    assert.match(html, /<a class="who" href="\/account"[^>]*>Hedda<\/a>/);
  } finally {
    t.close();
  }
});

Deno.test("password change: the owner gets a notice mail", async () => {
  const t = await testApp();
  const mail = startMail(t);
  try {
    const { email } = await t.signup();
    const res = await t.post("/account/password", {
      current: GOOD_PASSWORD,
      password: "amber-lantern-42-otters",
    });
    assert.equal(res.status, 303);
    const notice = await mail.waitFor((m) => m.kind === "password_changed" && m.to === email);
    assert.match(notice.text, /password/i);
  } finally {
    await mail.close();
  }
});

Deno.test("export: HEAD builds and records nothing; other methods get 405", async () => {
  const t = await testApp();
  try {
    const { location } = await t.signup("head@example.com", "Head");
    const slug = location.split("/").at(-1)!;
    const audit = async () => {
      let n = 0;
      for await (const e of t.kv.list<{ type: string }>({ prefix: ["audit"] })) {
        if (e.value.type === "workspace.exported") n++;
      }
      return n;
    };
    const head = await t.request(`/w/${slug}/export`, { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.match(head.headers.get("content-disposition")!, /^attachment;/);
    assert.equal(await audit(), 0);
    assert.equal((await t.request(`/w/${slug}/export`)).status, 200);
    assert.equal(await audit(), 1);
    const post = await t.post(`/w/${slug}/export`, {});
    assert.equal(post.status, 405);
    assert.equal(post.headers.get("allow"), "GET, HEAD");
  } finally {
    t.close();
  }
});

Deno.test("email change: a case-only change is reported as a change", async () => {
  const t = await testApp();
  const mail = startMail(t);
  try {
    const { email } = await t.signup("Case.Only@example.com");
    const lower = email.toLowerCase();
    assert.equal(
      (await t.post("/account/email", { email: lower, password: GOOD_PASSWORD })).status,
      303,
    );
    const confirm = await mail.waitFor((m) => m.kind === "verify_new_email" && m.to === lower);
    const token = new URL(linkIn(confirm)).searchParams.get("token")!;
    const done = await t.post("/verify-email", { token });
    assert.equal(done.status, 303);
    assert.equal(done.headers.get("location"), "/account?email=changed");
    const id = (await t.kv.get<string>(keys.userByEmail(lower))).value!;
    assert.equal((await t.kv.get<{ email: string }>(keys.user(id))).value!.email, lower);
  } finally {
    await mail.close();
  }
});
