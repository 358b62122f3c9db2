/**
 * The running app says it is alive: every instance writes its own key every 10 s, so a
 * restore (another process on the same store) can tell that the app still serves from it
 * and refuse to overwrite data under running requests. Keys live under ["backup", …]:
 * bookkeeping, never backed up or restored.
 *
 * @example
 * ```ts
 * const stop = startAppAlive(kv); // main.ts
 * const live = await liveAppInstances(kv); // cron/restore.ts
 * ```
 * @module
 */
import * as keys from "./keys.ts";
import { INSTANCE_ID } from "./leases.ts";

/** What a serving instance writes. */
export interface AppAlive {
  /** Last renewal, ms. */
  at: number;
  pid: number;
  host: string;
}

/** How often a serving instance renews its key, ms. */
export const APP_ALIVE_EVERY_MS = 10_000;
/** An instance not heard from for this long is taken as stopped, ms. */
export const APP_ALIVE_FOR_MS = 35_000;

function host(): string {
  try {
    return Deno.hostname();
  } catch {
    return "unknown host";
  }
}

/**
 * Writes this instance's key now and every {@link APP_ALIVE_EVERY_MS}; returns a function
 * that stops and deletes it (call it on shutdown).
 *
 * @example
 * ```ts
 * const stop = startAppAlive(kv);
 * Deno.addSignalListener("SIGTERM", async () => { await stop(); });
 * ```
 */
export function startAppAlive(kv: Deno.Kv, instanceId = INSTANCE_ID): () => Promise<void> {
  const write = () =>
    kv.set(keys.appAlive(instanceId), { at: Date.now(), pid: Deno.pid, host: host() }, {
      expireIn: APP_ALIVE_FOR_MS * 2,
    }).catch(() => {}); // a missed beat is harmless: the next one comes in 10 s
  void write();
  const timer = setInterval(write, APP_ALIVE_EVERY_MS);
  Deno.unrefTimer(timer);
  return async () => {
    clearInterval(timer);
    await kv.delete(keys.appAlive(instanceId)).catch(() => {});
  };
}

/**
 * The app instances heard from within {@link APP_ALIVE_FOR_MS}.
 *
 * @example
 * ```ts
 * if ((await liveAppInstances(kv)).length) console.error("stop the app first");
 * ```
 */
export async function liveAppInstances(kv: Deno.Kv, now = Date.now()): Promise<AppAlive[]> {
  const out: AppAlive[] = [];
  for await (const e of kv.list<AppAlive>({ prefix: keys.appAliveAll() })) {
    if (e.value && now - e.value.at < APP_ALIVE_FOR_MS) out.push(e.value);
  }
  return out;
}
