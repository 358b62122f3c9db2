/**
 * Exact equality of KV keys and values, types included, written independently of the
 * backup codec so a drill can catch what the codec gets wrong: -0 is not 0, a Date is
 * not its number, a Map is not an object, KvU64(1) is not 1n, and order of object
 * properties, Map and Set entries counts (KV keeps it).
 *
 * @example
 * ```ts
 * sameKvValue(new Map([[1, -0]]), new Map([[1, 0]])); // false
 * ```
 * @module
 */

function sameBytes(a: ArrayBufferView, b: ArrayBufferView): boolean {
  if (a.byteLength !== b.byteLength) return false;
  const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

/**
 * True when `a` and `b` are the same KV value, type for type.
 *
 * @example
 * ```ts
 * sameKvValue(-0, 0); // false
 * ```
 */
export function sameKvValue(a: unknown, b: unknown): boolean {
  if (typeof a !== typeof b) return false;
  if (typeof a !== "object" || a === null || b === null) return Object.is(a, b);
  const pa = Object.getPrototypeOf(a), pb = Object.getPrototypeOf(b);
  if (pa !== pb) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    if (a.length !== bb.length) return false;
    for (let i = 0; i < a.length; i++) {
      if ((i in a) !== (i in bb) || !sameKvValue(a[i], bb[i])) return false;
    }
    return true;
  }
  if (a instanceof Date) return Object.is(a.getTime(), (b as Date).getTime());
  if (a instanceof Deno.KvU64) return a.value === (b as Deno.KvU64).value;
  if (ArrayBuffer.isView(a)) return sameBytes(a, b as ArrayBufferView);
  if (a instanceof ArrayBuffer) {
    return sameBytes(new Uint8Array(a), new Uint8Array(b as ArrayBuffer));
  }
  if (a instanceof RegExp) {
    return a.source === (b as RegExp).source && a.flags === (b as RegExp).flags;
  }
  if (a instanceof Map || a instanceof Set) {
    const ea = [...a.entries()], eb = [...(b as Map<unknown, unknown>).entries()];
    return sameKvValue(ea, eb);
  }
  const ka = Object.keys(a), kb = Object.keys(b as object);
  if (ka.length !== kb.length) return false;
  for (let i = 0; i < ka.length; i++) {
    if (ka[i] !== kb[i]) return false;
    if (
      !sameKvValue((a as Record<string, unknown>)[ka[i]], (b as Record<string, unknown>)[kb[i]])
    ) return false;
  }
  return true;
}

/**
 * True when two keys are the same, part for part and type for type.
 *
 * @example
 * ```ts
 * sameKvKey(["a", 1n], ["a", 1]); // false
 * ```
 */
export function sameKvKey(a: Deno.KvKey, b: Deno.KvKey): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!sameKvValue(a[i], b[i])) return false;
  return true;
}
