import assert from "node:assert/strict";
import { launchBrowser, startServer } from "./browser.ts";
import { GOOD_PASSWORD } from "../helpers.ts";

// README pictures: refreshed by `deno task screenshots` (UPDATE_SCREENSHOTS=1); plain test
// runs write to .tmp/ so they leave the working tree clean.
const SHOTS = new URL(
  Deno.env.get("UPDATE_SCREENSHOTS") ? "../../docs/screenshots/" : "../../.tmp/screenshots/",
  import.meta.url,
);

Deno.test({
  name: "browser: sign up → workspace → reload → sign out → sign in again",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using server = await startServer();
    await using browser = await launchBrowser();
    const context = await browser.newContext({ viewport: { width: 1100, height: 720 } });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    page.on("console", (m) => m.type() === "error" && errors.push(m.text()));

    await page.goto(`${server.url}/`);
    assert.equal(new URL(page.url()).pathname, "/login");
    await Deno.mkdir(SHOTS, { recursive: true });
    await page.screenshot({ path: new URL("sign-in.png", SHOTS).pathname });

    await page.getByRole("link", { name: "Create an account" }).click();
    await page.getByLabel("Email").fill("marie@example.com");
    await page.getByLabel("Name (optional)").fill("Marie Curie");
    await page.getByLabel("Password").fill(GOOD_PASSWORD);
    await page.getByRole("button", { name: "Create account" }).click();
    await page.waitForURL(`${server.url}/w/marie-curie`);
    assert.equal(
      await page.getByRole("heading", { level: 1 }).textContent(),
      "Marie Curie's workspace",
    );

    // The island hydrated (no CSP violations, no script errors) and works.
    await page.waitForSelector("html[data-islands=hydrated]");
    await page.waitForSelector("details.switcher[data-hydrated=true]");
    await page.locator("details.switcher summary").click();
    assert.ok(await page.locator("details.switcher").evaluate((d: HTMLDetailsElement) => d.open));
    assert.ok(await page.getByRole("link", { name: /Marie Curie's workspace/ }).isVisible());
    await page.screenshot({ path: new URL("workspace.png", SHOTS).pathname });
    await page.keyboard.press("Escape");
    assert.equal(
      await page.locator("details.switcher").evaluate((d: HTMLDetailsElement) => d.open),
      false,
    );

    await page.reload();
    assert.equal(new URL(page.url()).pathname, "/w/marie-curie");
    assert.equal(
      await page.getByRole("heading", { level: 1 }).textContent(),
      "Marie Curie's workspace",
    );

    await page.getByRole("button", { name: "Sign out" }).click();
    await page.waitForURL(`${server.url}/login?m=signed_out`);
    assert.match(await page.locator("main").textContent() ?? "", /You have signed out/);
    await page.goto(`${server.url}/w/marie-curie`);
    assert.equal(new URL(page.url()).pathname, "/login");

    await page.getByLabel("Email").fill("marie@example.com");
    await page.getByLabel("Password").fill(GOOD_PASSWORD);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(`${server.url}/w/marie-curie`);
    // The account link in the header leads to where you're signed in (README picture).
    await page.getByRole("link", { name: "Marie Curie" }).click();
    await page.waitForURL(`${server.url}/account`);
    await page.getByRole("link", { name: "Where you're signed in" }).click();
    await page.waitForURL(`${server.url}/account/sessions`);
    assert.match(await page.locator("main").textContent() ?? "", /This device/);
    await page.screenshot({ path: new URL("sessions.png", SHOTS).pathname });
    assert.deepEqual(errors, []);
    await context.close();
  },
});

Deno.test({
  name: "browser: forms work with JavaScript off",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using server = await startServer();
    await using browser = await launchBrowser();
    const context = await browser.newContext({ javaScriptEnabled: false });
    const page = await context.newPage();
    await page.goto(`${server.url}/signup`);
    await page.getByLabel("Email").fill("nojs@example.com");
    await page.getByLabel("Password").fill("short");
    await page.getByRole("button", { name: "Create account" }).click();
    assert.match(
      await page.locator(".field.has-error").first().textContent() ?? "",
      /email|8 characters/i,
    );
    assert.equal(await page.getByLabel("Email").inputValue(), "nojs@example.com");
    await page.getByLabel("Password").fill(GOOD_PASSWORD);
    await page.getByRole("button", { name: "Create account" }).click();
    assert.match(new URL(page.url()).pathname, /^\/w\/nojs$/);
    // The switcher is a plain <details> menu without JavaScript.
    await page.locator("details.switcher summary").click();
    assert.ok(await page.getByRole("link", { name: /nojs's workspace/ }).isVisible());
    await context.close();
  },
});
