/**
 * Password rules and argon2id hashing (OWASP: m=19456 KiB, t=2, p=1).
 *
 * Hashing runs off the event loop: in a pool of worker threads (PASSWORD_HASH_THREADS, by default
 * one per core but one, so the event loop keeps a core to itself) running `@node-rs/argon2` at
 * the lowest thread priority, so a page request never waits behind a hash for a CPU. Where
 * workers cannot start, the addon's own thread pool is used (at most cores − 1 hashes at once,
 * one core left for the event loop); where native addons cannot load, `hash-wasm` takes over
 * (same PHC strings, verified by either).
 *
 * @example
 * ```ts
 * const phc = await hashPassword("correct horse battery staple");
 * await verifyPassword(phc, "correct horse battery staple"); // true
 * ```
 * @module
 */
import { dictionary } from "@zxcvbn-ts/language-common";
import { Worker } from "node:worker_threads";
import type { HashReply, HashRequest } from "./password_worker.ts";
import { defaultHashThreads } from "./config.ts";

/** argon2id parameters (OWASP ASVS 5.0 / Password Storage Cheat Sheet). */
export const ARGON2 = { memoryCost: 19456, timeCost: 2, parallelism: 1 } as const;

let hashingPriority: "idle" | "low" | "normal" = "idle";

/**
 * Sets the hashing threads' scheduling priority (PASSWORD_HASH_PRIORITY), before the first
 * hash. `idle` (default) lets any request preempt hashing at once, so pages stay fast while
 * people sign in; under sustained full CPU load sign-ins then wait. `low` (nice 19) and
 * `normal` trade page latency for sign-in latency.
 *
 * @example
 * ```ts
 * setHashingPriority(config.passwordHashPriority);
 * ```
 */
export function setHashingPriority(priority: "idle" | "low" | "normal"): void {
  hashingPriority = priority;
}

let hashingThreads = defaultHashThreads();

/**
 * Sets how many argon2id worker threads the pool runs (PASSWORD_HASH_THREADS), before the
 * first hash. The default, one per core but one, keeps a core for the event loop: hashing on
 * every core gives more sign-ins per second, but makes every other request 2–3× slower while
 * it runs (caches thrashed), whatever its priority.
 *
 * @example
 * ```ts
 * setHashingThreads(config.passwordHashThreads);
 * ```
 */
export function setHashingThreads(threads: number): void {
  hashingThreads = Math.max(1, Math.floor(threads));
}

/** Shortest and longest password accepted, in characters. */
export const PASSWORD_MIN = 8;
export const PASSWORD_MAX = 1024;

interface Hasher {
  name: string;
  hash(password: string): Promise<string>;
  verify(phc: string, password: string): Promise<boolean>;
}

/** Hashes at once on the addon's own thread pool (fallback path): leave a core to the event loop. */
const INLINE_HASH_CONCURRENCY = Math.max(1, (navigator.hardwareConcurrency || 2) - 1);

/** A FIFO gate letting at most `limit` tasks run at once. */
function concurrencyGate(limit: number) {
  let running = 0;
  const waiting: (() => void)[] = [];
  return async <T>(work: () => Promise<T>): Promise<T> => {
    if (running < limit) running++;
    else await new Promise<void>((resolve) => waiting.push(resolve));
    try {
      return await work();
    } finally {
      // Hand the slot straight to the next in line, or free it.
      const next = waiting.shift();
      if (next) next();
      else running--;
    }
  };
}

const HASH_OPTIONS = { ...ARGON2, outputLen: 32 };

/** How long a new worker may take to load the addon and answer a probe, ms. */
const WORKER_START_TIMEOUT = 15_000;

/**
 * Jobs sent ahead to each worker: the next one waits in the worker's own message queue,
 * so a worker starts it the moment it finishes one, without a round trip through the event
 * loop (which may be busy serving pages just then).
 */
const WORKER_QUEUE_DEPTH = 2;

/**
 * The worker pool. Each worker hashes one password at a time; requests queue in FIFO order
 * for the next worker with room. A worker that dies fails its requests and is replaced.
 */
