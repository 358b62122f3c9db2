/**
 * Where backups go: a folder (BACKUP_DIR) or an S3-compatible bucket such as Cloudflare
 * R2 (BACKUP_S3_*), signed with AWS Signature V4 by `aws4fetch`. Both hold, per backup,
 * the gzip file and `<file>.manifest.json` beside it; the manifest is stored last, so a
 * backup without one is incomplete and ignored.
 *
 * @example
 * ```ts
 * const dest = backupDestination(config);
 * const location = await dest.store("/tmp/x/lodge-2026-01-01T03-00-00Z.ndjson.gz");
 * ```
 * @module
 */
import { AwsClient } from "aws4fetch";
import { createHash } from "node:crypto";
import { manifestPath } from "./backup_file.ts";

/** S3 settings (all five BACKUP_S3_* variables). */
export interface S3Settings {
  endpoint: string;
  bucket: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
}

/** A place that keeps backups. */
export interface BackupDestination {
  /** "folder data/backups" or "s3 bucket/…", for messages. */
  readonly description: string;
  /**
   * The folder a new backup file is written into before {@link store} (for a folder
   * destination, the folder itself, so storing is a rename).
   */
  stagingDir(): Promise<string>;
  /** Moves/uploads a finished local backup and its manifest; returns its location. */
  store(localPath: string): Promise<string>;
  /** Names of complete backups (files whose manifest exists). */
  list(): Promise<string[]>;
  /** Deletes a backup and its manifest. */
  remove(name: string): Promise<void>;
}

/** Backup file names: `lodge-<UTC time>.ndjson.gz` (safety backups: `lodge-safety-…`). */
export const BACKUP_NAME =
  /^lodge-(\d{4}-\d{2}-\d{2})T(\d{2})-(\d{2})-(\d{2})(?:-(\d{3}))?Z\.ndjson\.gz$/;

/**
 * The file name for a backup started at `at`.
 *
 * @example
 * ```ts
 * backupFileName(new Date(0)); // "lodge-1970-01-01T00-00-00-000Z.ndjson.gz"
 * ```
 */
export function backupFileName(at: Date, kind: "lodge" | "lodge-safety" = "lodge"): string {
  const iso = at.toISOString(); // 2026-01-01T03:00:00.123Z
  return `${kind}-${iso.slice(0, 19).replaceAll(":", "-")}-${iso.slice(20, 23)}Z.ndjson.gz`;
}

/**
 * The time in a backup's name, or null for other files.
 *
 * @example
 * ```ts
 * backupTime("lodge-1970-01-01T00-00-00-000Z.ndjson.gz"); // Date(0)
 * ```
 */
export function backupTime(name: string): Date | null {
  const m = BACKUP_NAME.exec(name);
  if (!m) return null;
  return new Date(`${m[1]}T${m[2]}:${m[3]}:${m[4]}.${m[5] ?? "000"}Z`);
}

function basename(path: string): string {
  return path.slice(path.replace(/\\/g, "/").lastIndexOf("/") + 1);
}

/**
 * A folder destination.
 *
 * @example
 * ```ts
 * const dest = new FolderDestination("data/backups");
 * console.log(await dest.list());
 * ```
 */
export class FolderDestination implements BackupDestination {
  constructor(readonly dir: string) {}
  get description(): string {
    return `folder ${this.dir}`;
  }
  async stagingDir(): Promise<string> {
    const info = await Deno.stat(this.dir).catch(() => null);
    if (info && !info.isDirectory) {
      throw new Deno.errors.NotADirectory(`BACKUP_DIR is a file, not a folder: ${this.dir}`);
    }
    // Private: backups hold password hashes (each file is 0600 as well).
    await Deno.mkdir(this.dir, { recursive: true, mode: 0o700 });
    return this.dir;
  }
  async store(localPath: string): Promise<string> {
    const target = `${this.dir}/${basename(localPath)}`;
    if (localPath !== target) {
      await Deno.rename(localPath, target);
      await Deno.rename(manifestPath(localPath), manifestPath(target));
    }
    return target;
  }
  async list(): Promise<string[]> {
    const names = new Set<string>();
    try {
      for await (const e of Deno.readDir(this.dir)) if (e.isFile) names.add(e.name);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return [];
      throw err;
    }
    return [...names].filter((n) => n.endsWith(".ndjson.gz") && names.has(manifestPath(n)))
      .sort();
  }
  async remove(name: string): Promise<void> {
    for (const p of [manifestPath(`${this.dir}/${name}`), `${this.dir}/${name}`]) {
      await Deno.remove(p).catch((err) => {
        if (!(err instanceof Deno.errors.NotFound)) throw err;
      });
    }
  }
}

