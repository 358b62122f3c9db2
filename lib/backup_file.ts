/**
 * Backup files: gzip-compressed NDJSON (docs/backup-format.md). A header line, one
 * `[key, value]` line per KV entry in key order, and a trailer line with the entry count;
 * beside it a {@link BackupManifest} with the file's size and SHA-256.
 *
 * Writing and reading stream in bounded chunks, so memory stays flat however many
 * entries there are.
 *
 * @example
 * ```ts
 * const written = await writeBackupFile("data/backups/x.ndjson.gz", kv.list({ prefix: [] }), meta);
 * for await (const lines of readBackupLines("data/backups/x.ndjson.gz")) console.log(lines.length);
 * ```
 * @module
 */
import { createHash } from "node:crypto";
import { once } from "node:events";
import { createGunzip, createGzip } from "node:zlib";
import { encodeEntry } from "./backup_codec.ts";

/** The format name written in every header and manifest. */
export const BACKUP_FORMAT = "lodge-kv-backup";
/** The newest format version this code reads and the one it writes. */
export const BACKUP_FORMAT_VERSION = 1;

/** The first line of a backup file. */
export interface BackupHeader {
  format: typeof BACKUP_FORMAT;
  version: number;
  createdAt: string;
  appVersion: string;
}

/** What sits beside each backup as `<file>.manifest.json`. */
export interface BackupManifest {
  format: typeof BACKUP_FORMAT;
  formatVersion: number;
  appVersion: string;
  /** ISO time the backup started. */
  createdAt: string;
  /** The backup file's name (no folder). */
  file: string;
  /** Total entries. */
  entries: number;
  /** Entries per top-level key part (the first key part, as text). */
  prefixes: Record<string, number>;
  /** Size of the compressed file. */
  bytes: number;
  /** SHA-256 (hex) of the compressed file. */
  sha256: string;
  /** How long the backup took, ms. */
  durationMs: number;
  /** "sqlite-snapshot" (point in time) or "kv-list" (consistent per list batch). */
  source: "sqlite-snapshot" | "kv-list";
  /** "hold", or the invariants (kv/invariants.ts) the entries break. */
  invariants?: "hold" | string[];
}

/**
 * Why a backup was refused before anything was written.
 *
 * @example
 * ```ts
 * await verifyBackup(path).catch((e) => e instanceof BackupRejectedError && console.error(e.message));
 * ```
 */
export class BackupRejectedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BackupRejectedError";
  }
}

/**
 * The name a prefix is counted under: its first key part as text.
 *
 * @example
 * ```ts
 * prefixName(["users", "u1"]); // "users"
 * ```
 */
export function prefixName(key: Deno.KvKey): string {
  const p = key[0];
  if (p === undefined) return "(empty key)";
  if (p instanceof Uint8Array) return "(bytes)";
  return String(p);
}

/** Result of {@link writeBackupFile}. */
export interface WrittenBackup {
  entries: number;
  prefixes: Record<string, number>;
  bytes: number;
  sha256: string;
}

const CHUNK_CHARS = 256 * 1024;

/**
 * Reads `src` one chunk ahead: while the caller encodes a chunk, the next one is already
 * being fetched (KV reads run off the main thread), so reading and encoding overlap.
 *
 * @example
 * ```ts
 * for await (const chunk of readAhead(kv.list({ prefix: [] }))) console.log(chunk.length);
 * ```
 */
export async function* readAhead<T>(src: AsyncIterable<T>, chunk = 1000): AsyncGenerator<T[]> {
  const it = src[Symbol.asyncIterator]();
  const fill = async (): Promise<{ items: T[]; done: boolean }> => {
    const items: T[] = [];
    while (items.length < chunk) {
      const r = await it.next();
      if (r.done) return { items, done: true };
      items.push(r.value);
    }
    return { items, done: false };
  };
  let next = fill();
  try {
    for (;;) {
      const cur = await next;
      if (!cur.done) next = fill();
      if (cur.items.length) yield cur.items;
      if (cur.done) return;
    }
  } finally {
    next.catch(() => {}); // the caller stopped early: the read-ahead is not wanted
  }
}