async function workerHasher(): Promise<Hasher> {
  const size = hashingThreads;
  const url = new URL("./password_worker.ts", import.meta.url);
  type Job = { request: Omit<HashRequest, "id">; resolve(r: HashReply): void };
  const queue: Job[] = [];
  /** Jobs sent to each live worker, oldest first (a worker answers in order). */
  const sent = new Map<Worker, Job[]>();
  let nextId = 0;
  // Replace a dead worker only once the pool has proved it can start workers at all.
  let started = false;

  const dispatch = () => {
    while (queue.length) {
      let target: Worker | undefined;
      let least = WORKER_QUEUE_DEPTH;
      for (const [worker, jobs] of sent) {
        if (jobs.length < least) [target, least] = [worker, jobs.length];
      }
      if (!target) return;
      const job = queue.shift()!;
      sent.get(target)!.push(job);
      // A busy worker keeps the process alive (a script awaiting a hash must not exit); an
      // idle one does not (a script that is done must not hang on the pool).
      target.ref();
      target.postMessage({ ...job.request, id: ++nextId });
    }
  };
  const spawn = (): Worker => {
    const worker = new Worker(url, { name: "argon2", workerData: { priority: hashingPriority } });
    worker.unref();
    sent.set(worker, []);
    worker.on("message", (reply: HashReply) => {
      const jobs = sent.get(worker)!;
      const job = jobs.shift();
      if (!jobs.length) worker.unref();
      job?.resolve(reply);
      dispatch();
    });
    // A worker that throws or exits fails what it was given; a new one takes its place.
    const fail = (why: string) => {
      const jobs = sent.get(worker);
      if (!jobs) return; // already handled (an error is followed by an exit)
      sent.delete(worker);
      worker.terminate();
      for (const job of jobs) job.resolve({ id: 0, ok: false, error: `argon2 worker ${why}` });
      if (started) {
        spawn();
        dispatch();
      }
    };
    worker.on("error", (err: Error) => fail(`failed: ${err.message}`));
    worker.on("exit", (code: number) => fail(`exited (${code})`));
    return worker;
  };
  const run = (request: Omit<HashRequest, "id">) =>
    new Promise<HashReply>((resolve) => {
      queue.push({ request, resolve });
      dispatch();
    });

  const workers = Array.from({ length: size }, spawn);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error("argon2 workers did not start")),
      WORKER_START_TIMEOUT,
    );
  });
  let probes: HashReply[];
  try {
    // One probe per worker (the least-loaded rule spreads them): the addon loads everywhere
    // before the first real hash.
    const pending = workers.map(() =>
      run({
        op: "probe",
        password: "probe",
        options: { ...HASH_OPTIONS, memoryCost: 1024, timeCost: 1 },
      })
    );
    probes = await Promise.race([Promise.all(pending), timeout]);
  } catch (err) {
    for (const w of workers) w.terminate();
    throw err;
  } finally {
    clearTimeout(timer);
  }
  const failed = probes.find((p) => !p.ok);
  if (failed && !failed.ok) {
    for (const w of workers) w.terminate();
    throw new Error(failed.error);
  }
  started = true;
  const lowPriority = probes.every((p) => p.ok && p.lowPriority);
  const unwrap = (r: HashReply) => {
    if (!r.ok) throw new Error(r.error);
    return r.value;
  };
  return {
    name: `@node-rs/argon2 in ${size} worker thread${size === 1 ? "" : "s"}` +
      (lowPriority ? ` (${hashingPriority} priority)` : " (normal priority)"),
    hash: async (password) =>
      unwrap(await run({ op: "hash", password, options: HASH_OPTIONS })) as string,
    verify: async (phc, password) => unwrap(await run({ op: "verify", phc, password })) === true,
  };
}

async function nativeHasher(): Promise<Hasher> {
  const argon2 = await import("@node-rs/argon2");
  // algorithm 2 = Argon2id (the package's const enum does not survive type-checking).
  const options = { algorithm: 2 as const, ...ARGON2, outputLen: 32 };
  await argon2.hash("probe", { ...options, memoryCost: 1024, timeCost: 1 });
  const gate = concurrencyGate(INLINE_HASH_CONCURRENCY);
  return {
    name: "@node-rs/argon2",
    hash: (password) => gate(() => argon2.hash(password, options)),
    verify: (phc, password) => gate(() => argon2.verify(phc, password)),
  };
}

async function wasmHasher(): Promise<Hasher> {
  const { argon2id, argon2Verify } = await import("hash-wasm");
  return {
    name: "hash-wasm",
    hash: (password) => {
      const salt = new Uint8Array(16);
      crypto.getRandomValues(salt);
      return argon2id({
        password,
        salt,
        parallelism: ARGON2.parallelism,
        iterations: ARGON2.timeCost,
        memorySize: ARGON2.memoryCost,
        hashLength: 32,
        outputType: "encoded",
      });
    },
    verify: (phc, password) => argon2Verify({ password, hash: phc }),
  };
}

