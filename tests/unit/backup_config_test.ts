/** BACKUP_CRON ranges and an unwritable BACKUP_DIR are caught at start-up, in one line. */
import assert from "node:assert/strict";
import { ConfigError, loadConfig } from "../../lib/config.ts";
import { cronScheduleProblem } from "../../lib/cron_schedule.ts";
import { folderWriteProblem } from "../../lib/backup_store.ts";
import { warnIfBackupFolderUnusable } from "../../cron/backup.ts";
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
    const res = await t.request("/health");
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(body.status, "degraded");
    assert.match(body.backup.folderProblem, /not a folder/);
    assert.equal(await folderWriteProblem(`${tmp}/new/deeper`), null);
  } finally {
    t.close();
    await Deno.remove(tmp, { recursive: true });
  }
});