/**
 * Streams `entries` (in key order) into a new gzip NDJSON file at `path`, hashing as it
 * writes. Entries are encoded with the tagged format; an unrepresentable value throws.
 *
 * @example
 * ```ts
 * const w = await writeBackupFile(path, kv.list({ prefix: [] }), { createdAt, appVersion: "1.0.0" });
 * ```
 */
export async function writeBackupFile(
  path: string,
  entries: AsyncIterable<Deno.KvEntry<unknown>>,
  meta: {
    createdAt: string;
    appVersion: string;
    filter?: (key: Deno.KvKey) => boolean;
    /** Sees every entry written (e.g. to check invariants in the same pass). */
    onEntry?: (key: Deno.KvKey, value: unknown) => void;
    /** Compress on another core (lib/gzip_worker.ts) instead of the main thread. */
    compressInWorker?: boolean;
  },
): Promise<WrittenBackup> {
  const prefixes: Record<string, number> = {};
  let count = 0;
  const header: BackupHeader = {
    format: BACKUP_FORMAT,
    version: BACKUP_FORMAT_VERSION,
    createdAt: meta.createdAt,
    appVersion: meta.appVersion,
  };
  async function* text(): AsyncGenerator<string> {
    let buf = JSON.stringify(header) + "\n";
    for await (const batch of readAhead(entries)) {
      for (const e of batch) {
        if (meta.filter && !meta.filter(e.key)) continue;
        buf += encodeEntry(e.key, e.value) + "\n";
        meta.onEntry?.(e.key, e.value);
        count++;
        const p = prefixName(e.key);
        prefixes[p] = (prefixes[p] ?? 0) + 1;
      }
      if (buf.length >= CHUNK_CHARS) {
        yield buf;
        buf = "";
      }
    }
    yield buf + JSON.stringify({ end: true, entries: count }) + "\n";
  }
  const sink = meta.compressInWorker ? workerSink(path) : await inlineSink(path);
  try {
    for await (const t of text()) await sink.write(t);
  } catch (err) {
    sink.abort();
    throw err;
  }
  const { bytes, sha256 } = await sink.close();
  return { entries: count, prefixes, bytes, sha256 };
}

/** Where compressed text goes: gzip → SHA-256 → file. */
interface GzipSink {
  write(text: string): Promise<void>;
  close(): Promise<{ bytes: number; sha256: string }>;
  abort(): void;
}

/** Compresses on the main thread. */
async function inlineSink(path: string): Promise<GzipSink> {
  const hash = createHash("sha256");
  let bytes = 0;
  const file = await Deno.open(path, { write: true, createNew: true, mode: 0o600 });
  const gz = createGzip();
  const written = (async () => {
    for await (const chunk of gz as AsyncIterable<Uint8Array>) {
      hash.update(chunk);
      bytes += chunk.byteLength;
      let off = 0;
      while (off < chunk.byteLength) off += await file.write(chunk.subarray(off));
    }
  })();
  written.catch(() => {});
  return {
    async write(t) {
      if (!gz.write(t)) await Promise.race([once(gz, "drain"), written]);
    },
    async close() {
      gz.end();
      try {
        await written;
        await file.sync();
      } finally {
        file.close();
      }
      return { bytes, sha256: hash.digest("hex") };
    },
    abort() {
      gz.destroy();
      try {
        file.close();
      } catch { /* closed */ }
    },
  };
}

/** Chunks a worker may hold before the producer waits. */
const WORKER_INFLIGHT = 4;

