/**
 * `deno task drill`: proves a backup restores exactly. Backs up the live store (from a
 * point-in-time snapshot when it is a local file), restores the backup into a scratch
 * KV, compares every entry (keys, values and their types) with what was backed up,
 * checks Lodge's invariants on the restored copy, prints the timings, and exits
 * non-zero on any difference.
 *
 * @example
 * ```sh
 * deno task drill
 * ```
 * @module
 */
import { type Config, ConfigError, loadConfig } from "../lib/config.ts";
import { openKv } from "../kv/db.ts";
import { compareKeys, parseEntryLine } from "../lib/backup_codec.ts";
import { readBackupLines, verifyBackup } from "../lib/backup_file.ts";
import { FolderDestination } from "../lib/backup_store.ts";
import { sameKvKey, sameKvValue } from "../lib/kv_equal.ts";
import { checkInvariants, type InvariantResult } from "../kv/invariants.ts";
import {
  createBackup,
  isBackupBookkeeping,
  isLocalKvFile,
  openTarget,
  snapshotKv,
} from "./backup.ts";
import { restoreBackup } from "./restore.ts";

/** Result of {@link compareWithStore}. */
export interface Comparison {
  compared: number;
  differences: number;
  /** The first few differences, described. */
  examples: string[];
}

/**
 * Entries of a backup file, decoded.
 *
 * @example
 * ```ts
 * for await (const { key, value } of backupEntries(path)) console.log(key, value);
 * ```
 */
export async function* backupEntries(
  path: string,
): AsyncGenerator<{ key: Deno.KvKey; value: unknown }> {
  for await (const lines of readBackupLines(path)) {
    for (const line of lines) {
      const [key, value] = parseEntryLine(line);
      yield { key, value };
    }
  }
}

/**
 * Compares `expected` (in key order) with every entry of `actual`, ignoring backup
 * bookkeeping keys: missing, extra and different entries are differences.
 *
 * @example
 * ```ts
 * const cmp = await compareWithStore(backupEntries(path), restoredKv);
 * if (cmp.differences) console.log(cmp.examples);
 * ```
 */
export async function compareWithStore(
  expected: AsyncIterable<{ key: Deno.KvKey; value: unknown }>,
  actual: Deno.Kv,
): Promise<Comparison> {
  const out: Comparison = { compared: 0, differences: 0, examples: [] };
  const note = (text: string) => {
    out.differences++;
    if (out.examples.length < 10) out.examples.push(text);
  };
  const iter = actual.list({ prefix: [] }, { batchSize: 1000 })[Symbol.asyncIterator]();
  const next = async () => {
    for (;;) {
      const r = await iter.next();
      if (r.done) return null;
      if (!isBackupBookkeeping(r.value.key)) return r.value;
    }
  };
  let a = await next();
  for await (const e of expected) {
    if (isBackupBookkeeping(e.key)) continue;
    out.compared++;
    while (a && compareKeys(a.key, e.key) < 0) {
      note(`extra key ${Deno.inspect(a.key)}`);
      a = await next();
    }
    if (!a || !sameKvKey(a.key, e.key)) {
      note(`missing key ${Deno.inspect(e.key)}`);
      continue;
    }
    if (!sameKvValue(a.value, e.value)) {
      note(
        `different value at ${Deno.inspect(e.key)}: ${
          Deno.inspect(a.value, { depth: 3 }).slice(0, 200)
        } ≠ ${Deno.inspect(e.value, { depth: 3 }).slice(0, 200)}`,
      );
    }
    a = await next();
  }
  while (a) {
    note(`extra key ${Deno.inspect(a.key)}`);
    a = await next();
  }
  return out;
}

/** What a drill found. */
export interface DrillResult {
  ok: boolean;
  entries: number;
  bytes: number;
  comparison: Comparison;
  invariants: InvariantResult;
  /** Phase → milliseconds. */
  timings: Record<string, number>;
}

