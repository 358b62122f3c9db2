/** Retention never deletes the last backup taken before an incident. */
import assert from "node:assert/strict";
import { runScheduledBackup } from "../../cron/backup.ts";
import { FolderDestination, selectBackupsToPrune } from "../../lib/backup_store.ts";
import { manifestPath } from "../../lib/backup_file.ts";
import { testConfig } from "../../lib/config.ts";
import { testApp } from "../helpers.ts";

const name = (iso: string) => `lodge-${iso.slice(0, 19).replaceAll(":", "-")}-000Z.ndjson.gz`;

Deno.test("a backup of a damaged store at 10:00 never prunes the good 03:00 backup of that day", () => {
  const good = name("2026-06-30T03:00:00");
  const damaged = name("2026-06-30T10:00:00");
  const yesterday = name("2026-06-29T03:00:00");
  const old = name("2026-06-01T03:00:00");
  const now = Date.parse("2026-06-30T10:05:00Z");
  const doomed = selectBackupsToPrune([old, yesterday, good, damaged], 1, 0, now);
  // Everything of the last 48 hours stays; only what is older and beyond retention goes.
  assert.deepEqual(doomed, [old]);
  // Two days later the 48-hour window has passed: the daily rule alone applies.
  assert.deepEqual(
    selectBackupsToPrune([old, yesterday, good, damaged], 1, 0, now + 3 * 86_400_000),
    [good, yesterday, old],
  );
});

Deno.test("deno task backup by hand prunes nothing unless --prune is given", async () => {
  const dir = await Deno.makeTempDir({ prefix: "lodge-test-" });
  const config = testConfig({
    backup: { ...testConfig().backup, dir, keepDaily: 1, keepMonthly: 0 },
  });
  const t = await testApp(config);
  try {
    const old = [name("2020-01-01T03:00:00"), name("2020-01-02T03:00:00")];
    for (const n of old) {
      await Deno.writeTextFile(`${dir}/${n}`, "x");
      await Deno.writeTextFile(manifestPath(`${dir}/${n}`), "{}");
    }
    const dest = new FolderDestination(dir);
    const byHand = await runScheduledBackup({ kv: t.kv, config, destination: dest, manual: true });
    assert.ok(byHand.ran);
    assert.deepEqual(byHand.ran && byHand.pruned, []);
    assert.equal((await dest.list()).length, 3);
    const withPrune = await runScheduledBackup({
      kv: t.kv,
      config,
      destination: dest,
      manual: true,
      prune: true,
    });
    assert.deepEqual(withPrune.ran && withPrune.pruned.sort(), old);
    assert.equal((await dest.list()).length, 2); // both of today's (within 48 hours)
  } finally {
    t.close();
    await Deno.remove(dir, { recursive: true });
  }
});
