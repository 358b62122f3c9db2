/**
 * A worker that gzips, hashes and writes a backup file, so compression runs on another
 * core while the main thread reads and encodes KV entries (lib/backup_file.ts).
 *
 * Messages in: `{ open: path }`, then `{ chunk: string }` (copied: transferred buffers piled
 * up as external memory between collections) any number of times, then `{ end: true }`.
 * Messages out: `{ ack: true }` per chunk taken,
 * `{ done: { bytes, sha256 } }` at the end, or `{ error: message }`.
 *
 * @example
 * ```ts
 * const w = new Worker(new URL("./gzip_worker.ts", import.meta.url), { type: "module" });
 * w.postMessage({ open: "/tmp/x.ndjson.gz" });
 * ```
 * @module
 */
/// <reference lib="deno.worker" />
import { createHash } from "node:crypto";
import { once } from "node:events";
import { createGzip, type Gzip } from "node:zlib";

let file: Deno.FsFile | null = null;
let gz: Gzip | null = null;
let written: Promise<void> = Promise.resolve();
const hash = createHash("sha256");
let bytes = 0;
let chain: Promise<void> = Promise.resolve();
let failed = false;

type Message = { open: string } | { chunk: string } | { end: true };

async function handle(msg: Message): Promise<void> {
  if ("open" in msg) {
    const f = await Deno.open(msg.open, { write: true, createNew: true, mode: 0o600 });
    const z = createGzip();
    file = f;
    gz = z;
    written = (async () => {
      for await (const chunk of z as AsyncIterable<Uint8Array>) {
        hash.update(chunk);
        bytes += chunk.byteLength;
        let off = 0;
        while (off < chunk.byteLength) off += await f.write(chunk.subarray(off));
      }
    })();
    written.catch(() => {});
  } else if ("chunk" in msg) {
    if (!gz!.write(msg.chunk)) await Promise.race([once(gz!, "drain"), written]);
    self.postMessage({ ack: true });
  } else {
    gz!.end();
    await written;
    await file!.sync();
    file!.close();
    file = null;
    self.postMessage({ done: { bytes, sha256: hash.digest("hex") } });
  }
}

self.onmessage = (e: MessageEvent<Message>) => {
  chain = chain.then(async () => {
    if (failed) return;
    try {
      await handle(e.data);
    } catch (err) {
      failed = true;
      try {
        file?.close();
      } catch { /* closed */ }
      self.postMessage({ error: `${(err as Error)?.name}: ${(err as Error)?.message}` });
    }
  });
};
