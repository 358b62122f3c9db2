/**
 * A killed backup's snapshot (a full copy of the store) is removed under the exact
 * permissions of `deno task backup`, where Deno refuses to look at /proc.
 */
import assert from "node:assert/strict";
import { snapshotRoot } from "../../cron/backup.ts";

Deno.test("under deno task backup's permissions, a killed run's snapshot is removed once its heartbeat stops", async () => {
  const dir = await Deno.makeTempDir({ prefix: "lodge-test-" });
  try {
    const kvPath = `${dir}/lodge.kv`;
    const root = snapshotRoot(kvPath);
    // pid 1 exists; the folder's heartbeat stopped two minutes ago: the run was killed.
    const dead = `${root}/1-killed`;
    await Deno.mkdir(dead, { recursive: true });
    await Deno.writeTextFile(`${dead}/snapshot.kv`, "copy with password hashes");
    const past = new Date(Date.now() - 120_000);
    await Deno.utime(dead, past, past);
    // Another process's snapshot with a fresh heartbeat is in use and kept.
    const live = `${root}/1-running`;
    await Deno.mkdir(live);
    const script = `${dir}/clean.ts`;
    await Deno.writeTextFile(
      script,
      `import { cleanStaleBackupFiles } from ${
        JSON.stringify(new URL("../../cron/backup.ts", import.meta.url).href)
      };\nconsole.log(JSON.stringify(await cleanStaleBackupFiles(${
        JSON.stringify(kvPath)
      }, undefined)));`,
    );
    const tasks = JSON.parse(
      await Deno.readTextFile(new URL("../../deno.json", import.meta.url)),
    ).tasks;
    const flags = (tasks.backup as string).split(" ").filter((f) => f.startsWith("--allow-"));
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--config",
        new URL("../../deno.json", import.meta.url).pathname,
        ...flags,
        script,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    assert.deepEqual(JSON.parse(new TextDecoder().decode(out.stdout)), [dead]);
    await assert.rejects(Deno.stat(dead), Deno.errors.NotFound);
    await Deno.stat(live);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
