/**
 * Browser test (Chromium): on a phone (320–400 px) no page scrolls sideways, however long
 * the user's name: the signed-in header wraps and truncates, "Sign out" stays on screen and
 * works, the focus order is unchanged; at 1280 px the header is still one line.
 * Screenshots of each page at 360 px go to .tmp/mobile/ (not committed) to look at.
 */
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import { launchBrowser, startServer } from "./browser.ts";
import { startQueueListener } from "../../cron/queue.ts";
import { GOOD_PASSWORD } from "../helpers.ts";

const NAME = "Élodie Durand-Lothringen von Hohenzollern";
const WIDTHS = [320, 360, 400];
const SHOTS = new URL("../../.tmp/mobile/", import.meta.url);

/** Problems with `path` at each phone width: sideways scrolling, header controls off screen. */
async function phoneProblems(page: Page, path: string, signedIn: boolean): Promise<string[]> {
  const problems: string[] = [];
  for (const width of WIDTHS) {
    await page.setViewportSize({ width, height: 740 });
    const m = await page.evaluate(() => ({
      scroll: document.documentElement.scrollWidth,
      inner: globalThis.innerWidth,
      offscreen: [...document.querySelectorAll("header a, header button, header summary")]
        .filter((e) => e.checkVisibility())
        .map((e) => ({ e, r: e.getBoundingClientRect() }))
        .filter(({ r }) => r.left < 0 || r.right > globalThis.innerWidth + 0.5)
        .map(({ e, r }) => `${(e.textContent ?? "").trim().slice(0, 20)} [${r.left}–${r.right}]`),
      // Visible content sticking out of main's content box into its padding (not counting
      // what is clipped away for screen readers only).
      spill: (() => {
        const main = document.querySelector("main")!;
        const edge = main.getBoundingClientRect().right -
          parseFloat(getComputedStyle(main).paddingRight);
        const clipped = (e: Element | null): boolean =>
          !!e && e !== main && (getComputedStyle(e).clip !== "auto" || clipped(e.parentElement));
        return [...main.querySelectorAll("*")]
          .filter((e) => e.checkVisibility() && e.getBoundingClientRect().right > edge + 0.5)
          .filter((e) => !clipped(e))
          .map((e) =>
            `<${e.localName} class="${e.className}"> to ${e.getBoundingClientRect().right}`
          );
      })(),
    }));
    for (const s of m.spill) problems.push(`${path} @${width}: sticks out of main: ${s}`);
    if (m.scroll > m.inner) problems.push(`${path} @${width}: document ${m.scroll} px wide`);
    for (const o of m.offscreen) problems.push(`${path} @${width}: off screen: ${o}`);
    if (signedIn) {
      const signOut = page.locator("header").getByRole("button", { name: "Sign out" });
      const box = await signOut.boundingBox();
      if (!box || box.x < 0 || box.x + box.width > width) {
        problems.push(`${path} @${width}: Sign out at ${JSON.stringify(box)}`);
      }
    }
    if (width === 360) {
      const file = (path.replace(/\W+/g, "-").replace(/^-|-$/g, "") || "root") +
        (signedIn ? "" : "-signed-out");
      await page.screenshot({ path: new URL(`${file}.png`, SHOTS).pathname });
    }
  }
  return problems;
}

