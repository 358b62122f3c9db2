/**
 * Browser-test helpers: a real Lodge server on a free loopback port and Debian's Chromium
 * driven by playwright-core.
 *
 * @example
 * ```ts
 * await using server = await startServer();
 * await using browser = await launchBrowser();
 * const page = await browser.newPage();
 * await page.goto(server.url + "/signup");
 * ```
 * @module
 */
import { type Browser, chromium } from "playwright-core";
import { createApp } from "../../app.ts";
import { type Config, testConfig } from "../../lib/config.ts";
import { loadAssets } from "../../lib/assets.ts";
import { openKv } from "../../kv/db.ts";
import { closeEventStreams } from "../../routes/events.ts";

/** Chromium's path: CHROMIUM_PATH or Debian's. */
export const CHROMIUM = Deno.env.get("CHROMIUM_PATH") ?? "/usr/bin/chromium";

/** A running server; disposing it shuts it down and closes its KV. */
export interface TestServer extends AsyncDisposable {
  url: string;
  kv: Deno.Kv;
  config: Config;
  server: Deno.HttpServer;
}

/** Starts the real app on 127.0.0.1:<free port>, over `:memory:` KV unless one is given. */
export async function startServer(
  overrides: Partial<Config> = {},
  kv?: Deno.Kv,
): Promise<TestServer> {
  const store = kv ?? await openKv(":memory:");
  const assets = await loadAssets();
  let resolvePort: (port: number) => void;
  const ready = new Promise<number>((r) => resolvePort = r);
  const holder: { app?: ReturnType<typeof createApp> } = {};
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen: ({ port }) => resolvePort(port),
  }, (req, info) => holder.app!.fetch(req, info));
  const port = await ready;
  const url = `http://127.0.0.1:${port}`;
  const config = testConfig({ appUrl: new URL(url), port, ...overrides });
  holder.app = createApp({ config, kv: store, assets });
  return {
    url,
    kv: store,
    config,
    server,
    async [Symbol.asyncDispose]() {
      closeEventStreams(); // pages hold /api/events open; shutdown() would wait for them
      await server.shutdown();
      if (!kv) store.close();
    },
  };
}

/** The flags these machines need (no sandbox as root; no calls to outside services). */
export const CHROMIUM_ARGS: readonly string[] = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Launches headless Chromium with {@link CHROMIUM_ARGS} and any `extraArgs`. */
export async function launchBrowser(
  extraArgs: readonly string[] = [],
): Promise<Browser & AsyncDisposable> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [...CHROMIUM_ARGS, ...extraArgs],
  });
  return Object.assign(browser, { [Symbol.asyncDispose]: () => browser.close() });
}
