/**
 * Sentry cron check-ins for scheduled jobs, tolerant of Sentry being off. Sentry itself is
 * set up by lib/observability.ts (SENTRY_DSN); this module only finds the client that
 * `Sentry.init` registered on the SDK's global carrier, so it needs no import of the SDK
 * and does nothing at all when Sentry is off.
 *
 * @example
 * ```ts
 * const id = sentryCheckIn({ monitorSlug: "lodge-backup", status: "in_progress" }, "0 3 * * *");
 * // ... run the job ...
 * sentryCheckIn({ monitorSlug: "lodge-backup", status: "ok", checkInId: id, duration: 12.5 }, "0 3 * * *");
 * ```
 * @module
 */

/** A check-in as Sentry's `captureCheckIn` takes it. */
export interface CheckIn {
  monitorSlug: string;
  status: "in_progress" | "ok" | "error";
  checkInId?: string;
  /** Seconds. */
  duration?: number;
}

interface SentryClientLike {
  captureCheckIn?: (checkIn: CheckIn, monitorConfig?: unknown) => string;
}

interface ScopeLike {
  getClient?: () => SentryClientLike | undefined;
}

/** The Sentry client registered by `Sentry.init`, if any. */
function sentryClient(): SentryClientLike | undefined {
  const carrier = (globalThis as { __SENTRY__?: Record<string, unknown> }).__SENTRY__;
  if (!carrier) return undefined;
  const version = carrier.version as string | undefined;
  const hub = (version ? carrier[version] : carrier) as Record<string, ScopeLike> | undefined;
  return hub?.defaultCurrentScope?.getClient?.() ?? hub?.defaultIsolationScope?.getClient?.() ??
    hub?.globalScope?.getClient?.();
}

/**
 * Sends a cron check-in when Sentry is on; returns the check-in id (undefined when off).
 * Never throws: monitoring must not break the job it watches.
 */
export function sentryCheckIn(checkIn: CheckIn, schedule: string): string | undefined {
  try {
    const client = sentryClient();
    if (!client?.captureCheckIn) return undefined;
    return client.captureCheckIn(checkIn, {
      schedule: { type: "crontab", value: schedule },
      timezone: "Etc/UTC",
      checkinMargin: 30,
      maxRuntime: 120,
    });
  } catch {
    return undefined;
  }
}
