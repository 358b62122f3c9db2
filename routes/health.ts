/**
 * `GET /health`: 200 `{"status":"ok","kv":"ok","version":…}` when KV answers a write and a
 * read within the deadline; 503 naming the failing part otherwise. `backup` reports the
 * last backup; status is "degraded" (still 200) when it is older than 26 hours, the
 * last attempt failed (backup.state "failing"), a restore was left half-done
 * ("restore_incomplete") or the last backup recorded broken invariants ("invariants_broken").
 * The reasons of failures (which can name folders or buckets) are shown only to requests
 * from the machine itself; other clients see that something fails, not the details.
 *
 * @example
 * ```sh
 * curl -s localhost:8000/health
 * ```
 * @module
 */
import { Hono } from "hono";
import { type AppEnv, fromThisMachine } from "../lib/http.ts";
import * as keys from "../kv/keys.ts";
import { mailHealth } from "../lib/mail/health.ts";
import { backupHealth, getBackupStatus, restoreIncompleteSince } from "../kv/backups.ts";
import { backupFolderProblem } from "../lib/backup_folder_health.ts";

/** What a client elsewhere reads instead of a failure's reason. */
export const REDACTED = "see /health on the server itself, or its log";

/** How long KV may take before /health reports it failing, ms. */
export const HEALTH_KV_DEADLINE_MS = 2000;

async function probeKv(kv: Deno.Kv): Promise<"ok" | string> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve("timeout"), HEALTH_KV_DEADLINE_MS);
  });
  const probe = (async () => {
    const now = Date.now();
    await kv.set(keys.healthProbe(), now, { expireIn: 3_600_000 });
    const read = await kv.get<number>(keys.healthProbe());
    return read.value === null ? "read failed" : "ok";
  })().catch((err) => `error: ${err?.name ?? "unknown"}`);
  try {
    return await Promise.race([probe, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Routes: /health. */
export function healthRoutes(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.get("/health", async (c) => {
    const kv = await probeKv(c.get("kv"));
    const ok = kv === "ok";
    const email = ok ? await mailHealth(c.get("kv"), c.get("config")) : undefined;
    // Backups (issue 5): "degraded" (still 200) when stale (> 26 h) or failing.
    const backup = {
      ...backupHealth(
        ok ? await getBackupStatus(c.get("kv")).catch(() => null) : null,
        Date.now(),
        ok ? await restoreIncompleteSince(c.get("kv")).catch(() => null) : null,
      ),
      folderProblem: await backupFolderProblem(c.get("config")),
    };
    // Reasons can name folders, hosts or buckets: only a request from this machine reads them.
    if (!fromThisMachine(c, c.get("config").trustProxy)) {
      if (backup.folderProblem) backup.folderProblem = REDACTED;
      if (backup.lastFailureReason) backup.lastFailureReason = REDACTED;
    }
    c.header("Cache-Control", "no-store");
    return c.json({
      status: ok
        ? ((backup.state !== "ok" && backup.state !== "pending") || backup.folderProblem
          ? "degraded"
          : "ok")
        : "unavailable",
      kv,
      backup,
      version: c.get("config").version,
      email,
      ...(ok ? {} : { failing: ["kv"] }),
    }, ok ? 200 : 503);
  });
  return app;
}
