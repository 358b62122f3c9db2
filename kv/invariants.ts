/**
 * Lodge's cross-key invariants, checked over a whole store by the drill and by tests:
 * both halves of every membership agree (["memberships", ws, u] ↔ ["user_workspaces", u, ws],
 * same role), and every unique index points at a record that points back
 * (["users_by_email", k] → user with emailKey k; ["workspaces_by_slug", s] → workspace
 * with slug s).
 *
 * Each relation is checked in constant memory: both sides are streamed and summed as a
 * multiset hash of their (id, id, …) tuples; equal sums mean equal sets. Only when a sum
 * differs does a second pass look up counterparts one by one to name the offenders.
 *
 * @example
 * ```ts
 * const result = await checkInvariants(kv);
 * if (!result.ok) console.error(result.problems);
 * ```
 * @module
 */
import * as keys from "./keys.ts";
import type { Membership, UserWorkspace, Workspace } from "./workspaces.ts";
import type { User } from "./users.ts";

/**
 * The text of a tuple: parts joined by U+0001 (never in ids, slugs or email keys), typed
 * so that "1" and 1 differ. Cheaper than JSON on the backup's hot path.
 */
function tuple(...parts: unknown[]): string {
  let out = "";
  for (const p of parts) out += `${typeof p === "string" ? "s" : (typeof p)[0]}${String(p)}\u0001`;
  return out;
}

/** One side of a relation: a prefix and the tuple each entry contributes. */
interface Side {
  prefix: Deno.KvKey;
  tuple(e: Deno.KvEntry<unknown>): string;
  /** The key that must hold the matching tuple on the other side. */
  counterpart(e: Deno.KvEntry<unknown>): Deno.KvKey;
}

interface Relation {
  name: string;
  left: Side;
  right: Side;
}

const RELATIONS: Relation[] = [
  {
    name: "membership pairs",
    left: {
      prefix: ["memberships"],
      tuple: (e) => {
        const m = e.value as Membership;
        return tuple(e.key[1], e.key[2], m?.role, m?.workspaceId, m?.userId);
      },
      counterpart: (e) => keys.userWorkspace(String(e.key[2]), String(e.key[1])),
    },
    right: {
      prefix: ["user_workspaces"],
      tuple: (e) => {
        const uw = e.value as UserWorkspace;
        return tuple(e.key[2], e.key[1], uw?.role, uw?.workspaceId, e.key[1]);
      },
      counterpart: (e) => keys.membership(String(e.key[2]), String(e.key[1])),
    },
  },
  {
    name: "email index → users",
    left: {
      prefix: ["users_by_email"],
      tuple: (e) => tuple(e.value, e.key[1]),
      counterpart: (e) => keys.user(String(e.value)),
    },
    right: {
      prefix: ["users"],
      tuple: (e) => tuple(e.key[1], (e.value as User)?.emailKey),
      counterpart: (e) => keys.userByEmail(String((e.value as User)?.emailKey)),
    },
  },
  {
    name: "slug index → workspaces",
    left: {
      prefix: ["workspaces_by_slug"],
      tuple: (e) => tuple(e.value, e.key[1]),
      counterpart: (e) => keys.workspace(String(e.value)),
    },
    right: {
      prefix: ["workspaces"],
      tuple: (e) => tuple(e.key[1], (e.value as Workspace)?.slug),
      counterpart: (e) => keys.workspaceBySlug(String((e.value as Workspace)?.slug)),
    },
  },
];

/** Result of {@link checkInvariants}. */
export interface InvariantResult {
  ok: boolean;
  /** Entries looked at per relation. */
  checked: Record<string, number>;
  /** Human-readable problems (at most a few per relation). */
  problems: string[];
}

/**
 * A running multiset hash of one side's tuples: the sum of a 64-bit hash (two 32-bit
 * halves, cyrb53-style mixing) of each tuple. It finds accidental differences, not
 * crafted ones, and is ~30× cheaper than SHA-256 per entry, which matters on the
 * backup's hot path.
 */