/**
 * Runs a drill against `kv` (at `kvPath` when it is a local file), in a scratch folder.
 *
 * @example
 * ```ts
 * const r = await runDrill({ kv, kvPath: "data/lodge.kv", appVersion: "1.0.0" });
 * console.log(r.ok, r.timings);
 * ```
 */
export async function runDrill(opts: {
  kv: Deno.Kv;
  kvPath: string | undefined;
  appVersion: string;
  log?: (line: string) => void;
}): Promise<DrillResult> {
  const log = opts.log ?? ((l: string) => console.error(l));
  const scratch = await Deno.makeTempDir({ prefix: "lodge-drill-" });
  const timings: Record<string, number> = {};
  const time = async <T>(name: string, f: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    const r = await f();
    timings[name] = Math.round(performance.now() - t0);
    log(`${name}: ${timings[name]} ms`);
    return r;
  };
  const snapshot = await isLocalKvFile(opts.kvPath)
    ? await time("snapshot", () => snapshotKv(opts.kvPath!, scratch))
    : null;
  const restored = await openKv(`${scratch}/restored.kv`);
  try {
    const created = await time("backup", () =>
      createBackup({
        kv: opts.kv,
        kvPath: undefined,
        destination: new FolderDestination(scratch),
        appVersion: opts.appVersion,
        source: snapshot ? { kv: snapshot.kv, kind: "sqlite-snapshot" } : undefined,
      }));
    await time("verify", () => verifyBackup(created.location));
    await time("restore", () => restoreBackup(restored, created.location));
    // Against the snapshot itself when there is one (independent of the file format).
    const comparison = await time("compare", () =>
      compareWithStore(
        snapshot
          ? snapshot.kv.list({ prefix: [] }, { batchSize: 1000 })
          : backupEntries(created.location),
        restored,
      ));
    const invariants = await time("invariants", () => checkInvariants(restored));
    timings.total = Object.values(timings).reduce((a, b) => a + b, 0);
    return {
      ok: comparison.differences === 0 && invariants.ok,
      entries: created.manifest.entries,
      bytes: created.manifest.bytes,
      comparison,
      invariants,
      timings,
    };
  } finally {
    restored.close();
    await snapshot?.close();
    await Deno.remove(scratch, { recursive: true }).catch(() => {});
  }
}

async function main(): Promise<number> {
  let config: Config;
  try {
    config = loadConfig(Deno.env.toObject());
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      return 2;
    }
    throw err;
  }
  const kv = await openTarget(config.kvPath);
  try {
    let r: DrillResult;
    try {
      r = await runDrill({ kv, kvPath: config.kvPath, appVersion: config.version });
    } catch (err) {
      // One line, no stack trace: the operator needs to know what failed, not where.
      console.error(`Drill FAILED: ${(err as Error)?.name ?? "Error"}: ${(err as Error)?.message}`);
      return 1;
    }
    console.log(
      `Drill of ${config.kvPath ?? "the platform KV"}: ${r.entries} entries, ${r.bytes} bytes.`,
    );
    console.log(
      `Compared ${r.comparison.compared} entries: ${r.comparison.differences} differences.`,
    );
    for (const ex of r.comparison.examples) console.log(`  ${ex}`);
    console.log(
      `Invariants: ${r.invariants.ok ? "hold" : "BROKEN"} (${
        Object.entries(r.invariants.checked).map(([k, v]) => `${k}: ${v}`).join(", ")
      }).`,
    );
    for (const p of r.invariants.problems) console.log(`  ${p}`);
    console.log(
      `Timings (ms): ${Object.entries(r.timings).map(([k, v]) => `${k} ${v}`).join(", ")}.`,
    );
    console.log(r.ok ? "Drill passed." : "Drill FAILED.");
    return r.ok ? 0 : 1;
  } finally {
    kv.close();
  }
}

if (import.meta.main) Deno.exit(await main());
