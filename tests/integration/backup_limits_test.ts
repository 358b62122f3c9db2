/**
 * Restore, workspace restore and drill on realistic stores: keys of 70–110 bytes (rate
 * limits, token hashes) must be batched by KV's key-size and mutation-size limits, not
 * only by the 1000-mutation count.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createBackup } from "../../cron/backup.ts";
import { BatchWriter, restoreBackup } from "../../cron/restore.ts";
import { runDrill } from "../../cron/drill.ts";
import { FolderDestination } from "../../lib/backup_store.ts";
import { encodedKeySize } from "../../lib/kv_limits.ts";

const hex = (i: number) => createHash("sha256").update(String(i)).digest("hex");

/** ~2,400 entries with ~90–108-byte keys, as a store of real sign-ups has. */
async function fillLongKeys(kv: Deno.Kv): Promise<number> {
  let n = 0;
  for (let i = 0; i < 800; i++) {
    const op = kv.atomic()
      .set(["rate_limits", "mail-address", hex(i), 1_764_000_000_000 + i], { count: 1 })
      .set(["verify_tokens", hex(i + 1e6)], { userId: `u${i}`, expiresAt: 1 })
      .set(["sessions_by_user", `user-${hex(i).slice(0, 26)}`, hex(i + 2e6)], "x".repeat(40));
    await op.commit();
    n += 3;
  }
  return n;
}

Deno.test("encodedKeySize matches KV's own key-size limit", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const keys: Deno.KvKey[] = [];
    let total = 0;
    for (let i = 0;; i++) {
      const k = ["rate_limits", "mail-address", hex(i), i];
      if (total + encodedKeySize(k) > 81_920) break;
      total += encodedKeySize(k);
      keys.push(k);
    }
    const fits = kv.atomic();
    for (const k of keys) fits.set(k, 1);
    assert.equal((await fits.commit()).ok, true);
    const over = kv.atomic();
    for (const k of keys) over.set(k, 2);
    over.set(["rate_limits", "mail-address", hex(-1), -1], 2);
    await assert.rejects(() => over.commit(), /Total key size too large/);
  } finally {
    kv.close();
  }
});

Deno.test("a store with long keys restores and drills (batches respect the key-size limit)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "lodge-test-" });
  const src = await Deno.openKv(":memory:");
  const dst = await Deno.openKv(":memory:");
  try {
    const n = await fillLongKeys(src);
    const { location, manifest } = await createBackup({
      kv: src,
      kvPath: undefined,
      destination: new FolderDestination(dir),
      appVersion: "test",
    });
    assert.equal(manifest.entries, n);
    const report = await restoreBackup(dst, location);
    assert.equal(report.added, n);
    assert.ok(report.batches >= 4, `split by key bytes, not by count (${report.batches} batches)`);
    let restored = 0;
    for await (const _ of dst.list({ prefix: [] })) restored++;
    assert.equal(restored, n);
    // Deleting them all (restore of an empty backup) is batched the same way.
    const writer = new BatchWriter(dst);
    for await (const e of dst.list({ prefix: [] })) await writer.delete(e.key);
    await writer.flush();
    const drill = await runDrill({ kv: src, kvPath: undefined, appVersion: "test", log: () => {} });
    assert.equal(drill.ok, true);
    assert.equal(drill.entries, n);
  } finally {
    src.close();
    dst.close();
    await Deno.remove(dir, { recursive: true });
  }
});
