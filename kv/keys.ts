/**
 * Every Deno KV key shape in Lodge. No other file spells a key.
 *
 * Each function names one prefix: what it holds, its value type and who writes it.
 * Top-level prefixes are listed in {@link PREFIXES} so backups and drills can count them.
 *
 * @example
 * ```ts
 * const entry = await kv.get<User>(keys.user(userId));
 * ```
 * @module
 */

/** ["users", userId] → User. Written by kv/users.ts. */
export const user = (userId: string) => ["users", userId] as const;

/** ["users_by_email", emailKey] → userId (string). Unique index; written with the user. */
export const userByEmail = (emailKey: string) => ["users_by_email", emailKey] as const;

/** ["sessions", tokenHash] → Session. Keyed by SHA-256 (hex) of the cookie token; kv/sessions.ts. */
export const session = (tokenHash: string) => ["sessions", tokenHash] as const;

/** ["user_sessions", userId, sessionId] → tokenHash (string). Lists and revokes a user's sessions. */
export const userSession = (userId: string, sessionId: string) =>
  ["user_sessions", userId, sessionId] as const;
/** Prefix of {@link userSession} for one user. */
export const userSessions = (userId: string) => ["user_sessions", userId] as const;

/** ["workspaces", workspaceId] → Workspace. Written by kv/workspaces.ts. */
export const workspace = (workspaceId: string) => ["workspaces", workspaceId] as const;

/** ["workspaces_by_slug", slug] → workspaceId (string). Unique index; written with the workspace. */
export const workspaceBySlug = (slug: string) => ["workspaces_by_slug", slug] as const;

/** ["memberships", workspaceId, userId] → Membership. One half of the membership pair. */
export const membership = (workspaceId: string, userId: string) =>
  ["memberships", workspaceId, userId] as const;
/** Prefix of {@link membership} for one workspace (its members). */
export const workspaceMembers = (workspaceId: string) => ["memberships", workspaceId] as const;

/**
 * ["user_workspaces", userId, workspaceId] → UserWorkspace (role, slug and name, denormalized for
 * the header switcher). The other half of the membership pair; always written in the same atomic.
 */
export const userWorkspace = (userId: string, workspaceId: string) =>
  ["user_workspaces", userId, workspaceId] as const;
/** Prefix of {@link userWorkspace} for one user. */
export const userWorkspaces = (userId: string) => ["user_workspaces", userId] as const;

/**
 * ["user_workspaces_version", userId] → number (ms time of the last change), written in the same
 * atomic as every write that adds or removes a {@link userWorkspace} entry (kv/workspaces.ts
 * `bumpUserWorkspaces`). Only its versionstamp matters: it tells a page whether its cached list
 * of the user's workspace ids still holds, so it can read the entries by key in one getMany.
 */
export const userWorkspacesVersion = (userId: string) =>
  ["user_workspaces_version", userId] as const;

/**
 * ["rate_limits", bucket, subject, windowStart] → `[used, inFlightStartTimes]` (a bare number from
 * earlier versions) for one window; read during it and the next (sliding window). Written by
 * kv/rate_limits.ts.
 */
export const rateLimit = (bucket: string, subject: string, windowStart: number) =>
  ["rate_limits", bucket, subject, windowStart] as const;

/** ["health_probe"] → number. Written by GET /health to prove KV answers. */
export const healthProbe = () => ["health_probe"] as const;

// --- Access tokens, revocations, live events, cron leases (issue 3) ---

/** ["signing_keys", kid] → SigningKey (JWK pair + active/publish times). Written by lib/tokens.ts. */
export const signingKey = (kid: string) => ["signing_keys", kid] as const;
/** Prefix of {@link signingKey}: every key still signing or still published in the JWKS. */
export const signingKeys = () => ["signing_keys"] as const;

/** ["signing_key_current"] → kid (string) of the key that signs new tokens; lib/tokens.ts. */
export const signingKeyCurrent = () => ["signing_key_current"] as const;

/**
 * ["session_revocations", tokenHash] → SessionRevocation (reason, when). Written by kv/sessions.ts
 * in the same atomic that deletes the session, so the token endpoint and the banner can say why.
 */
export const sessionRevocation = (tokenHash: string) => ["session_revocations", tokenHash] as const;

/** ["user_events", userId, eventId] → UserEvent, short-lived log replayed on Last-Event-ID; kv/events.ts. */
export const userEvent = (userId: string, eventId: string) =>
  ["user_events", userId, eventId] as const;
/** Prefix of {@link userEvent} for one user. */
export const userEvents = (userId: string) => ["user_events", userId] as const;

/** ["user_events_head", userId] → eventId (string) of the newest event; watched by event streams. */
export const userEventsHead = (userId: string) => ["user_events_head", userId] as const;

/** ["cron_leases", job] → Lease (owner, until, finishedAt): one instance runs a cron job; kv/leases.ts. */
export const cronLease = (job: string) => ["cron_leases", job] as const;
// --- Email (issue 4) ---

/** ["reset_tokens", tokenHash] → ResetToken (kv/email_tokens.ts). SHA-256 of the link's token. */
export const resetToken = (tokenHash: string) => ["reset_tokens", tokenHash] as const;

