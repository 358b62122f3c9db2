/**
 * The tagged JSON encoding of Deno KV keys and values used by backup files
 * (docs/backup-format.md), and the comparison of keys in KV's own order.
 *
 * Plain JSON covers strings, finite numbers, booleans, null, arrays and plain objects.
 * Everything else becomes an object whose first property is `"$"` naming the type, so a
 * value restores exactly (-0, NaN, ±Infinity, bigint, undefined, Uint8Array, Date, Map,
 * Set, Deno.KvU64, …). A plain object that itself has a `"$"` property is wrapped as
 * `{"$":"object","v":{…}}` so it can never be mistaken for a tag.
 *
 * @example
 * ```ts
 * const line = encodeEntry(["users", 1n], new Map([["a", -0]]));
 * const { key, value } = decodeEntry(line);
 * ```
 * @module
 */

/**
 * Thrown for a value the format cannot represent exactly (the backup stops: nothing silently lost).
 *
 * @example
 * ```ts
 * try { toTagged(new (class X {})()); } catch (e) { e instanceof UnsupportedValueError; }
 * ```
 */
export class UnsupportedValueError extends Error {
  constructor(what: string) {
    super(`Cannot back up a value of type ${what} exactly`);
    this.name = "UnsupportedValueError";
  }
}

/**
 * Thrown when a backup line is not valid tagged JSON.
 *
 * @example
 * ```ts
 * try { decodeEntry("{"); } catch (e) { e instanceof CorruptEntryError; }
 * ```
 */
export class CorruptEntryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CorruptEntryError";
  }
}

const TYPED_ARRAYS: Record<string, new (buf: ArrayBuffer) => ArrayBufferView> = {
  Int8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
};

function bytesToBase64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000) as unknown as number[]);
  }
  return btoa(s);
}