let hasherPromise: Promise<Hasher> | undefined;

/**
 * The hasher in use, chosen once: native in low-priority workers when they start, else
 * native on the addon's thread pool, else WebAssembly.
 */
export function hasher(): Promise<Hasher> {
  hasherPromise ??= workerHasher().catch((err) => {
    console.warn(`argon2: worker pool unavailable (${err?.message ?? err}); hashing in-process`);
    return nativeHasher();
  }).catch((err) => {
    console.warn(`argon2: native addon unavailable (${err?.message ?? err}); using hash-wasm`);
    return wasmHasher();
  });
  return hasherPromise;
}

/** Hashes a password into a PHC string. Passwords are NFC-normalized so the same typed
 * characters match whatever device composed them. */
export async function hashPassword(password: string): Promise<string> {
  return (await hasher()).hash(password.normalize("NFC"));
}

/** Verifies a password against a PHC string; false for malformed hashes. */
export async function verifyPassword(phc: string, password: string): Promise<boolean> {
  try {
    return await (await hasher()).verify(phc, password.normalize("NFC"));
  } catch {
    return false;
  }
}

let dummyHash: Promise<string> | undefined;

/**
 * Verifies `password` against a hash of a random secret: the same cost as a real check,
 * so a sign-in for an unknown email takes as long as one for a known email.
 */
export async function verifyDummy(password: string): Promise<false> {
  dummyHash ??= hashPassword(crypto.randomUUID());
  await verifyPassword(await dummyHash, password);
  return false;
}

let common: Set<string> | undefined;

/**
 * True when the password is on the shipped list of common passwords, ignoring case and
 * surrounding spaces (" Password " is as common as "password").
 */
export function isCommonPassword(password: string): boolean {
  common ??= new Set(
    (dictionary["passwords-common"] as string[]).filter((p) => p.length >= PASSWORD_MIN).map((p) =>
      p.toLowerCase()
    ),
  );
  return common.has(password.toLowerCase()) || common.has(password.trim().toLowerCase());
}

/**
 * What the account already tells anyone about itself, which a password must not be (ASVS 5.0
 * V6.2: context-specific words). Pass what the caller knows: on sign-up what was typed, on
 * reset and change the account's stored values.
 */
export interface PasswordContext {
  /** The account's email address. */
  email?: string;
  /** The account's display name. */
  name?: string;
}

/** Compared as people see them: composed, trimmed, any case. */
function loose(text: string): string {
  return text.normalize("NFC").trim().toLowerCase();
}

/**
 * Returns what is wrong with a new password, or `null`.
 *
 * @example
 * ```ts
 * passwordProblem("Ada@Example.com ", { email: "ada@example.com" }); // "…is your email address…"
 * ```
 */
export function passwordProblem(password: string, context: PasswordContext = {}): string | null {
  const length = [...password].length;
  if (length < PASSWORD_MIN) return `Use at least ${PASSWORD_MIN} characters.`;
  if (length > PASSWORD_MAX) return `Use at most ${PASSWORD_MAX} characters.`;
  // C0 (tab and line breaks included), DEL and C1: no keyboard types them into a password
  // field, so they come from a broken client or a bad paste, and would then be needed again
  // to sign in. Spaces are ordinary characters here.
  // deno-lint-ignore no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f]/.test(password)) {
    return "Passwords cannot contain control characters (tabs, line breaks or other invisible codes); these usually come from a copy and paste that went wrong. Spaces are fine.";
  }
  if (!password.isWellFormed()) return "That password contains invalid characters.";
  if (/^\s*$/u.test(password)) {
    return "A password cannot be only spaces. Use letters, numbers or symbols too.";
  }
  if (/^(.)\1*$/su.test(password)) {
    return "That password is too easy to guess: use more than one repeated character.";
  }
  const typed = loose(password);
  const email = loose(context.email ?? "");
  const at = email.lastIndexOf("@");
  const ownWords: [string, string][] = [
    [email, "your email address"],
    [at > 0 ? email.slice(0, at) : "", "the part of your email address before the @"],
    [loose(context.name ?? ""), "your name"],
  ];
  for (const [word, what] of ownWords) {
    if (word && typed === word) {
      return `That password is ${what}, which others can guess. Choose another.`;
    }
  }
  if (isCommonPassword(password)) {
    return "That password is on a list of commonly used passwords. Choose another.";
  }
  return null;
}
