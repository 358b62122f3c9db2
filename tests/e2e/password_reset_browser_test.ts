/**
 * Browser test (Chromium): forgot password → open the mail in /dev/mail → reset → sign in
 * with the new password; the old password fails and another browser context is signed out.
 * No request carries the reset token in its Referer.
 */
import assert from "node:assert/strict";
import type { BrowserContext } from "playwright-core";
import { launchBrowser } from "./browser.ts";
import { createApp } from "../../app.ts";
import { testConfig } from "../../lib/config.ts";
import { loadAssets } from "../../lib/assets.ts";
import { openKv } from "../../kv/db.ts";
import { startQueueListener } from "../../cron/queue.ts";
import { GOOD_PASSWORD } from "../helpers.ts";

const NEW_PASSWORD = "copper-meadow-63-finches";

Deno.test("browser: reset a forgotten password from the development outbox", async () => {
  const kv = await openKv(":memory:");
  // The app needs the server's origin (for CSRF and links), so it is built after listen.
  const built: { app?: ReturnType<typeof createApp> } = {};
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (req, info) => built.app!.fetch(req, info),
  );
  const origin = `http://127.0.0.1:${server.addr.port}`;
  const config = testConfig({ appUrl: new URL(origin) });
  built.app = createApp({ config, kv, assets: await loadAssets() });
  const listening = startQueueListener({ kv, config });
  const browser = await launchBrowser();
  const referers: string[] = [];
  const newContext = async () => {
    const ctx = await browser.newContext({ baseURL: origin });
    ctx.on("request", (r) => {
      const referer = r.headers()["referer"];
      if (referer) referers.push(referer);
    });
    return ctx;
  };
  const signIn = async (ctx: BrowserContext, email: string, password: string) => {
    const page = await ctx.newPage();
    await page.goto("/login");
    await page.getByLabel("Email").fill(email);
    await page.getByLabel("Password", { exact: true }).fill(password);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForLoadState();
    return page;
  };
  try {
    const email = "river@example.com";
    const a = await newContext();
    const signup = await a.newPage();
    await signup.goto("/signup");
    await signup.getByLabel("Email").fill(email);
    await signup.getByLabel("Password").fill(GOOD_PASSWORD);
    await signup.getByRole("button", { name: "Create account" }).click();
    await signup.waitForURL(/\/w\//);

    const b = await newContext(); // another browser, signed in too
    const other = await signIn(b, email, GOOD_PASSWORD);
    assert.match(other.url(), /\/w\//);

    // Forgot password, from the sign-in page of a browser that is not signed in.
    const c = await newContext();
    const page = await c.newPage();
    await page.goto("/login");
    await page.getByRole("link", { name: "Forgot your password?" }).click();
    await page.getByLabel("Email").fill(email);
    await page.getByRole("button", { name: "Send me a reset link" }).click();
    await page.getByText("we sent it a link").waitFor();

    // Open the mail in the development outbox and follow its link.
    let link = null;
    for (let i = 0; i < 50 && !link; i++) {
      await page.goto("/dev/mail");
      const mail = page.locator("article.mail", { hasText: "Reset your Lodge password" });
      if (await mail.count()) link = mail.getByRole("link", { name: /\/password\/reset\?token=/ });
      else await page.waitForTimeout(50);
    }
    assert.ok(link, "the reset mail is in the outbox");
    const token = new URL((await link.getAttribute("href"))!).searchParams.get("token")!;
    assert.equal(token.length, 43);
    await link.click();
    await page.waitForURL(`${origin}/password/reset`);
    assert.ok(!page.url().includes(token), "the token left the address bar");

    await page.getByLabel("New password", { exact: true }).fill(NEW_PASSWORD);
    await page.getByLabel("Repeat the new password").fill(NEW_PASSWORD);
    await page.getByRole("button", { name: "Set new password" }).click();
    await page.waitForURL(/\/login\?m=password_reset/);
    await page.getByText("Your password was changed").waitFor();

    // The new password works; the old one does not; the other browser is signed out.
    const fresh = await newContext();
    const oldTry = await signIn(fresh, email, GOOD_PASSWORD);
    await oldTry.getByText("The email address or password is incorrect.").waitFor();
    await page.getByLabel("Email").fill(email);
    await page.getByLabel("Password", { exact: true }).fill(NEW_PASSWORD);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(/\/w\//);
    await other.reload();
    assert.match(other.url(), /\/login/);
    await signup.reload();
    assert.match(signup.url(), /\/login/);

    assert.ok(referers.length > 0, "referers were observed");
    assert.deepEqual(referers.filter((r) => r.includes(token)), [], "no token in any Referer");
  } finally {
    await browser.close();
    await server.shutdown();
    kv.close();
    await listening;
  }
});
