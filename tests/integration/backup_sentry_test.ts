import assert from "node:assert/strict";
import * as Sentry from "@sentry/deno";
import { runScheduledBackup } from "../../cron/backup.ts";
import { testConfig } from "../../lib/config.ts";
import { sentryCheckIn } from "../../lib/sentry_checkin.ts";

Deno.test("the backup job sends Sentry cron check-ins when Sentry is on", async () => {
  const envelopes: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    envelopes.push(await req.text());
    return new Response("{}");
  });
  const dir = await Deno.makeTempDir({ prefix: "lodge-sentry-" });
  const kv = await Deno.openKv(":memory:");
  try {
    // Off: nothing is sent and nothing breaks.
    assert.equal(sentryCheckIn({ monitorSlug: "x", status: "ok" }, "0 3 * * *"), undefined);
    Sentry.init({ dsn: `http://key@127.0.0.1:${(server.addr as Deno.NetAddr).port}/1` });
    await kv.set(["a"], 1);
    const config = testConfig({ backup: { ...testConfig().backup, dir, cron: "15 2 * * *" } });
    assert.ok((await runScheduledBackup({ kv, config })).ran);
    await Sentry.flush(2000);
    const checkIns = envelopes.map((e) => e.split("\n"))
      .filter((lines) => lines[1]?.includes('"check_in"')).map((lines) => JSON.parse(lines[2]));
    assert.deepEqual(checkIns.map((c) => c.status), ["in_progress", "ok"]);
    assert.equal(checkIns[0].monitor_slug, "lodge-backup");
    assert.equal(checkIns[1].check_in_id, checkIns[0].check_in_id);
    assert.deepEqual(checkIns[0].monitor_config.schedule, { type: "crontab", value: "15 2 * * *" });
    assert.ok(checkIns[1].duration >= 0);
  } finally {
    await Sentry.close(1000);
    kv.close();
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});
