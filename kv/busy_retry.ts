/**
 * Retries Deno KV calls that fail with SQLite's "database is locked" / "database is busy".
 *
 * A local store is one SQLite file; when a second process writes to it (`deno task backup`,
 * `restore` or `drill` beside the running app: leases, status, restores), a write that
 * finds the file's write lock taken fails at once instead of waiting. Nothing was written
 * then, so the same call is safe to repeat (an atomic's checks are evaluated again).
 * Hosted KV never raises these errors; the wrapper is only used for local files.
 *
 * @example
 * ```ts
 * const kv = withBusyRetry(await Deno.openKv("data/lodge.kv"));
 * await kv.set(["a"], 1); // waits out another process's write instead of throwing
 * ```
 * @module
 */

/** How long a call keeps retrying before the lock error is passed on, ms. */
export const BUSY_RETRY_FOR_MS = 10_000;

/**
 * True for SQLite's lock errors as Deno KV reports them.
 *
 * @example
 * ```ts
 * isSqliteBusy(new TypeError("database is locked")); // true
 * ```
 */
export function isSqliteBusy(err: unknown): boolean {
  const message = (err as Error)?.message ?? "";
  return /database is (locked|busy)|SQLITE_BUSY/i.test(message);
}

/**
 * Runs `call` until it does not fail with a lock error (backing off up to 100 ms between
 * tries), for at most {@link BUSY_RETRY_FOR_MS}.
 *
 * @example
 * ```ts
 * const res = await retryWhileBusy(() => kv.atomic().set(["a"], 1).commit());
 * ```
 */
export async function retryWhileBusy<T>(call: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + BUSY_RETRY_FOR_MS;
  for (let wait = 2;; wait = Math.min(100, wait * 2)) {
    try {
      return await call();
    } catch (err) {
      if (!isSqliteBusy(err) || Date.now() >= deadline) throw err;
      await new Promise((r) => setTimeout(r, wait * (0.5 + Math.random())));
    }
  }
}

const RETRIED = new Set(["get", "getMany", "set", "delete", "enqueue"]);

/**
 * Calls `call` once; only when it fails with a lock error does it go on to
 * {@link retryWhileBusy}. The common path adds no async frame (this wraps every KV call
 * of a local store, hot paths included).
 */
function firstThenRetry<T>(call: () => Promise<T>): Promise<T> {
  return call().catch((err) => isSqliteBusy(err) ? retryWhileBusy(call) : Promise.reject(err));
}

/**
 * Wraps a KV store so its reads, writes and atomic commits wait out another process's
 * lock ({@link retryWhileBusy}). Everything else passes through unchanged.
 *
 * @example
 * ```ts
 * const kv = withBusyRetry(await Deno.openKv("data/lodge.kv"));
 * ```
 */
export function withBusyRetry(kv: Deno.Kv): Deno.Kv {
  const wrapped = new Map<PropertyKey, unknown>();
  return new Proxy(kv, {
    get(target, prop) {
      const known = wrapped.get(prop);
      if (known !== undefined) return known;
      const value = Reflect.get(target, prop, target);
      if (typeof value !== "function") return value;
      let fn: unknown;
      if (prop === "atomic") {
        fn = () => {
          const op = target.atomic();
          const commit = op.commit.bind(op);
          // Deno's AtomicOperation can commit again after a failed attempt.
          op.commit = () => firstThenRetry(commit);
          return op;
        };
      } else if (typeof prop === "string" && RETRIED.has(prop)) {
        const method = value as (...a: unknown[]) => Promise<unknown>;
        fn = (...args: unknown[]) => firstThenRetry(() => method.apply(target, args));
      } else {
        fn = value.bind(target);
      }
      wrapped.set(prop, fn);
      return fn;
    },
  });
}