/** Compresses in a worker (lib/gzip_worker.ts), on another core. */
function workerSink(path: string): GzipSink {
  const worker = new Worker(new URL("./gzip_worker.ts", import.meta.url), { type: "module" });
  let inflight = 0;
  let wake: (() => void) | null = null;
  let failure: Error | null = null;
  let finish: (r: { bytes: number; sha256: string }) => void;
  let fail: (e: Error) => void;
  const done = new Promise<{ bytes: number; sha256: string }>((res, rej) => {
    finish = res;
    fail = rej;
  });
  done.catch(() => {});
  worker.onmessage = (e) => {
    const m = e.data;
    if (m.ack) inflight--;
    else if (m.done) finish(m.done);
    else if (m.error) {
      failure = new Error(`writing the backup failed: ${m.error}`);
      fail(failure);
    }
    wake?.();
  };
  worker.onerror = (e) => {
    e.preventDefault();
    failure = new Error(`the compression worker failed: ${e.message}`);
    fail(failure);
    wake?.();
  };
  worker.postMessage({ open: path });
  return {
    async write(t) {
      if (failure) throw failure;
      worker.postMessage({ chunk: t });
      inflight++;
      while (inflight > WORKER_INFLIGHT && !failure) {
        await new Promise<void>((r) => wake = r);
      }
      if (failure) throw failure;
    },
    async close() {
      worker.postMessage({ end: true });
      try {
        return await done;
      } finally {
        worker.terminate();
      }
    },
    abort() {
      worker.terminate();
    },
  };
}

/**
 * SHA-256 (hex) and size of a file, streamed.
 *
 * @example
 * ```ts
 * const { sha256, bytes } = await hashFile(path);
 * ```
 */
export async function hashFile(path: string): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash("sha256");
  let bytes = 0;
  const file = await Deno.open(path, { read: true });
  for await (const chunk of file.readable) {
    hash.update(chunk);
    bytes += chunk.byteLength;
  }
  return { sha256: hash.digest("hex"), bytes };
}

/**
 * The manifest path beside a backup file.
 *
 * @example
 * ```ts
 * manifestPath("x.ndjson.gz"); // "x.ndjson.gz.manifest.json"
 * ```
 */
export function manifestPath(backupPath: string): string {
  return `${backupPath}.manifest.json`;
}

/**
 * Reads and validates a manifest (shape and format version).
 *
 * @example
 * ```ts
 * const manifest = await readManifest(path);
 * ```
 */
export async function readManifest(backupPath: string): Promise<BackupManifest> {
  let text: string;
  try {
    text = await Deno.readTextFile(manifestPath(backupPath));
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new BackupRejectedError(
        `No manifest beside the backup (expected ${manifestPath(backupPath)}).`,
      );
    }
    throw err;
  }
  let m: BackupManifest;
  try {
    m = JSON.parse(text);
  } catch {
    throw new BackupRejectedError("The manifest is not valid JSON.");
  }
  if (!m || m.format !== BACKUP_FORMAT || typeof m.sha256 !== "string") {
    throw new BackupRejectedError("The manifest is not a Lodge backup manifest.");
  }
  if (!Number.isInteger(m.formatVersion) || m.formatVersion < 1) {
    throw new BackupRejectedError("The manifest has no valid format version.");
  }
  if (m.formatVersion > BACKUP_FORMAT_VERSION) {
    throw new BackupRejectedError(
      `The backup uses format version ${m.formatVersion}, newer than this Lodge reads ` +
        `(${BACKUP_FORMAT_VERSION}). Restore it with Lodge ${m.appVersion} or later.`,
    );
  }
  return m;
}

/**
 * Checks a backup before anything is written: manifest present and valid, size and
 * SHA-256 match, and the whole file decompresses to a header, entries and a trailer
 * whose count matches. Throws {@link BackupRejectedError} with a clear reason.
 *
 * @example
 * ```ts
 * const manifest = await verifyBackup(path); // throws BackupRejectedError
 * ```
 */