/**
 * Thrown when the bucket answers with an error.
 *
 * @example
 * ```ts
 * await dest.list().catch((e) => e instanceof S3Error && console.error(e.status));
 * ```
 */
export class S3Error extends Error {
  constructor(readonly status: number, operation: string, body: string) {
    const code = /<Code>([^<]+)<\/Code>/.exec(body)?.[1] ?? "unknown";
    super(`S3 ${operation} failed: HTTP ${status} ${code}`);
    this.name = "S3Error";
  }
}

/** Parts of at least this size are uploaded with S3 multipart upload. */
export const DEFAULT_PART_SIZE = 8 * 1024 * 1024;

/**
 * An S3-compatible bucket destination (path-style URLs: works with R2, MinIO, AWS).
 *
 * @example
 * ```ts
 * const dest = new S3Destination({ endpoint, bucket, region: "auto", accessKeyId, secretAccessKey });
 * const location = await dest.store(localPath); // "s3://bucket/lodge-….ndjson.gz"
 * ```
 */
export class S3Destination implements BackupDestination {
  readonly #client: AwsClient;
  readonly #base: string;
  constructor(readonly settings: S3Settings, readonly partSize = DEFAULT_PART_SIZE) {
    this.#client = new AwsClient({
      accessKeyId: settings.accessKeyId,
      secretAccessKey: settings.secretAccessKey,
      region: settings.region,
      service: "s3",
    });
    this.#base = `${settings.endpoint.replace(/\/+$/, "")}/${encodeURIComponent(settings.bucket)}`;
  }
  get description(): string {
    return `s3 ${this.settings.bucket} at ${new URL(this.settings.endpoint).host}`;
  }
  /** The location printed for a stored backup. */
  location(name: string): string {
    return `s3://${this.settings.bucket}/${name}`;
  }
  async stagingDir(): Promise<string> {
    return await Deno.makeTempDir({ prefix: "lodge-backup-" });
  }
  async #send(
    operation: string,
    path: string,
    init: { method: string; body?: Uint8Array<ArrayBuffer>; headers?: Record<string, string> },
  ): Promise<Response> {
    const body = init.body ?? new Uint8Array();
    const headers = {
      "x-amz-content-sha256": createHash("sha256").update(body).digest("hex"),
      ...init.headers,
    };
    const res = await this.#client.fetch(`${this.#base}${path}`, {
      method: init.method,
      headers,
      body: init.method === "GET" || init.method === "DELETE" ? undefined : body,
    });
    if (!res.ok) throw new S3Error(res.status, operation, await res.text());
    return res;
  }
  #path(name: string): string {
    return `/${name.split("/").map(encodeURIComponent).join("/")}`;
  }
  async #putFile(localPath: string, name: string): Promise<void> {
    const { size } = await Deno.stat(localPath);
    const file = await Deno.open(localPath, { read: true });
    try {
      if (size <= this.partSize) {
        const body = await readFull(file, size);
        await (await this.#send("PutObject", this.#path(name), { method: "PUT", body })).body
          ?.cancel();
        return;
      }
      const created = await this.#send("CreateMultipartUpload", `${this.#path(name)}?uploads`, {
        method: "POST",
      });
      const uploadId = /<UploadId>([^<]+)<\/UploadId>/.exec(await created.text())?.[1];
      if (!uploadId) throw new S3Error(502, "CreateMultipartUpload", "no UploadId");
      const q = `uploadId=${encodeURIComponent(uploadId)}`;
      try {
        const etags: string[] = [];
        for (let part = 1, left = size; left > 0; part++) {
          const n = Math.min(this.partSize, left);
          const body = await readFull(file, n);
          const res = await this.#send(
            "UploadPart",
            `${this.#path(name)}?partNumber=${part}&${q}`,
            { method: "PUT", body },
          );
          await res.body?.cancel();
          etags.push(res.headers.get("etag") ?? "");
          left -= n;
        }
        const xml = `<CompleteMultipartUpload>${
          etags.map((e, i) => `<Part><PartNumber>${i + 1}</PartNumber><ETag>${e}</ETag></Part>`)
            .join("")
        }</CompleteMultipartUpload>`;
        const done = await this.#send("CompleteMultipartUpload", `${this.#path(name)}?${q}`, {
          method: "POST",
          body: new TextEncoder().encode(xml),
        });
        const text = await done.text();
        if (text.includes("<Error>")) throw new S3Error(500, "CompleteMultipartUpload", text);
      } catch (err) {
        await this.#send("AbortMultipartUpload", `${this.#path(name)}?${q}`, { method: "DELETE" })
          .then((r) => r.body?.cancel()).catch(() => {});
        throw err;
      }
    } finally {
      file.close();
    }
  }
  async store(localPath: string): Promise<string> {
    const name = basename(localPath);
    try {
      await this.#putFile(localPath, name);
      await this.#putFile(manifestPath(localPath), manifestPath(name));
    } finally {
      // The staging folder is ours (stagingDir): leave nothing behind, uploaded or not.
      const dir = localPath.slice(0, localPath.length - name.length - 1);
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
    return this.location(name);
  }
  async list(): Promise<string[]> {
    const names = new Set<string>();
    let token: string | undefined;
    do {
      const q = `?list-type=2&prefix=lodge-${
        token ? `&continuation-token=${encodeURIComponent(token)}` : ""
      }`;
      const xml = await (await this.#send("ListObjectsV2", `/${q}`, { method: "GET" })).text();
      for (const m of xml.matchAll(/<Key>([^<]+)<\/Key>/g)) names.add(unxml(m[1]));
      token = /<IsTruncated>true<\/IsTruncated>/.test(xml)
        ? unxml(/<NextContinuationToken>([^<]+)</.exec(xml)?.[1] ?? "")
        : undefined;
    } while (token);
    return [...names].filter((n) => n.endsWith(".ndjson.gz") && names.has(manifestPath(n)))
      .sort();
  }
  async remove(name: string): Promise<void> {
    for (const n of [manifestPath(name), name]) {
      await (await this.#send("DeleteObject", this.#path(n), { method: "DELETE" })).body?.cancel();
    }
  }
  /** Downloads a stored backup and its manifest into `dir`; returns the local path. */
  async download(name: string, dir: string): Promise<string> {
    const local = `${dir}/${name}`;
    for (const [remote, path] of [[name, local], [manifestPath(name), manifestPath(local)]]) {
      const res = await this.#send("GetObject", this.#path(remote), { method: "GET" });
      const file = await Deno.open(path, {
        write: true,
        create: true,
        truncate: true,
        mode: 0o600,
      });
      await res.body!.pipeTo(file.writable);
    }
    return local;
  }
}

function unxml(s: string): string {
  return s.replaceAll("&lt;", "<").replaceAll("&gt;", ">").replaceAll("&quot;", '"')
    .replaceAll("&apos;", "'").replaceAll("&amp;", "&");
}

async function readFull(file: Deno.FsFile, n: number): Promise<Uint8Array<ArrayBuffer>> {
  const buf = new Uint8Array(n);
  let off = 0;
  while (off < n) {
    const got = await file.read(buf.subarray(off));
    if (got === null) throw new Error("file ended early while uploading");
    off += got;
  }
  return buf;
}

/** Backups younger than this are never pruned, ms (48 h: an incident found the next day
 * still has every backup taken before it, however many were taken since). */
export const KEEP_ALL_RECENT_MS = 48 * 3_600_000;

/**
 * Chooses which backups to delete: keeps every backup of the last 48 hours
 * ({@link KEEP_ALL_RECENT_MS}), the newest backup of each of the last `keepDaily` UTC days
 * that have one, and the newest of each of the last `keepMonthly` months; everything else
 * (by name) is pruned. Names without a time (and safety backups) are left alone.
 *
 * @example
 * ```ts
 * selectBackupsToPrune(["lodge-2026-01-01T03-00-00-000Z.ndjson.gz"], 30, 12); // []
 * ```
 */
export function selectBackupsToPrune(
  names: string[],
  keepDaily: number,
  keepMonthly: number,
  now = Date.now(),
): string[] {
  const dated = names.map((n) => ({ n, t: backupTime(n) }))
    .filter((x): x is { n: string; t: Date } => x.t !== null)
    .sort((a, b) => b.t.getTime() - a.t.getTime());
  const keep = new Set<string>();
  const days = new Set<string>();
  const months = new Set<string>();
  for (const { n, t } of dated) {
    if (t.getTime() > now - KEEP_ALL_RECENT_MS) keep.add(n);
    const day = t.toISOString().slice(0, 10);
    const month = day.slice(0, 7);
    if (!days.has(day) && days.size < keepDaily) {
      days.add(day);
      keep.add(n);
    }
    if (!months.has(month) && months.size < keepMonthly) {
      months.add(month);
      keep.add(n);
    }
  }
  return dated.filter((x) => !keep.has(x.n)).map((x) => x.n);
}

/**
 * Why backups cannot be written into `dir`, or null when they can: the folder (or, when it
 * does not exist yet, the nearest existing parent it would be created in) must be a
 * writable folder. Leaves nothing behind.
 *
 * @example
 * ```ts
 * const problem = await folderWriteProblem("data/backups"); // null, or "… is not writable"
 * ```
 */
export async function folderWriteProblem(dir: string): Promise<string | null> {
  let probe = dir;
  for (;;) {
    try {
      const info = await Deno.stat(probe);
      if (!info.isDirectory && probe === dir) return `BACKUP_DIR is a file, not a folder: ${dir}`;
      if (!info.isDirectory) return `BACKUP_DIR ${dir} cannot be created: ${probe} is not a folder`;
      break;
    } catch (err) {
      if (err instanceof Deno.errors.NotADirectory) {
        return `BACKUP_DIR ${dir} cannot be created: a part of ${probe} is not a folder`;
      }
      if (!(err instanceof Deno.errors.NotFound)) {
        return `BACKUP_DIR ${dir} cannot be used: ${probe} cannot be read (${(err as Error).name})`;
      }
      const parent = probe.replace(/[/\\][^/\\]*[/\\]?$/, "");
      if (parent === probe || parent === "") {
        probe = probe.startsWith("/") ? "/" : ".";
        continue;
      }
      probe = parent;
    }
  }
  const file = `${probe}/.lodge-write-check-${crypto.randomUUID()}`;
  try {
    await Deno.writeTextFile(file, "", { createNew: true });
    await Deno.remove(file);
    return null;
  } catch (err) {
    return `BACKUP_DIR ${dir} is not writable (${(err as Error).name})`;
  }
}

/** Safety backups (`lodge-safety-…`, taken by restore) always kept, however old. */
export const SAFETY_BACKUPS_KEPT = 5;

/**
 * Safety backups younger than this many days are never pruned, however many restores ran
 * (practice restores must not push out the safety backup of a real one).
 */
export const SAFETY_BACKUP_MIN_AGE_DAYS = 30;

/**
 * Chooses safety backups to delete: those older than {@link SAFETY_BACKUP_MIN_AGE_DAYS}
 * days that are not among the newest `keep`, never one in `protect` (the safety backup of a
 * restore that has not finished).
 *
 * @example
 * ```ts
 * selectSafetyBackupsToPrune(names, 5, new Set(), new Date());
 * ```
 */
export function selectSafetyBackupsToPrune(
  names: string[],
  keep = SAFETY_BACKUPS_KEPT,
  protect: Set<string> = new Set(),
  now: Date = new Date(),
): string[] {
  const cutoff = now.getTime() - SAFETY_BACKUP_MIN_AGE_DAYS * 86_400_000;
  const pattern = /^lodge-safety-(\d{4}-\d{2}-\d{2})T(\d{2})-(\d{2})-(\d{2})-(\d{3})Z\.ndjson\.gz$/;
  const takenAt = (n: string) => {
    const m = pattern.exec(n)!;
    return Date.parse(`${m[1]}T${m[2]}:${m[3]}:${m[4]}.${m[5]}Z`);
  };
  return names.filter((n) => pattern.test(n))
    .sort().reverse().slice(keep)
    .filter((n) => !protect.has(n) && takenAt(n) < cutoff);
}
