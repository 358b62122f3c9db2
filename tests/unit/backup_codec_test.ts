import assert from "node:assert/strict";
import { compareKeys, decodeEntry, encodeEntry, toTagged } from "../../lib/backup_codec.ts";
import { sameKvKey, sameKvValue } from "../../lib/kv_equal.ts";

/** Every value type KV stores, nested in every container. */
export const ALL_VALUES: Record<string, unknown> = {
  string: 'héllo \u0000 \u{1F600} \n"quoted"',
  emptyString: "",
  number: 42.5,
  negativeZero: -0,
  nan: NaN,
  infinity: Infinity,
  negativeInfinity: -Infinity,
  maxSafe: Number.MAX_SAFE_INTEGER,
  bigint: 12345678901234567890123456789n,
  negativeBigint: -1n,
  true: true,
  false: false,
  null: null,
  undefined: undefined,
  bytes: new Uint8Array([0, 1, 2, 254, 255]),
  emptyBytes: new Uint8Array(0),
  date: new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 6)),
  invalidDate: new Date(NaN),
  map: new Map<unknown, unknown>([["a", 1], [2n, new Set([-0])], [new Uint8Array([9]), null]]),
  set: new Set<unknown>([1, "1", 1n, undefined]),
  array: [1, "two", [3, [4n]], { five: undefined }],
  nested: { a: { b: { c: [new Date(0), new Map([[1, { d: NaN }]])] } }, "1": "int key first" },
  objectWithDollar: { $: "bigint", v: "1" },
  u64: new Deno.KvU64(18446744073709551615n),
  int16: new Int16Array([-1, 2, 300]),
  float64: new Float64Array([-0, NaN]),
  arrayBuffer: new Uint8Array([7, 8]).buffer,
  regexp: /a+b/gi,
};

/** Every key part type. */
export const ALL_KEYS: Deno.KvKey[] = [
  ["s", "plain"],
  ["s", "\u0000nul"],
  ["s", "é\u{1F600}\uFFFF"],
  ["n", 0],
  ["n", -0],
  ["n", 1.5],
  ["n", -Infinity],
  ["n", Infinity],
  ["n", NaN],
  ["b", 0n],
  ["b", -99999999999999999999n],
  ["t", true],
  ["t", false],
  ["u", new Uint8Array([])],
  ["u", new Uint8Array([0, 255])],
  [new Uint8Array([1]), "bytes first", 2n, 3, false],
];

Deno.test("every value type survives a line round trip exactly", () => {
  for (const [name, value] of Object.entries(ALL_VALUES)) {
    const back = decodeEntry(encodeEntry(["v", name], value));
    assert.ok(sameKvValue(back.value, value), `value ${name} changed: ${Deno.inspect(back.value)}`);
  }
  // The equality itself tells types apart.
  assert.equal(sameKvValue(-0, 0), false);
  assert.equal(sameKvValue(new Deno.KvU64(1n), 1n), false);
  assert.equal(sameKvValue(new Date(5), 5), false);
  assert.equal(sameKvValue(new Map([["a", 1]]), { a: 1 }), false);
  assert.equal(sameKvValue({ a: 1, b: 2 }, { b: 2, a: 1 }), false);
});

Deno.test("every key part type survives a line round trip exactly", () => {
  for (const key of ALL_KEYS) {
    const back = decodeEntry(encodeEntry(key, 1));
    assert.ok(sameKvKey(back.key, key), `key ${Deno.inspect(key)} changed`);
  }
});

Deno.test("compareKeys orders keys exactly as kv.list does", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const extra: Deno.KvKey[] = [["a"], ["a", "b"], ["a", 1], ["a\u0000"], ["z"], [1n], [-1n], [1]];
    for (const k of [...ALL_KEYS, ...extra]) await kv.set(k, 1);
    const listed: Deno.KvKey[] = [];
    for await (const e of kv.list({ prefix: [] })) listed.push(e.key);
    const sorted = [...listed].reverse().sort(compareKeys);
    assert.deepEqual(sorted.map((k) => Deno.inspect(k)), listed.map((k) => Deno.inspect(k)));
  } finally {
    kv.close();
  }
});

Deno.test("values the format cannot represent exactly are refused, not changed", () => {
  class Custom {}
  assert.throws(() => toTagged(new Custom()), /Cannot back up a value of type Custom/);
  // deno-lint-ignore no-sparse-arrays
  assert.throws(() => toTagged([1, , 3]), /sparse array/);
});

Deno.test("damaged lines are reported", () => {
  assert.throws(() => decodeEntry('[["a"],'), /not JSON/);
  assert.throws(() => decodeEntry('[["a"],{"$":"nope"}]'), /unknown tag/);
  assert.throws(() => decodeEntry('[[{"$":"map","v":[]}],1]'), /key part of an invalid type/);
});
