/** BACKUP_CRON ranges and an unwritable BACKUP_DIR are caught at start-up, in one line. */
import assert from "node:assert/strict";
import { ConfigError, loadConfig } from "../../lib/config.ts";
import { cronScheduleProblem } from "../../lib/cron_schedule.ts";
import { folderWriteProblem } from "../../lib/backup_store.ts";
import { runScheduledBackup, warnIfBackupFolderUnusable } from "../../cron/backup.ts";
import { testConfig } from "../../lib/config.ts";
import { testApp } from "../helpers.ts";

Deno.test("BACKUP_CRON out of range is a ConfigError naming the variable", () => {
  for (const [cron, why] of [["61 * * * *", /minute 61/], ["0 25 * * *", /hour 25/]] as const) {
    assert.throws(
      () => loadConfig({ DENO_KV_PATH: ":memory:", BACKUP_CRON: cron }),
      (e) => e instanceof ConfigError && e.variable === "BACKUP_CRON" && why.test(e.message),
    );
  }
  for (const ok of ["0 3 * * *", "*/15 * * * *", "0 0 1,15 * 1-5", "0 3 * JAN-MAR MON"]) {
    assert.equal(cronScheduleProblem(ok), null, ok);
  }
  for (const bad of ["0 0 0 * *", "0 0 * 13 *", "0 0 * * 8", "5-2 * * * *", "*/0 * * * *"]) {
    assert.notEqual(cronScheduleProblem(bad), null, bad);
  }
});

Deno.test("BACKUP_CRON values Deno.cron refuses or panics on are one ConfigError line", () => {
  // Each of these passed the old check; Deno then threw "Invalid cron schedule" or panicked
  // (a day that never occurs) and took the app down.
  for (
    const [cron, why] of [
      ["0 3 31 2 *", /day of month 31 never occurs in month 2/],
      ["0 3 30 2 *", /never occurs/],
      ["0 3 30-31 FEB *", /never occurs/],
      ["0 3 31 4,6 *", /never occurs/],
      ["0 3 1-31/40 * *", /day of month step 40 must be 1-30/],
      ["0 3 1-31/31 * *", /step 31/],
      ["*/60 * * * *", /minute step 60 must be 1-59/],
      ["0 */24 * * *", /hour step 24/],
      ["0 3 * * 0/3", /day of week 0 is out of range 1-7 \(or SUN-SAT\)/],
      ["0 3 * * 0", /day of week 0/],
      ["0 3 * 0/5 *", /month 0/],
    ] as const
  ) {
    assert.throws(
      () => loadConfig({ DENO_KV_PATH: ":memory:", BACKUP_CRON: cron }),
      (e) =>
        e instanceof ConfigError && e.variable === "BACKUP_CRON" && why.test(e.message) &&
        !e.message.includes("\n"),
      cron,
    );
  }
  // Seen to run under Deno 2.9: still accepted.
  for (
    const ok of [
      "0 3 29 2 *",
      "0 3 31 2,3 *",
      "0 3 31 * *",
      "0 3 1-31/30 * *",
      "*/59 * * * *",
      "0 3 * * 7",
      "0 3 * * 1/3",
      "0 3 * * SUN-SAT",
      "5-10/6 * * * *",
      "0 3 5/3 * *",
    ]
  ) assert.equal(cronScheduleProblem(ok), null, ok);
});

Deno.test("main.ts exits 1 with one line for BACKUP_CRON 0 25 * * *", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "main.ts"],
    env: { BACKUP_CRON: "0 25 * * *", DENO_KV_PATH: ":memory:", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 1);
  const stderr = new TextDecoder().decode(out.stderr).trim();
  assert.match(stderr, /^Configuration error: BACKUP_CRON hour 25 is out of range 0-23/);
  assert.equal(stderr.split("\n").length, 1);
});

Deno.test("an unwritable BACKUP_DIR is a start-up warning and degrades /health", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "lodge-test-" });
  await Deno.writeTextFile(`${tmp}/file`, "not a folder");
  const dir = `${tmp}/file/backups`;
  const config = testConfig({ backup: { ...testConfig().backup, dir } });
  const t = await testApp(config);
  const warnings: string[] = [];
  try {
    assert.match(String(await folderWriteProblem(dir)), /BACKUP_DIR .* not a folder/);
    await warnIfBackupFolderUnusable(config, (l) => warnings.push(l));
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /BACKUP_DIR .*file\/backups.*backups will fail/);
    const res = await t.request("/health", { ip: "127.0.0.1" });
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(body.status, "degraded");
    assert.match(body.backup.folderProblem, /not a folder/);
    // From elsewhere: degraded, with the reason (a path on this machine) withheld.
    const remote = await (await t.request("/health", { ip: "203.0.113.5" })).json();
    assert.equal(remote.status, "degraded");
    assert.ok(remote.backup.folderProblem && !remote.backup.folderProblem.includes(tmp));
    assert.match(remote.backup.folderProblem, /on the server itself/);
    assert.equal(await folderWriteProblem(`${tmp}/new/deeper`), null);
    // BACKUP_DIR itself a file: said in those words, by the check and by a backup.
    assert.equal(
      await folderWriteProblem(`${tmp}/file`),
      `BACKUP_DIR is a file, not a folder: ${tmp}/file`,
    );
    const fileDir = testConfig({ backup: { ...testConfig().backup, dir: `${tmp}/file` } });
    await assert.rejects(
      runScheduledBackup({ kv: t.kv, config: fileDir, manual: true }),
      /^NotADirectory: BACKUP_DIR is a file, not a folder: /,
    );
  } finally {
    t.close();
    await Deno.remove(tmp, { recursive: true });
  }
});
