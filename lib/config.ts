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
import { cronScheduleProblem } from "./cron_schedule.ts";

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
  /** Sign-up attempts allowed per window per client address. */
  signupRateLimitMax: number;
  /** Length of the sign-up window, seconds. */
  signupRateLimitWindow: number;
  /** Scheduling priority of the password-hashing threads (see lib/password.ts). */
  passwordHashPriority: "idle" | "low" | "normal";
  /** argon2id worker threads (PASSWORD_HASH_THREADS; default: one per core but one). */
  passwordHashThreads: number;
  /** Largest request body accepted, bytes. */
  bodyLimit: number;
  /** Version string reported by /health. */
  version: string;
  // --- Access tokens, live channel, status banner, Sentry (issue 3; docs/sessions.md) ---
  /** Access token (JWT) lifetime, seconds (ACCESS_TOKEN_TTL). */
  accessTokenTtl: number;
  /** The banner refreshes the access token this long before it expires, seconds. */
  refreshBuffer: number;
  /** How long a signing key signs before a new one takes over, seconds. */
  signingKeyRotation: number;
  /** Seconds between heartbeats on `GET /api/events`. */
  eventsHeartbeat: number;
  /** The banner warns this long before the idle timeout signs the person out, seconds. */
  idleWarning: number;
  /** Rollout switch: the status banner island (and its token refresh) on signed-in pages. */
  statusBanner: boolean;
  /** Sentry DSN; undefined turns Sentry off. */
  sentryDsn: string | undefined;
  // --- Email (issue 4; docs/email.md) ---
  /** Resend API key; when unset, mail goes to the development outbox in KV (`/dev/mail`). */
  resendApiKey: string | undefined;
  /** Resend API base URL override (RESEND_BASE_URL; tests point it at a local fake). */
  resendBaseUrl: string | undefined;
  /** Sender, e.g. `Lodge <no-reply@example.com>`; required with RESEND_API_KEY. */
  emailFrom: string;
  /** Whether an unverified account may open workspaces other than its personal one. */
  emailVerificationRequired: boolean;
  /** Password reset link lifetime, seconds. */
  resetTokenTtl: number;
  /** Email verification link lifetime, seconds. */
  verifyTokenTtl: number;
  /** Reset/verification mails per target address per hour. */
  rateLimitEmailPerHour: number;
  /** Requests per client address per hour on the mail-sending forms. */
  rateLimitIpPerHour: number;
  // --- Backups (issue 5; docs/backups.md) ---
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

/**
 * One argon2id thread per core but one, at least one: the event loop keeps a core to itself
 * (argon2id's 19 MiB working set on every core slows every request 2–3×, even at idle priority).
 */
export function defaultHashThreads(cores = navigator.hardwareConcurrency || 1): number {
  return Math.max(1, cores - 1);
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
  const port = int(env, "PORT", 8000, 1, 65535);
  const hostname = str(env, "HOST") ?? "127.0.0.1";
  if (!/^(?:[A-Za-z0-9.-]{1,253}|\[?[0-9A-Fa-f:.]+\]?)$/.test(hostname)) {
    throw new ConfigError(
      "HOST",
      `must be a host name or IP address (got ${JSON.stringify(hostname)})`,
    );
  }
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
  // Lodge answers at the root of its origin: links, cookies (Path=/) and redirects assume it.
  if (
    appUrl.pathname !== "/" || appUrl.search || appUrl.hash || appUrl.username || appUrl.password
  ) {
    throw new ConfigError(
      "APP_URL",
      `must be an origin only, like https://lodge.example.com (Lodge is served at the root; got ${
        JSON.stringify(rawUrl)
      })`,
    );
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
    signupRateLimitMax: int(env, "SIGNUP_RATE_LIMIT_MAX", 20, 1, 1_000_000),
    signupRateLimitWindow: int(env, "SIGNUP_RATE_LIMIT_WINDOW", 3600, 1, 30 * DAY),
    trustProxy: bool(env, "TRUST_PROXY", false),
    passwordHashPriority: oneOf(env, "PASSWORD_HASH_PRIORITY", "idle", ["idle", "low", "normal"]),
    passwordHashThreads: int(env, "PASSWORD_HASH_THREADS", defaultHashThreads(), 1, 256),
    bodyLimit: int(env, "BODY_LIMIT", 64 * 1024, 1024, 100 * 1024 * 1024),
    version: str(env, "APP_VERSION") ?? "0.1.0",
    ...sessionTokenConfig(env, sessionIdleTimeout),
    ...emailConfig(env),
    backup: backupConfig(env),
  };
}

type TokenConfig = Pick<
  Config,
  | "accessTokenTtl"
  | "refreshBuffer"
  | "signingKeyRotation"
  | "eventsHeartbeat"
  | "idleWarning"
  | "statusBanner"
  | "sentryDsn"
