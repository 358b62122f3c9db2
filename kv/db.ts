/**
 * Opening the KV store, and small helpers every kv/* module shares.
 *
 * @example
 * ```ts
 * const kv = await openKv(":memory:");
 * ```
 * @module
 */

import { withBusyRetry } from "./busy_retry.ts";

/**
 * Opens Deno KV at `path` (a SQLite file, `:memory:`), or the platform default when
 * undefined. The folder of a relative path inside the project (like the default
 * `data/lodge.kv`) is created; any other folder must already exist.
 */
export async function openKv(path: string | undefined): Promise<Deno.Kv> {
  if (path && path !== ":memory:" && !path.startsWith("/") && !path.split(/[/\\]/).includes("..")) {
    const dir = path.replace(/[/\\][^/\\]*$/, "");
    if (dir && dir !== path) await Deno.mkdir(dir, { recursive: true });
  }
  const kv = await Deno.openKv(path);
  // A local file may be shared with another process (backup, restore): wait out its locks.
  return path && path !== ":memory:" && !/^https?:\/\//.test(path) ? withBusyRetry(kv) : kv;
}

/** Raised when an atomic keeps losing to concurrent writers; routes answer 409. */
export class ConflictError extends Error {
  constructor(what: string) {
    super(`Too many concurrent changes to ${what}; try again.`);
    this.name = "ConflictError";
  }
}

/** Runs `attempt` until it commits, at most `tries` times (optimistic concurrency). */
export async function retryAtomic<T>(
  what: string,
  attempt: () => Promise<{ ok: true; value: T } | { ok: false }>,
  tries = 10,
): Promise<T> {
  for (let i = 0; i < tries; i++) {
    const result = await attempt();
    if (result.ok) return result.value;
  }
  throw new ConflictError(what);
}

/** A bounded in-process map for *hints* only (e.g. slug → id); always verified against KV. */
export class HintCache<V> {
  #map = new Map<string, V>();
  constructor(readonly max = 10_000) {}
  get(key: string): V | undefined {
    return this.#map.get(key);
  }
  set(key: string, value: V): void {
    if (this.#map.size >= this.max && !this.#map.has(key)) {
      this.#map.delete(this.#map.keys().next().value!);
    }
    this.#map.set(key, value);
  }
  delete(key: string): void {
    this.#map.delete(key);
  }
}
