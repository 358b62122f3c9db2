/**
 * Lodge's entry point: configuration → KV → app → Deno.serve.
 *
 * @example
 * ```sh
 * deno task start
 * ```
 * @module
 */
import { ConfigError, loadConfig } from "./lib/config.ts";
import { openKv } from "./kv/db.ts";
import { loadAssets } from "./lib/assets.ts";
import { createApp } from "./app.ts";
import { hasher } from "./lib/password.ts";
import { startQueueListener } from "./cron/queue.ts";
import { registerBackupCron } from "./cron/backup.ts";

let config;
try {
  config = loadConfig(Deno.env.toObject());
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(err.message);
    Deno.exit(1);
  }
  throw err;
}

const kv = await openKv(config.kvPath);
const assets = await loadAssets();
const app = createApp({ config, kv, assets });
startQueueListener({ kv });
await registerBackupCron({ kv, config });
console.log(`Password hashing: ${(await hasher()).name}`);

const server = Deno.serve({
  port: config.port,
  hostname: config.hostname,
  onListen: ({ hostname, port }) => {
    console.log(
      `Lodge ${config.version} (${config.appEnv}) listening on http://${hostname}:${port}` +
        ` — open ${config.appUrl.href}` +
        ` · KV: ${config.kvPath ?? "platform default"}`,
    );
  },
}, app.fetch);

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, async () => {
    await server.shutdown();
    kv.close();
    Deno.exit(0);
  });
}
