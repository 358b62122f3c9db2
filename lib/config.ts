/**
 * Configuration: read and validated once, from the environment, in this module only.
 *
 * A bad value stops start-up with one message naming the variable (see {@link ConfigError}).
 * Durations are whole seconds.
 *
 * @example
 * ```ts
 * const config = loadConfig(Deno.env.toObject());
 * console.log(config.port, config.appUrl.origin);
 * ```
 * @module
 */

/** The environments Lodge knows. */
export type AppEnv = "development" | "test" | "production";

/** Validated configuration. Every field has a documented default (README, "Configuration"). */
export interface Config {
  /** TCP port to listen on. */
  port: number;
  /** Address to bind. */
  hostname: string;
  /** Public URL of the app; its origin is the only one CSRF checks accept. */
  appUrl: URL;
  /** Deno KV path; `undefined` means the platform's default (Deno Deploy's hosted KV). */
  kvPath: string | undefined;
  appEnv: AppEnv;
  /** Whether cookies get `Secure` and the `__Host-` prefix (true when APP_URL is https). */
  secureCookies: boolean;
  /** Session idle timeout, seconds. */
  sessionIdleTimeout: number;
  /** Session absolute lifetime, seconds. */
  sessionAbsoluteLifetime: number;
  /** How often, at most, a session's last-seen time is written, seconds. */
  sessionTouchInterval: number;
  /** Failed sign-ins allowed per window, per account and per client address. */
  loginRateLimitMax: number;
  /** Length of the failed sign-in window, seconds. */
  loginRateLimitWindow: number;
  /** Trust `X-Forwarded-For` for the client address (only behind a proxy you run). */
  trustProxy: boolean;
  /** Largest request body accepted, bytes. */
  bodyLimit: number;
  /** Version string reported by /health. */
  version: string;
  /** Backups (issue 5): schedule, destination and retention. See {@link BackupConfig}. */
  backup: BackupConfig;
}

/** Raised for an invalid variable; `main.ts` prints the message and exits 1. */
export class ConfigError extends Error {
  constructor(readonly variable: string, message: string) {
    super(`Configuration error: ${variable} ${message}`);
    this.name = "ConfigError";
  }
}

type Env = Record<string, string | undefined>;

function str(env: Env, name: string): string | undefined {
  const v = env[name];
  if (v === undefined) return undefined;
  const t = v.trim();
  return t === "" ? undefined : t;
}

function int(env: Env, name: string, def: number, min: number, max: number): number {
  const raw = str(env, name);
  if (raw === undefined) return def;
  if (!/^\d+$/.test(raw)) {
    throw new ConfigError(name, `must be a whole number (got ${JSON.stringify(raw)})`);
  }
  const n = Number(raw);
  if (n < min || n > max) {
    throw new ConfigError(name, `must be between ${min} and ${max} (got ${n})`);
  }
  return n;
}

function bool(env: Env, name: string, def: boolean): boolean {
  const raw = str(env, name)?.toLowerCase();
  if (raw === undefined) return def;
  if (["1", "true", "yes", "on"].includes(raw)) return true;
  if (["0", "false", "no", "off"].includes(raw)) return false;
  throw new ConfigError(name, `must be true or false (got ${JSON.stringify(raw)})`);
}

function oneOf<T extends string>(env: Env, name: string, def: T, allowed: readonly T[]): T {
  const raw = str(env, name);
  if (raw === undefined) return def;
  if (!(allowed as readonly string[]).includes(raw)) {
    throw new ConfigError(
      name,
      `must be one of ${allowed.join(", ")} (got ${JSON.stringify(raw)})`,
    );
  }
  return raw as T;
}

const DAY = 86_400;

