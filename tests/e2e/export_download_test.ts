import assert from "node:assert/strict";
import { launchBrowser } from "./browser.ts";
import { createApp } from "../../app.ts";
import { testConfig } from "../../lib/config.ts";
import { loadAssets } from "../../lib/assets.ts";
import { GOOD_PASSWORD } from "../helpers.ts";

Deno.test("the browser downloads a workspace export from the workspace page", async () => {
  const kv = await Deno.openKv(":memory:");
  let handler: (req: Request) => Response | Promise<Response> = () => new Response(null);
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (req) => handler(req),
  );
  const origin = `http://127.0.0.1:${(server.addr as Deno.NetAddr).port}`;
  const app = createApp({
    config: testConfig({ appUrl: new URL(origin) }),
    kv,
    assets: await loadAssets(),
  });
  handler = app.fetch;
  const browser = await launchBrowser();
  try {
    const page = await (await browser.newContext({ acceptDownloads: true })).newPage();
    await page.goto(`${origin}/signup`);
    await page.fill('input[name="name"]', "Dora Download");
    await page.fill('input[name="email"]', "dora@example.com");
    await page.fill('input[name="password"]', GOOD_PASSWORD);
    await Promise.all([
      page.waitForURL(/\/w\/dora-download$/),
      page.press('input[name="password"]', "Enter"),
    ]);
    const [download] = await Promise.all([
      page.waitForEvent("download"),
      page.getByRole("link", { name: "Export this workspace" }).click(),
    ]);
    assert.match(download.suggestedFilename(), /^lodge-dora-download-\d{4}-\d{2}-\d{2}\.json$/);
    const path = await download.path();
    const doc = JSON.parse(await Deno.readTextFile(path));
    assert.equal(doc.format, "lodge-workspace-export");
    assert.equal(doc.workspace.slug, "dora-download");
    assert.equal(doc.members[0].email, "dora@example.com");
    assert.equal(doc.auditLog[0].type, "workspace.created");
    assert.ok(!JSON.stringify(doc).includes("argon2"));
  } finally {
    await browser.close();
    await server.shutdown();
    kv.close();
  }
});
