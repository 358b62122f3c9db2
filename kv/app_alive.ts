/**
 * The running app says it is alive: every instance writes its own key every 10 s, so a
 * restore (another process on the same store) can tell that the app still serves from it
 * and refuse to overwrite data under running requests. Keys live under ["backup", …]:
 * bookkeeping, never backed up or restored. A plain `cp` of the live file copies the key
 * too, so each key also names the file it was written into (its real path): a key found
 * in another file came with a copy and does not count.
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
  /** Real path of the local store file the app writes to; absent for hosted KV. */
  store?: string;
}

/** The real path of a local KV file, or undefined (hosted KV, :memory:, not there yet). */
async function realStorePath(path: string | undefined): Promise<string | undefined> {
  if (!path || path === ":memory:" || /^https?:\/\//.test(path)) return undefined;
  return await Deno.realPath(path).catch(() => undefined);
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
 * const stop = startAppAlive(kv, INSTANCE_ID, config.kvPath);
 * Deno.addSignalListener("SIGTERM", async () => { await stop(); });
 * ```
 */
export function startAppAlive(
  kv: Deno.Kv,
  instanceId = INSTANCE_ID,
  storePath?: string,
): () => Promise<void> {
  const store = realStorePath(storePath);
  const write = async () => {
    const value: AppAlive = { at: Date.now(), pid: Deno.pid, host: host() };
    const path = await store;
    if (path) value.store = path;
    await kv.set(keys.appAlive(instanceId), value, { expireIn: APP_ALIVE_FOR_MS * 2 })
      .catch(() => {}); // a missed beat is harmless: the next one comes in 10 s
  };
  void write();
  const timer = setInterval(write, APP_ALIVE_EVERY_MS);
  Deno.unrefTimer(timer);
  return async () => {
    clearInterval(timer);
    await kv.delete(keys.appAlive(instanceId)).catch(() => {});
  };
}

/**
 * The app instances heard from within {@link APP_ALIVE_FOR_MS}. With `storePath` (the
 * file `kv` was opened from), keys that name another file (copied in with a `cp` of a live
 * store) are left out.
 *
 * @example
 * ```ts
 * if ((await liveAppInstances(kv, Date.now(), path)).length) console.error("stop the app first");
 * ```
 */
export async function liveAppInstances(
  kv: Deno.Kv,
  now = Date.now(),
  storePath?: string,
): Promise<AppAlive[]> {
  const here = await realStorePath(storePath);
  const out: AppAlive[] = [];
  for await (const e of kv.list<AppAlive>({ prefix: keys.appAliveAll() })) {
    if (!e.value || now - e.value.at >= APP_ALIVE_FOR_MS) continue;
    if (here && e.value.store && e.value.store !== here) continue; // a copy's key
    out.push(e.value);
  }
  return out;
}