>;

/** Access tokens, live channel, banner and Sentry settings (issue 3). */
function sessionTokenConfig(env: Env, sessionIdleTimeout: number): TokenConfig {
  const accessTokenTtl = int(env, "ACCESS_TOKEN_TTL", 900, 2, DAY);
  const refreshBuffer = int(
    env,
    "REFRESH_BUFFER",
    Math.min(120, Math.floor(accessTokenTtl / 2)),
    1,
    accessTokenTtl - 1,
  );
  const idleWarning = int(
    env,
    "IDLE_WARNING",
    Math.max(1, Math.min(300, Math.floor(sessionIdleTimeout / 2))),
    1,
    Math.max(1, sessionIdleTimeout - 1),
  );
  const sentryDsn = str(env, "SENTRY_DSN");
  if (sentryDsn !== undefined) {
    let ok = false;
    try {
      const u = new URL(sentryDsn);
      ok = (u.protocol === "https:" || u.protocol === "http:") && u.username !== "";
    } catch { /* reported below */ }
    if (!ok) throw new ConfigError("SENTRY_DSN", "must be a Sentry DSN like https://key@host/1");
  }
  return {
    accessTokenTtl,
    refreshBuffer,
    signingKeyRotation: int(env, "SIGNING_KEY_ROTATION", 7 * DAY, 60, 365 * DAY),
    eventsHeartbeat: int(env, "EVENTS_HEARTBEAT", 25, 1, 3600),
    idleWarning,
    statusBanner: bool(env, "STATUS_BANNER", true),
    sentryDsn,
  };
}

// A display name and an address in angle brackets, or a bare address.
const FROM =
  /^(?:[^<>\r\n]{1,100} <[^\s<>@]+@[^\s<>@]+\.[^\s<>@]+>|[^\s<>@]+@[^\s<>@]+\.[^\s<>@]+)$/;

/** The email part of {@link Config} (issue 4). */
function emailConfig(env: Env) {
  const resendApiKey = str(env, "RESEND_API_KEY");
  const resendBaseUrl = str(env, "RESEND_BASE_URL");
  if (resendBaseUrl !== undefined) {
    let u: URL | undefined;
    try {
      u = new URL(resendBaseUrl);
    } catch { /* reported below */ }
    if (!u || (u.protocol !== "http:" && u.protocol !== "https:")) {
      throw new ConfigError(
        "RESEND_BASE_URL",
        `must be an http(s) URL (got ${JSON.stringify(resendBaseUrl)})`,
      );
    }
  }
  const from = str(env, "EMAIL_FROM");
  if (resendApiKey && from === undefined) {
    throw new ConfigError(
      "EMAIL_FROM",
      "is required when RESEND_API_KEY is set (a verified sender)",
    );
  }
  if (from !== undefined && !FROM.test(from)) {
    throw new ConfigError(
      "EMAIL_FROM",
      `must be an address or "Name <address>" (got ${JSON.stringify(from)})`,
    );
  }
  return {
    resendApiKey,
    resendBaseUrl: resendBaseUrl?.replace(/\/+$/, ""),
    emailFrom: from ?? "Lodge <no-reply@lodge.invalid>",
    emailVerificationRequired: bool(env, "EMAIL_VERIFICATION_REQUIRED", false),
    resetTokenTtl: int(env, "RESET_TOKEN_TTL", 3600, 60, DAY),
    verifyTokenTtl: int(env, "VERIFY_TOKEN_TTL", DAY, 60, 30 * DAY),
    rateLimitEmailPerHour: int(env, "RATE_LIMIT_EMAIL_PER_HOUR", 3, 1, 1_000_000),
    rateLimitIpPerHour: int(env, "RATE_LIMIT_IP_PER_HOUR", 20, 1, 1_000_000),
  };
}

/**
 * Origins whose unsafe requests CSRF protection accepts: APP_URL's, and in development
 * with a localhost APP_URL also the loopback addresses people open by hand.
 */
export function allowedOrigins(config: Config): string[] {
  const origins = [config.appUrl.origin];
  if (config.appEnv !== "production" && config.appUrl.hostname === "localhost") {
    const port = config.appUrl.port ? `:${config.appUrl.port}` : "";
    origins.push(
      `${config.appUrl.protocol}//127.0.0.1${port}`,
      `${config.appUrl.protocol}//[::1]${port}`,
    );
  }
  return origins;
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
  const cronProblem = cronScheduleProblem(cron);
  if (cronProblem) {
    throw new ConfigError("BACKUP_CRON", `${cronProblem} (got ${JSON.stringify(cron)})`);
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