export async function verifyBackup(backupPath: string): Promise<BackupManifest> {
  // The file first: a mistyped path is "not found", not "no manifest beside it".
  if (!(await Deno.stat(backupPath).then((i) => i.isFile, () => false))) {
    throw new BackupRejectedError(`Backup file not found: ${backupPath}`);
  }
  const manifest = await readManifest(backupPath);
  let actual;
  try {
    actual = await hashFile(backupPath);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new BackupRejectedError(`Backup file not found: ${backupPath}`);
    }
    throw err;
  }
  if (actual.bytes !== manifest.bytes) {
    throw new BackupRejectedError(
      `The backup is ${actual.bytes} bytes but its manifest says ${manifest.bytes}: ` +
        `the file is truncated or was changed.`,
    );
  }
  if (actual.sha256 !== manifest.sha256) {
    throw new BackupRejectedError(
      "The backup's SHA-256 does not match its manifest: the file is corrupt or was changed.",
    );
  }
  let count = 0;
  for await (const lines of readBackupLines(backupPath)) count += lines.length;
  if (count !== manifest.entries) {
    throw new BackupRejectedError(
      `The backup holds ${count} entries but its manifest says ${manifest.entries}.`,
    );
  }
  return manifest;
}

/**
 * Yields the entry lines of a backup file in batches (header and trailer checked and
 * left out). Throws {@link BackupRejectedError} on a bad header, a missing trailer
 * (truncation) or a count mismatch.
 *
 * @example
 * ```ts
 * for await (const lines of readBackupLines(path)) console.log(lines.length);
 * ```
 */
export async function* readBackupLines(
  backupPath: string,
  batchSize = 1000,
): AsyncGenerator<string[]> {
  const file = await Deno.open(backupPath, { read: true });
  const gunzip = createGunzip();
  (async () => {
    for await (const c of file.readable) {
      if (!gunzip.write(c)) await once(gunzip, "drain");
    }
    gunzip.end();
  })().catch((err) => gunzip.destroy(err));
  const decoder = new TextDecoder("utf-8", { fatal: true });
  async function* decoded(): AsyncGenerator<string> {
    for await (const buf of gunzip as AsyncIterable<Uint8Array>) {
      yield decoder.decode(buf, { stream: true });
    }
    yield decoder.decode();
  }
  const text = decoded();
  let rest = "";
  let header: BackupHeader | null = null;
  let trailer: { end: true; entries: number } | null = null;
  let count = 0;
  let batch: string[] = [];
  const take = (line: string): void => {
    if (trailer) throw new BackupRejectedError("The backup has data after its last line.");
    if (!header) {
      try {
        header = JSON.parse(line);
      } catch { /* checked below */ }
      if (!header || header.format !== BACKUP_FORMAT) {
        throw new BackupRejectedError("Not a Lodge backup (bad first line).");
      }
      if (header.version > BACKUP_FORMAT_VERSION) {
        throw new BackupRejectedError(
          `The backup uses format version ${header.version}, newer than this Lodge reads.`,
        );
      }
      return;
    }
    if (line.startsWith("{")) {
      try {
        trailer = JSON.parse(line);
      } catch {
        throw new BackupRejectedError("The backup's last line is damaged.");
      }
      if (!trailer || trailer.end !== true || trailer.entries !== count) {
        throw new BackupRejectedError("The backup's entry count does not match its last line.");
      }
      return;
    }
    count++;
    batch.push(line);
  };
  try {
    for await (const chunk of text) {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop()!;
      for (const line of parts) take(line);
      if (batch.length >= batchSize) {
        yield batch;
        batch = [];
      }
    }
  } catch (err) {
    if (err instanceof BackupRejectedError) throw err;
    throw new BackupRejectedError(
      `The backup cannot be read (${(err as Error).name}): it is truncated or corrupt.`,
    );
  } finally {
    gunzip.destroy();
    try {
      file.close();
    } catch { /* already closed by the finished read */ }
  }
  if (rest !== "") take(rest);
  if (!trailer) {
    throw new BackupRejectedError("The backup ends early (no last line): it is truncated.");
  }
  if (batch.length) yield batch;
}
