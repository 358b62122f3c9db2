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

/** ["rate_limits", bucket, subject, windowStart] → Deno.KvU64 counter. Written by kv/rate_limits.ts. */
export const rateLimit = (bucket: string, subject: string, windowStart: number) =>
  ["rate_limits", bucket, subject, windowStart] as const;

/** ["health_probe"] → number. Written by GET /health to prove KV answers. */
export const healthProbe = () => ["health_probe"] as const;

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
  "user_workspaces_version",
] as const;
