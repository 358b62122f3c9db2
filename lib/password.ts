/**
 * Password rules and argon2id hashing (OWASP: m=19456 KiB, t=2, p=1).
 *
 * Hashing runs off the event loop through `@node-rs/argon2`; where native addons cannot
 * load, `hash-wasm` takes over (same PHC strings, verified by either).
 *
 * @example
 * ```ts
 * const phc = await hashPassword("correct horse battery staple");
 * await verifyPassword(phc, "correct horse battery staple"); // true
 * ```
 * @module
 */
import { dictionary } from "@zxcvbn-ts/language-common";

/** argon2id parameters (OWASP ASVS 5.0 / Password Storage Cheat Sheet). */
export const ARGON2 = { memoryCost: 19456, timeCost: 2, parallelism: 1 } as const;

/** Shortest and longest password accepted, in characters. */
export const PASSWORD_MIN = 8;
export const PASSWORD_MAX = 1024;

interface Hasher {
  name: string;
  hash(password: string): Promise<string>;
  verify(phc: string, password: string): Promise<boolean>;
}

async function nativeHasher(): Promise<Hasher> {
  const argon2 = await import("@node-rs/argon2");
  // algorithm 2 = Argon2id (the package's const enum does not survive type-checking).
  const options = { algorithm: 2 as const, ...ARGON2, outputLen: 32 };
  await argon2.hash("probe", { ...options, memoryCost: 1024, timeCost: 1 });
  return {
    name: "@node-rs/argon2",
    hash: (password) => argon2.hash(password, options),
    verify: (phc, password) => argon2.verify(phc, password),
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

/** The hasher in use, chosen once: native when it loads, else WebAssembly. */
export function hasher(): Promise<Hasher> {
  hasherPromise ??= nativeHasher().catch((err) => {
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

/** True when the password is on the shipped list of common passwords (case-insensitive). */
export function isCommonPassword(password: string): boolean {
  common ??= new Set(
    (dictionary["passwords-common"] as string[]).filter((p) => p.length >= PASSWORD_MIN).map((p) =>
      p.toLowerCase()
    ),
  );
  return common.has(password.toLowerCase());
}

/** Returns what is wrong with a new password, or `null`. */
export function passwordProblem(password: string): string | null {
  const length = [...password].length;
  if (length < PASSWORD_MIN) return `Use at least ${PASSWORD_MIN} characters.`;
  if (length > PASSWORD_MAX) return `Use at most ${PASSWORD_MAX} characters.`;
  // deno-lint-ignore no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(password)) return "Passwords cannot contain control characters.";
  if (!password.isWellFormed()) return "That password contains invalid characters.";
  if (/^\s*$/u.test(password) || /^(.)\1*$/su.test(password)) {
    return "That password is too easy to guess: use more than one repeated character.";
  }
  if (isCommonPassword(password)) {
    return "That password is on a list of commonly used passwords. Choose another.";
  }
  return null;
}