Deno.test({
  name: "browser: at 320–400 px no page overflows and Sign out stays reachable (long name)",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await Deno.mkdir(SHOTS, { recursive: true });
    let listening: Promise<void>;
    {
      await using server = await startServer();
      listening = startQueueListener({ kv: server.kv, config: server.config }); // for /dev/mail
      await using browser = await launchBrowser();
      const context = await browser.newContext({ viewport: { width: 360, height: 740 } });
      const page = await context.newPage();
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(e.message));

      await page.goto(`${server.url}/signup`);
      await page.getByLabel("Email").fill("elodie@example.com");
      await page.getByLabel("Name (optional)").fill(NAME);
      await page.getByLabel("Password").fill(GOOD_PASSWORD);
      await page.getByRole("button", { name: "Create account" }).click();
      await page.waitForURL(/\/w\/[^/]+$/);
      const workspace = new URL(page.url()).pathname;
      await page.waitForSelector("details.switcher[data-hydrated=true]");

      const problems: string[] = [];
      problems.push(...await phoneProblems(page, workspace, true));

      // The name and the workspace are cut short on screen, but whole for assistive tech and
      // in the tooltip.
      const check = (ok: boolean, problem: string) => ok || problems.push(problem);
      await page.setViewportSize({ width: 360, height: 740 });
      const who = page.locator("header a.who");
      check((await who.textContent())?.trim() === NAME, "the name link holds the whole name");
      check(
        (await who.getAttribute("title") ?? "").includes(NAME),
        `name link title: ${await who.getAttribute("title")}`,
      );
      check(
        await page.getByRole("link", { name: NAME, exact: true }).isVisible(),
        "the name link is visible under its whole name",
      );
      const summary = page.locator("details.switcher summary");
      check(
        /Current:\s*Élodie Durand-Lothringen von Hohenzollern's workspace$/.test(
          (await summary.textContent() ?? "").trim(),
        ),
        `switcher text: ${await summary.textContent()}`,
      );
      check(
        await summary.getAttribute("title") === `${NAME}'s workspace`,
        `switcher title: ${await summary.getAttribute("title")}`,
      );

      // Focus order in the header: skip link, brand, switcher, name, Sign out.
      await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
      const order: string[] = [];
      for (let i = 0; i < 5; i++) {
        await page.keyboard.press("Tab");
        order.push(
          await page.evaluate(() => {
            const e = document.activeElement!;
            return e.matches("summary") ? "switcher" : (e.textContent ?? "").trim();
          }),
        );
      }
      assert.deepEqual(order, ["Skip to content", "Lodge", "switcher", NAME, "Sign out"]);

      // The open switcher menu fits on screen too.
      await summary.click();
      const menu = page.locator(".switcher-menu");
      await menu.waitFor();
      const menuBox = (await menu.boundingBox())!;
      check(
        menuBox.x >= 0 && menuBox.x + menuBox.width <= 360,
        `open menu at ${JSON.stringify(menuBox)}`,
      );
      const openWidth = await page.evaluate(() => document.documentElement.scrollWidth);
      check(openWidth <= 360, `document ${openWidth} px wide with the menu open`);
      await page.screenshot({ path: new URL("switcher-open.png", SHOTS).pathname });
      await page.keyboard.press("Escape");

      for (const path of ["/account", "/account/sessions", "/no-such-page"]) {
        await page.goto(`${server.url}${path}`);
        problems.push(...await phoneProblems(page, path, true));
      }
      // On the phone the sessions table is stacked, but still a table to assistive tech, and
      // the on-screen labels ("Last seen: ") stay out of the cells' names.
      await page.goto(`${server.url}/account/sessions`);
      await page.setViewportSize({ width: 360, height: 740 });
      check(
        await page.getByRole("columnheader", { name: "Last seen" }).count() === 1,
        "the sessions table keeps its column headers",
      );
      const cells = await page.getByRole("cell", { name: /^\d{4}-\d\d-\d\d \d\d:\d\d UTC$/ })
        .count();
      check(cells === 2, `${cells} date cells named without their labels`);
      // The outbox (holding the verification mail) renders the signed-out header.
      await page.goto(`${server.url}/dev/mail`);
      await page.locator("article.mail").first().waitFor();
      problems.push(...await phoneProblems(page, "/dev/mail", false));

      // At desktop width the header is one line, as before.
      await page.goto(`${server.url}${workspace}`);
      await page.setViewportSize({ width: 1280, height: 740 });
      const rows = await page.evaluate(() =>
        [".brand", "details.switcher summary", "a.who", "header button"].map((s) => {
          const r = document.querySelector(s)!.getBoundingClientRect();
          return Math.round(r.top + r.height / 2);
        })
      );
      check(Math.max(...rows) - Math.min(...rows) <= 4, `not one line at 1280 px: ${rows}`);
      const headerHeight = await page.locator("header").evaluate((h) => h.clientHeight);
      check(headerHeight < 80, `header ${headerHeight} px high at 1280 px`);
      await page.screenshot({ path: new URL("desktop-1280.png", SHOTS).pathname });

      // "Sign out" is clickable on the phone where it is, without scrolling to it.
      await page.setViewportSize({ width: 360, height: 740 });
      const signOut = page.locator("header").getByRole("button", { name: "Sign out" });
      const hit = await signOut.evaluate((b) => {
        const r = b.getBoundingClientRect();
        return b.contains(document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2));
      });
      check(hit, "Sign out is not the element under its own centre at 360 px");
      await signOut.click();
      await page.waitForURL(`${server.url}/login?m=signed_out`);

      for (const path of ["/login?m=signed_out", "/signup", "/password/forgot", "/no-such-page"]) {
        await page.goto(`${server.url}${path}`);
        problems.push(...await phoneProblems(page, path, false));
      }

      // No name, and a long unbroken address: it is the name on the pages ("…'s workspace").
      await page.goto(`${server.url}/signup`);
      await page.getByLabel("Email").fill("pw1796384294177longaddress@example.com");
      await page.getByLabel("Password").fill(GOOD_PASSWORD);
      await page.getByRole("button", { name: "Create account" }).click();
      await page.waitForURL(/\/w\/[^/]+$/);
      const longWorkspace = new URL(page.url()).pathname;
      problems.push(...await phoneProblems(page, longWorkspace, true));
      for (const path of ["/account", "/account/email"]) {
        await page.goto(`${server.url}${path}`);
        problems.push(...await phoneProblems(page, path, true));
      }
      assert.deepEqual(problems, []);
      assert.deepEqual(errors, []);
      await context.close();
    }
    await listening;
  },
});
