/**
 * Deno KV's limits on one atomic operation, and the encoded size of a key, so bulk
 * writers (restore, workspace restore, drill) can split work into atomics that the
 * store accepts: ≤ 1000 mutations, total key size ≤ 80 KiB, total mutation size
 * ≤ 800 KiB, ≤ 100 checks. A batch of 1000 keys of ~90 bytes (e.g.
 * `rate_limits/mail-address/<sha256>/<ts>`) already breaks the key-size limit.
 *
 * @example
 * ```ts
 * encodedKeySize(["users", "u1"]); // 11
 * ```
 * @module
 */

/** Mutations one atomic may hold. */
export const KV_MAX_MUTATIONS = 1000;
/** Total encoded key bytes of one atomic (checks + mutations). */
export const KV_MAX_TOTAL_KEY_BYTES = 81_920;
/** Total encoded key + value bytes of one atomic's mutations. */
export const KV_MAX_TOTAL_MUTATION_BYTES = 819_200;
/** Checks one atomic may hold. */
export const KV_MAX_CHECKS = 100;

const utf8 = new TextEncoder();

function zeroBytes(bytes: Uint8Array): number {
  let n = 0;
  for (const b of bytes) if (b === 0) n++;
  return n;
}

/**
 * The bytes `key` takes in Deno KV's key encoding (FoundationDB tuple layer: a type byte
 * per part; strings and bytes are NUL-terminated with NULs escaped; numbers take 8 bytes).
 * Exact for strings, bytes, numbers and booleans; an upper bound for bigints.
 *
 * @example
 * ```ts
 * encodedKeySize(["verify_tokens", "ab12"]); // 1 + 13 + 1 + 1 + 4 + 1 = 21
 * ```
 */
export function encodedKeySize(key: Deno.KvKey): number {
  let n = 0;
  for (const part of key) {
    if (typeof part === "string") {
      const b = utf8.encode(part);
      n += 2 + b.length + zeroBytes(b);
    } else if (part instanceof Uint8Array) {
      n += 2 + part.length + zeroBytes(part);
    } else if (typeof part === "number") n += 9;
    else if (typeof part === "boolean") n += 1;
    else if (typeof part === "bigint") {
      const abs = part < 0n ? -part : part;
      n += 2 + Math.ceil(abs.toString(16).length / 2) + 1;
    } else n += 16;
  }
  return n;
}
