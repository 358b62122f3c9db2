/**
 * Worker thread for argon2id (entry of the pool in lib/password.ts). It first lowers its
 * own scheduling priority (Linux: nice 19 for this thread only), so a core busy hashing
 * still gives way at once to the event loop's thread when a request arrives; then it hashes
 * with `@node-rs/argon2`'s synchronous functions on this thread.
 *
 * Messages in: `{ id, op: "hash" | "verify" | "probe", password, phc? }`;
 * out: `{ id, ok: true, value }` or `{ id, ok: false, error }`.
 *
 * @example
 * ```ts
 * import { Worker } from "node:worker_threads";
 * const w = new Worker(new URL("./password_worker.ts", import.meta.url));
 * w.postMessage({ id: 1, op: "verify", phc, password });
 * ```
 * @module
 */
import { parentPort } from "node:worker_threads";
import { hashSync, verifySync } from "@node-rs/argon2";

/** A request to the worker. */
export interface HashRequest {
  id: number;
  op: "hash" | "verify" | "probe";
  password: string;
  phc?: string;
  /** argon2 options for "hash" and "probe". */
  options?: Record<string, number>;
}

/** The worker's answer. */
export type HashReply =
  | { id: number; ok: true; value: string | boolean; lowPriority: boolean }
  | { id: number; ok: false; error: string };

/** Nice value for hashing threads: the lowest priority short of SCHED_IDLE. */
const HASHING_NICE = 19;

function lowerPriority(): boolean {
  // On Linux the nice value is per thread (setpriority with a thread id); elsewhere the same
  // call would lower the whole process, so it is skipped there.
  if (Deno.build.os !== "linux") return false;
  try {
    const libc = Deno.dlopen("libc.so.6", {
      setpriority: { parameters: ["i32", "u32", "i32"], result: "i32" },
      gettid: { parameters: [], result: "i32" },
    });
    const PRIO_PROCESS = 0;
    return libc.symbols.setpriority(PRIO_PROCESS, libc.symbols.gettid(), HASHING_NICE) === 0;
  } catch {
    return false; // no FFI permission or no glibc: hash at normal priority
  }
}

const lowPriority = lowerPriority();

parentPort?.on("message", (request: HashRequest) => {
  const { id, op, password, phc, options } = request;
  let reply: HashReply;
  try {
    const value = op === "verify"
      ? verifySync(phc ?? "", password)
      : hashSync(password, { ...options, algorithm: 2 });
    reply = { id, ok: true, value, lowPriority };
  } catch (err) {
    reply = { id, ok: false, error: String((err as Error)?.message ?? err) };
  }
  parentPort!.postMessage(reply);
});