/** Reads and validates configuration from an environment map. Throws {@link ConfigError}. */
export function loadConfig(env: Env): Config {
  const appEnv = oneOf<AppEnv>(env, "APP_ENV", "development", [
    "development",
    "test",
    "production",
  ]);
  const port = int(env, "PORT", 8000, 0, 65535);
  const hostname = str(env, "HOST") ?? "127.0.0.1";
  const rawUrl = str(env, "APP_URL") ?? `http://localhost:${port}`;
  let appUrl: URL;
  try {
    appUrl = new URL(rawUrl);
  } catch {
    throw new ConfigError(
      "APP_URL",
      `must be an absolute http(s) URL (got ${JSON.stringify(rawUrl)})`,
    );
  }
  if (appUrl.protocol !== "http:" && appUrl.protocol !== "https:") {
    throw new ConfigError("APP_URL", `must use http or https (got ${appUrl.protocol})`);
  }
  if (appEnv === "production" && appUrl.protocol !== "https:") {
    throw new ConfigError("APP_URL", "must be https when APP_ENV=production");
  }
  const onDeploy = env.DENO_DEPLOYMENT_ID !== undefined;
  const kvPath = str(env, "DENO_KV_PATH") ?? (onDeploy ? undefined : "data/lodge.kv");

  const sessionIdleTimeout = int(env, "SESSION_IDLE_TIMEOUT", 7 * DAY, 1, 365 * DAY);
  const sessionAbsoluteLifetime = int(env, "SESSION_ABSOLUTE_LIFETIME", 30 * DAY, 1, 365 * DAY);
  if (sessionAbsoluteLifetime < sessionIdleTimeout) {
    throw new ConfigError(
      "SESSION_ABSOLUTE_LIFETIME",
      `must be at least SESSION_IDLE_TIMEOUT (${sessionIdleTimeout})`,
    );
  }
  const defaultTouch = Math.max(1, Math.min(3600, Math.floor(sessionIdleTimeout / 10)));
  const sessionTouchInterval = int(
    env,
    "SESSION_TOUCH_INTERVAL",
    defaultTouch,
    1,
    sessionIdleTimeout,
  );

  return {
    port,
    hostname,
    appUrl,
    kvPath,
    appEnv,
    secureCookies: appUrl.protocol === "https:",
    sessionIdleTimeout,
    sessionAbsoluteLifetime,
    sessionTouchInterval,
    loginRateLimitMax: int(env, "LOGIN_RATE_LIMIT_MAX", 10, 1, 1_000_000),
    loginRateLimitWindow: int(env, "LOGIN_RATE_LIMIT_WINDOW", 900, 1, 30 * DAY),
    trustProxy: bool(env, "TRUST_PROXY", false),
    bodyLimit: int(env, "BODY_LIMIT", 64 * 1024, 1024, 100 * 1024 * 1024),
    version: str(env, "APP_VERSION") ?? "0.1.0",
    backup: backupConfig(env),
  };
}

/** Configuration for tests: in-memory KV, fixed URL; override any field. */
export function testConfig(overrides: Partial<Config> = {}): Config {
  return { ...loadConfig({ APP_ENV: "test", DENO_KV_PATH: ":memory:" }), ...overrides };
}

/** Backup settings (BACKUP_*). */
export interface BackupConfig {
  /** Deno.cron schedule (UTC), BACKUP_CRON. */
  cron: string;
  /** Folder for backups when no bucket is set (and for restore's safety backups), BACKUP_DIR. */
  dir: string;
  /** Daily backups kept, BACKUP_KEEP_DAILY. */
  keepDaily: number;
  /** Monthly backups kept, BACKUP_KEEP_MONTHLY. */
  keepMonthly: number;
  /** S3-compatible bucket (all five BACKUP_S3_* set), or null for the folder. */
  s3: {
    endpoint: string;
    bucket: string;
    region: string;
    accessKeyId: string;
    secretAccessKey: string;
  } | null;
}

/** Reads BACKUP_* (issue 5). */
function backupConfig(env: Env): BackupConfig {
  const cron = str(env, "BACKUP_CRON") ?? "0 3 * * *";
  if (!/^\S+( \S+){4}$/.test(cron) || !/^[0-9*,/\- A-Za-z]+$/.test(cron)) {
    throw new ConfigError(
      "BACKUP_CRON",
      `must be a 5-field cron schedule (got ${JSON.stringify(cron)})`,
    );
  }
  const names = ["ENDPOINT", "BUCKET", "REGION", "ACCESS_KEY_ID", "SECRET_ACCESS_KEY"] as const;
  const s3vals = names.map((n) => str(env, `BACKUP_S3_${n}`));
  let s3: BackupConfig["s3"] = null;
  if (s3vals.some((v) => v !== undefined)) {
    const missing = names.filter((_, i) => s3vals[i] === undefined);
    if (missing.length) {
      throw new ConfigError(`BACKUP_S3_${missing[0]}`, "must be set when any BACKUP_S3_* is set");
    }
    const [endpoint, bucket, region, accessKeyId, secretAccessKey] = s3vals as string[];
    let url: URL | null = null;
    try {
      url = new URL(endpoint);
    } catch { /* below */ }
    if (!url || (url.protocol !== "https:" && url.protocol !== "http:")) {
      throw new ConfigError(
        "BACKUP_S3_ENDPOINT",
        `must be an http(s) URL (got ${JSON.stringify(endpoint)})`,
      );
    }
    s3 = { endpoint, bucket, region, accessKeyId, secretAccessKey };
  }
  return {
    cron,
    dir: str(env, "BACKUP_DIR") ?? "data/backups",
    keepDaily: int(env, "BACKUP_KEEP_DAILY", 30, 1, 3650),
    keepMonthly: int(env, "BACKUP_KEEP_MONTHLY", 12, 0, 1200),
    s3,
  };
}