class SideSum {
  a = 0;
  b = 0;
  count = 0;
  add(tuple: string): void {
    let h1 = 0xdeadbeef, h2 = 0x41c6ce57;
    for (let i = 0; i < tuple.length; i++) {
      const c = tuple.charCodeAt(i);
      h1 = Math.imul(h1 ^ c, 2654435761);
      h2 = Math.imul(h2 ^ c, 1597334677);
    }
    h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
    h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
    this.a = (this.a + (h1 >>> 0)) >>> 0;
    this.b = (this.b + (h2 >>> 0)) >>> 0;
    this.count++;
  }
  get sum(): string {
    return `${this.a}:${this.b}:${this.count}`;
  }
}

async function sideSum(kv: Deno.Kv, side: Side): Promise<SideSum> {
  const sum = new SideSum();
  for await (const e of kv.list({ prefix: side.prefix }, { batchSize: 1000 })) {
    sum.add(side.tuple(e));
  }
  return sum;
}

/**
 * Checks the invariants over a stream of entries in one pass (e.g. while a backup is
 * written), in constant memory: feed every entry to {@link InvariantTally.add}, then
 * read {@link InvariantTally.problems}.
 *
 * @example
 * ```ts
 * const tally = new InvariantTally();
 * for await (const e of kv.list({ prefix: [] })) tally.add(e.key, e.value);
 * console.log(tally.problems()); // [] when every relation holds
 * ```
 */
export class InvariantTally {
  readonly #sums = RELATIONS.map(() => [new SideSum(), new SideSum()] as const);
  /** Counts one entry (entries of unrelated prefixes are ignored). */
  add(key: Deno.KvKey, value: unknown): void {
    const first = key[0];
    for (let i = 0; i < RELATIONS.length; i++) {
      const rel = RELATIONS[i];
      if (first === rel.left.prefix[0]) {
        this.#sums[i][0].add(rel.left.tuple({ key, value, versionstamp: "" }));
      } else if (first === rel.right.prefix[0]) {
        this.#sums[i][1].add(rel.right.tuple({ key, value, versionstamp: "" }));
      }
    }
  }
  /** The relations that do not hold, described. */
  problems(): string[] {
    return RELATIONS.flatMap((rel, i) => {
      const [l, r] = this.#sums[i];
      return l.sum === r.sum ? [] : [`${rel.name}: ${l.count} vs ${r.count} entries disagree`];
    });
  }
}

async function offenders(kv: Deno.Kv, from: Side, to: Side, limit: number): Promise<string[]> {
  const out: string[] = [];
  for await (const e of kv.list({ prefix: from.prefix }, { batchSize: 1000 })) {
    const other = await kv.get(from.counterpart(e));
    if (other.value === null || to.tuple(other as Deno.KvEntry<unknown>) !== from.tuple(e)) {
      out.push(`${JSON.stringify(e.key)} has no matching ${JSON.stringify(other.key)}`);
      if (out.length >= limit) break;
    }
  }
  return out;
}

/**
 * Checks every relation over the whole store.
 *
 * @example
 * ```ts
 * const { ok, problems } = await checkInvariants(kv);
 * ```
 */
export async function checkInvariants(kv: Deno.Kv): Promise<InvariantResult> {
  const result: InvariantResult = { ok: true, checked: {}, problems: [] };
  for (const rel of RELATIONS) {
    const [l, r] = await Promise.all([sideSum(kv, rel.left), sideSum(kv, rel.right)]);
    result.checked[rel.name] = l.count + r.count;
    if (l.sum === r.sum) continue;
    result.ok = false;
    const found = [
      ...await offenders(kv, rel.left, rel.right, 5),
      ...await offenders(kv, rel.right, rel.left, 5),
    ];
    result.problems.push(
      `${rel.name}: ${l.count} vs ${r.count} entries disagree` +
        (found.length ? `: ${found.join("; ")}` : ""),
    );
  }
  return result;
}