/** ["user_reset_tokens", userId, tokenHash] → expiresAt (number). A user's outstanding resets. */
export const userResetToken = (userId: string, tokenHash: string) =>
  ["user_reset_tokens", userId, tokenHash] as const;
/** Prefix of {@link userResetToken} for one user. */
export const userResetTokens = (userId: string) => ["user_reset_tokens", userId] as const;

/** ["verify_tokens", tokenHash] → VerifyToken (kv/email_tokens.ts): confirm an address. */
export const verifyToken = (tokenHash: string) => ["verify_tokens", tokenHash] as const;

/** ["mail_outbox", messageId] → OutboxMail. Development outbox (kv/mail.ts), shown at /dev/mail. */
export const mailOutbox = (messageId: string) => ["mail_outbox", messageId] as const;
/** Prefix of {@link mailOutbox}. */
export const mailOutboxAll = () => ["mail_outbox"] as const;

/** ["mail_status", messageId] → MailStatus: attempts, sent/failed (idempotent sends; kv/mail.ts). */
export const mailStatus = (messageId: string) => ["mail_status", messageId] as const;

/** ["mail_failed", messageId] → FailedMail: a mail given up on (no body, no token; kv/mail.ts). */
export const mailFailed = (messageId: string) => ["mail_failed", messageId] as const;

/** ["mail_undelivered", messageId] → the queued Job, set by KV when every redelivery failed. */
export const mailUndelivered = (messageId: string) => ["mail_undelivered", messageId] as const;
/** Prefix of {@link mailUndelivered}. */
export const mailUndeliveredAll = () => ["mail_undelivered"] as const;

/** ["mail_counters", name] → Deno.KvU64 (sent, failed, reset_known, reset_unknown; kv/mail.ts). */
export const mailCounter = (name: string) => ["mail_counters", name] as const;

// --- Backups, audit log, invitations (issue 5) ---

/** ["backup", "status"] → BackupStatus (last success/failure). Written by cron/backup.ts. */
export const backupStatus = () => ["backup", "status"] as const;

/** ["backup", "restore_in_progress"] → RestoreMarker: a restore into this store started and has
 * not finished; names its one safety backup (cron/restore_safety.ts). Bookkeeping: never backed up. */
export const restoreInProgress = () => ["backup", "restore_in_progress"] as const;

/** ["backup", "app_alive", instanceId] → AppAlive ({at, pid, host}): a serving app instance,
 * renewed every 10 s (kv/app_alive.ts); restore refuses a live store. Bookkeeping. */
export const appAlive = (instanceId: string) => ["backup", "app_alive", instanceId] as const;
/** Prefix of {@link appAlive}. */
export const appAliveAll = () => ["backup", "app_alive"] as const;

/** ["audit", workspaceId, eventId] → AuditEvent. One key per event, ids sort by time; kv/audit.ts. */
export const auditEvent = (workspaceId: string, eventId: string) =>
  ["audit", workspaceId, eventId] as const;
/** Prefix of {@link auditEvent} for one workspace (its audit log). */
export const workspaceAudit = (workspaceId: string) => ["audit", workspaceId] as const;

/** ["invitations", workspaceId, invitationId] → invitation. Reserved: exported by /w/:slug/export. */
export const invitation = (workspaceId: string, invitationId: string) =>
  ["invitations", workspaceId, invitationId] as const;
/** Prefix of {@link invitation} for one workspace. */
export const workspaceInvitations = (workspaceId: string) => ["invitations", workspaceId] as const;

/**
 * ["trusted_devices", deviceHash] → TrustedDevice (userId, expiresAt). A device token (SHA-256 hex)
 * the server minted for one account when a browser signed in, signed up or reset its password:
 * that browser's sign-in attempts for that account are limited on their own, so strangers'
 * failures cannot lock it out. Written by kv/devices.ts with {@link userTrustedDevice}.
 */
export const trustedDevice = (deviceHash: string) => ["trusted_devices", deviceHash] as const;

/** ["user_trusted_devices", userId, deviceHash] → expiresAt (ms). Lists a user's trusted devices. */
export const userTrustedDevice = (userId: string, deviceHash: string) =>
  ["user_trusted_devices", userId, deviceHash] as const;
/** Prefix of {@link userTrustedDevice} for one user. */
export const userTrustedDevices = (userId: string) => ["user_trusted_devices", userId] as const;

/** Every top-level prefix, for backups, drills and invariant checks. */
export const PREFIXES = [
  "users",
  "users_by_email",
  "sessions",
  "user_sessions",
  "workspaces",
  "workspaces_by_slug",
  "memberships",
  "user_workspaces",
  "rate_limits",
  "health_probe",
  "signing_keys",
  "signing_key_current",
  "session_revocations",
  "user_events",
  "user_events_head",
  "cron_leases",
  "reset_tokens",
  "user_reset_tokens",
  "verify_tokens",
  "mail_outbox",
  "mail_status",
  "mail_failed",
  "mail_undelivered",
  "mail_counters",
  "backup",
  "audit",
  "invitations",
  "user_workspaces_version",
  "trusted_devices",
  "user_trusted_devices",
] as const;
