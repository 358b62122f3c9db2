/**
 * Lodge's entry point: configuration → KV → app → queue listener → Deno.serve.
 * Every start-up failure ends with one line naming what to fix, and exit code 1.
 *
 * @example
 * ```sh
 * deno task start
 * ```
 * @module
 */
import { type Config, ConfigError, loadConfig } from "./lib/config.ts";
import { openKv } from "./kv/db.ts";
import { loadAssets } from "./lib/assets.ts";
import { createApp } from "./app.ts";
import { hasher, setHashingPriority, setHashingThreads } from "./lib/password.ts";
import { startQueueListener } from "./cron/queue.ts";
import { initObservability } from "./lib/observability.ts";
import { closeEventStreams } from "./routes/events.ts";
import { ROTATE_SIGNING_KEYS_SCHEDULE, rotateSigningKeys } from "./cron/rotate_signing_keys.ts";
import { registerBackupCron } from "./cron/backup.ts";
import { startAppAlive } from "./kv/app_alive.ts";

function fail(message: string): never {
  console.error(message);
  Deno.exit(1);
}

let config: Config;
try {
  config = loadConfig(Deno.env.toObject());
} catch (err) {
  if (err instanceof ConfigError) fail(err.message);
  throw err;
}

initObservability(config);
let kv: Deno.Kv;
try {
  kv = await openKv(config.kvPath);
} catch (err) {
  fail(
    `Cannot open the KV store at DENO_KV_PATH=${config.kvPath ?? "(platform default)"}: ` +
      `${(err as Error).message}. Check that the folder exists and is writable.`,
  );
}

setHashingPriority(config.passwordHashPriority);
setHashingThreads(config.passwordHashThreads);
const assets = await loadAssets();
const app = createApp({ config, kv, assets });
startQueueListener({ kv, config });
Deno.cron("rotate signing keys", ROTATE_SIGNING_KEYS_SCHEDULE, async () => {
  await rotateSigningKeys(kv, config);
});
if (config.appEnv === "production" && !config.resendApiKey) {
  console.warn("RESEND_API_KEY is not set: mail is kept in the KV outbox and NOT delivered.");
}
await registerBackupCron({ kv, config });
const stopAppAlive = startAppAlive(kv, undefined, config.kvPath); // lets `deno task restore` see that the app is serving
const hashing = (await hasher()).name;

let server: Deno.HttpServer;
try {
  server = Deno.serve({
    port: config.port,
    hostname: config.hostname,
    onListen: ({ hostname, port }) => {
      console.log(`Password hashing: ${hashing}`);
      console.log(
        `Lodge ${config.version} (${config.appEnv}) is running: open ${config.appUrl.href}` +
          ` (bound to ${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}; KV: ${
            config.kvPath ?? "platform default"
          })`,
      );
    },
  }, app.fetch);
} catch (err) {
  const e = err as Error;
  const why = e.name === "AddrInUse"
    ? `port ${config.port} is already in use (set PORT to another port)`
    : e.name === "AddrNotAvailable"
    ? `${config.hostname} is not an address of this machine (check HOST)`
    : e.message;
  fail(`Cannot listen on ${config.hostname}:${config.port}: ${why}.`);
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, async () => {
    closeEventStreams(); // open SSE bodies would keep shutdown() waiting forever
    await server.shutdown();
    await stopAppAlive();
    kv.close();
    Deno.exit(0);
  });
}
