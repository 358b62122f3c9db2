/**
 * Worker thread for argon2id (entry of the pool in lib/password.ts). It first lowers its
 * own scheduling priority (Linux: SCHED_IDLE, else nice 19, for this thread only), so a
 * core busy hashing gives way at once to the event loop's thread when a request arrives;
 * then it hashes with `@node-rs/argon2`'s synchronous functions on this thread.
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
import { parentPort, workerData } from "node:worker_threads";
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

/** Linux scheduling policy for background work: preempted at once by any normal thread. */
const SCHED_IDLE = 5;
/** Fallback: the lowest nice value. */
const HASHING_NICE = 19;

/** How the pool asks this worker to run (PASSWORD_HASH_PRIORITY). */
export type HashingPriority = "idle" | "low" | "normal";

function lowerPriority(priority: HashingPriority): boolean {
  if (priority === "normal") return false;
  // On Linux, scheduling policy and nice value are per thread (given a thread id); elsewhere
  // the same calls would lower the whole process, so they are skipped there.
  if (Deno.build.os !== "linux") return false;
  try {
    const libc = Deno.dlopen("libc.so.6", {
      sched_setscheduler: { parameters: ["i32", "i32", "buffer"], result: "i32" },
      setpriority: { parameters: ["i32", "u32", "i32"], result: "i32" },
      gettid: { parameters: [], result: "i32" },
    });
    const tid = libc.symbols.gettid();
    // SCHED_IDLE: the kernel preempts this thread the moment a normal thread (the event
    // loop answering a request) wakes on its CPU; nice 19 alone may first let it finish
    // its time slice.
    const param = new Int32Array([0]); // struct sched_param { int sched_priority = 0 }
    if (priority === "idle" && libc.symbols.sched_setscheduler(tid, SCHED_IDLE, param) === 0) {
      return true;
    }
    const PRIO_PROCESS = 0;
    return libc.symbols.setpriority(PRIO_PROCESS, tid, HASHING_NICE) === 0;
  } catch {
    return false; // no FFI permission or no glibc: hash at normal priority
  }
}

const lowPriority = lowerPriority(
  (workerData as { priority?: HashingPriority } | undefined)?.priority ?? "idle",
);

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