function base64ToBytes(b64: string): Uint8Array {
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

function numberTag(n: number): unknown {
  if (Number.isNaN(n)) return { $: "number", v: "NaN" };
  if (n === Infinity) return { $: "number", v: "Infinity" };
  if (n === -Infinity) return { $: "number", v: "-Infinity" };
  return { $: "number", v: "-0" };
}

/**
 * Turns a KV value into a JSON-safe tagged value. Throws {@link UnsupportedValueError} for
 * types KV could store but the format does not know (functions and symbols KV refuses itself).
 *
 * @example
 * ```ts
 * JSON.stringify(toTagged(new Set([1n]))); // {"$":"set","v":[{"$":"bigint","v":"1"}]}
 * ```
 */
export function toTagged(v: unknown): unknown {
  switch (typeof v) {
    case "string":
    case "boolean":
      return v;
    case "number":
      return Number.isFinite(v) && !Object.is(v, -0) ? v : numberTag(v);
    case "bigint":
      return { $: "bigint", v: v.toString() };
    case "undefined":
      return { $: "undefined" };
    case "object": {
      if (v === null) return null;
      if (Array.isArray(v)) {
        const out = new Array(v.length);
        for (let i = 0; i < v.length; i++) {
          if (!(i in v)) throw new UnsupportedValueError("sparse array");
          out[i] = toTagged(v[i]);
        }
        return out;
      }
      const proto = Object.getPrototypeOf(v);
      if (proto === Object.prototype || proto === null) {
        const o = v as Record<string, unknown>;
        const out: Record<string, unknown> = {};
        for (const k in o) out[k] = toTagged(o[k]);
        return "$" in o ? { $: "object", v: out } : out;
      }
      if (v instanceof Uint8Array && proto === Uint8Array.prototype) {
        return { $: "bytes", v: bytesToBase64(v) };
      }
      if (v instanceof Date) {
        const t = v.getTime();
        return { $: "date", v: Number.isNaN(t) ? "Invalid" : t };
      }
      if (v instanceof Map) {
        const out: unknown[] = [];
        for (const [k, x] of v) out.push([toTagged(k), toTagged(x)]);
        return { $: "map", v: out };
      }
      if (v instanceof Set) {
        const out: unknown[] = [];
        for (const x of v) out.push(toTagged(x));
        return { $: "set", v: out };
      }
      if (v instanceof Deno.KvU64) return { $: "u64", v: v.value.toString() };
      if (v instanceof ArrayBuffer) {
        return { $: "arraybuffer", v: bytesToBase64(new Uint8Array(v)) };
      }
      if (ArrayBuffer.isView(v) && !(v instanceof DataView)) {
        const name = v.constructor.name;
        if (TYPED_ARRAYS[name] && Object.getPrototypeOf(v) === TYPED_ARRAYS[name].prototype) {
          const bytes = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
          return { $: "typedarray", t: name, v: bytesToBase64(bytes) };
        }
      }
      if (v instanceof RegExp) return { $: "regexp", v: v.source, f: v.flags };
      throw new UnsupportedValueError(proto?.constructor?.name ?? "object");
    }
    default:
      throw new UnsupportedValueError(typeof v);
  }
}

function fail(msg: string): never {
  throw new CorruptEntryError(msg);
}

/**
 * Inverse of {@link toTagged}. Throws {@link CorruptEntryError} on an unknown tag.
 *
 * @example
 * ```ts
 * fromTagged({ $: "number", v: "-0" }); // -0
 * ```
 */
export function fromTagged(v: unknown): unknown {
  if (v === null || typeof v !== "object") return v;
  if (Array.isArray(v)) return v.map(fromTagged);
  const o = v as Record<string, unknown>;
  if (!("$" in o)) {
    const out: Record<string, unknown> = {};
    for (const k in o) out[k] = fromTagged(o[k]);
    return out;
  }
  const x = o.v;
  switch (o.$) {
    case "number":
      if (x === "NaN") return NaN;
      if (x === "Infinity") return Infinity;
      if (x === "-Infinity") return -Infinity;
      if (x === "-0") return -0;
      return fail(`bad number tag ${JSON.stringify(x)}`);
    case "bigint":
      if (typeof x !== "string" || !/^-?\d+$/.test(x)) fail("bad bigint tag");
      return BigInt(x);
    case "undefined":
      return undefined;
    case "object": {
      if (!x || typeof x !== "object" || Array.isArray(x)) fail("bad object tag");
      const out: Record<string, unknown> = {};
      for (const k in x as Record<string, unknown>) {
        out[k] = fromTagged((x as Record<string, unknown>)[k]);
      }
      return out;
    }
    case "bytes":
      if (typeof x !== "string") fail("bad bytes tag");
      return base64ToBytes(x);
    case "date":
      return new Date(x === "Invalid" ? NaN : Number(x));
    case "map":
      if (!Array.isArray(x)) fail("bad map tag");
      return new Map(
        x.map((p) => {
          if (!Array.isArray(p) || p.length !== 2) fail("bad map entry");
          return [fromTagged(p[0]), fromTagged(p[1])];
        }),
      );
    case "set":
      if (!Array.isArray(x)) fail("bad set tag");
      return new Set(x.map(fromTagged));
    case "u64":
      if (typeof x !== "string" || !/^\d+$/.test(x)) fail("bad u64 tag");
      return new Deno.KvU64(BigInt(x));
    case "arraybuffer":
      if (typeof x !== "string") fail("bad arraybuffer tag");
      return base64ToBytes(x).buffer;
    case "typedarray": {
      const ctor = TYPED_ARRAYS[String(o.t)];
      if (!ctor || typeof x !== "string") fail("bad typedarray tag");
      return new ctor(base64ToBytes(x).buffer as ArrayBuffer);
    }
    case "regexp":
      return new RegExp(String(x), String(o.f ?? ""));
    default:
      return fail(`unknown tag ${JSON.stringify(o.$)}`);
  }
}

/**
 * True when `v` is plain JSON that JSON.stringify writes exactly (so no tagged copy is
 * needed): strings, finite non -0 numbers, booleans, null, dense arrays and plain objects
 * without a `"$"` property, all the way down. Walks without allocating.
 */
function isPlainJson(v: unknown): boolean {
  switch (typeof v) {
    case "string":
    case "boolean":
      return true;
    case "number":
      return Number.isFinite(v) && !Object.is(v, -0);
    case "object": {
      if (v === null) return true;
      if (Array.isArray(v)) {
        for (let i = 0; i < v.length; i++) if (!(i in v) || !isPlainJson(v[i])) return false;
        return true;
      }
      const proto = Object.getPrototypeOf(v);
      if (proto !== Object.prototype && proto !== null) return false;
      if ("$" in (v as object)) return false;
      for (const k in v as Record<string, unknown>) {
        if (!isPlainJson((v as Record<string, unknown>)[k])) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

/**
 * One backup line (without the newline): `[taggedKey, taggedValue]`.
 *
 * @example
 * ```ts
 * encodeEntry(["users", "u1"], { n: -0 }); // [["users","u1"],{"n":{"$":"number","v":"-0"}}]
 * ```
 */
export function encodeEntry(key: Deno.KvKey, value: unknown): string {
  if (isPlainJson(key) && isPlainJson(value)) return JSON.stringify([key, value]);
  return `[${encodeKey(key)},${encodeValue(value)}]`;
}

/**
 * The tagged JSON of a key; equal keys give equal strings.
 *
 * @example
 * ```ts
 * encodeKey(["a", 1n]); // ["a",{"$":"bigint","v":"1"}]
 * ```
 */
export function encodeKey(key: Deno.KvKey): string {
  return JSON.stringify(isPlainJson(key) ? key : toTagged(key));
}

/**
 * The tagged JSON of a value; equal values (same types, same order) give equal strings.
 *
 * @example
 * ```ts
 * encodeValue(new Set([1])); // {"$":"set","v":[1]}
 * ```
 */
export function encodeValue(value: unknown): string {
  return JSON.stringify(isPlainJson(value) ? value : toTagged(value));
}

/**
 * Parses one line written by {@link encodeEntry} into `[key, value]` without checks
 * (restore's hot path; the file's checksum was verified first). Lines without any tag
 * skip the decoding walk.
 *
 * @example
 * ```ts
 * const [key, value] = parseEntryLine(line);
 * ```
 */
export function parseEntryLine(line: string): [Deno.KvKey, unknown, unknown] {
  const parsed = JSON.parse(line) as [unknown, unknown];
  if (!line.includes('"$"')) return [parsed[0] as Deno.KvKey, parsed[1], parsed[1]];
  return [fromTagged(parsed[0]) as Deno.KvKey, fromTagged(parsed[1]), parsed[1]];
}

/** A decoded backup line. */
export interface DecodedEntry {
  key: Deno.KvKey;
  value: unknown;
}

/**
 * Parses one backup line; throws {@link CorruptEntryError} when it is not an entry.
 *
 * @example
 * ```ts
 * const { key, value } = decodeEntry('[["a"],{"$":"bigint","v":"1"}]'); // ["a"], 1n
 * ```
 */
export function decodeEntry(line: string): DecodedEntry {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    fail("line is not JSON");
  }
  if (!Array.isArray(parsed) || parsed.length !== 2 || !Array.isArray(parsed[0])) {
    fail("line is not a [key, value] pair");
  }
  const key = fromTagged(parsed[0]) as Deno.KvKeyPart[];
  for (const part of key) {
    const t = typeof part;
    if (
      !(t === "string" || t === "number" || t === "bigint" || t === "boolean" ||
        part instanceof Uint8Array)
    ) fail("key part of an invalid type");
  }
  return { key, value: fromTagged(parsed[1]) };
}

const utf8 = new TextEncoder();

function partRank(p: Deno.KvKeyPart): number {
  if (p instanceof Uint8Array) return 0;
  switch (typeof p) {
    case "string":
      return 1;
    case "bigint":
      return 2;
    case "number":
      return 3;
    default:
      return 4;
  }
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

const f64 = new Float64Array(1);
const f64Bytes = new Uint8Array(f64.buffer);

/** Orders doubles as KV does (FoundationDB tuple encoding): -0 before 0, NaN last. */
function numberSortBytes(n: number): Uint8Array {
  f64[0] = n;
  const out = new Uint8Array(8);
  for (let i = 0; i < 8; i++) out[i] = f64Bytes[7 - i]; // big-endian (little-endian hosts)
  if (out[0] & 0x80) { for (let i = 0; i < 8; i++) out[i] ^= 0xff; }
  else out[0] ^= 0x80;
  return out;
}

function comparePart(a: Deno.KvKeyPart, b: Deno.KvKeyPart): number {
  const ra = partRank(a), rb = partRank(b);
  if (ra !== rb) return ra - rb;
  switch (ra) {
    case 0:
      return compareBytes(a as Uint8Array, b as Uint8Array);
    case 1: {
      const sa = a as string, sb = b as string;
      if (sa === sb) return 0;
      // UTF-16 order differs from UTF-8 byte order only around surrogates: compare bytes then.
      // deno-lint-ignore no-control-regex
      if (/^[\u0001-\ud7ff]*$/.test(sa) && /^[\u0001-\ud7ff]*$/.test(sb)) {
        return sa < sb ? -1 : 1;
      }
      return compareBytes(utf8.encode(sa), utf8.encode(sb));
    }
    case 2:
      return (a as bigint) < (b as bigint) ? -1 : (a as bigint) > (b as bigint) ? 1 : 0;
    case 3:
      return compareBytes(numberSortBytes(a as number), numberSortBytes(b as number));
    default:
      return Number(a) - Number(b);
  }
}

/**
 * Compares two keys in the order `kv.list` returns them: part by part, by type
 * (Uint8Array < string < bigint < number < boolean), then by value; a prefix sorts first.
 *
 * @example
 * ```ts
 * compareKeys(["a"], ["a", 1]); // < 0
 * ```
 */
export function compareKeys(a: Deno.KvKey, b: Deno.KvKey): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const c = comparePart(a[i], b[i]);
    if (c !== 0) return c;
  }
  return a.length - b.length;
}
