/**
 * Users, the unique email index, and sign-up (user + personal workspace + session in one
 * atomic).
 *
 * @example
 * ```ts
 * const r = await createAccount(kv, policy, { email, emailKey, name, passwordHash, userAgent, ip });
 * if (!r.ok) console.log(r.error); // "email_taken"
 * ```
 * @module
 */
import * as keys from "./keys.ts";
import { ConflictError } from "./db.ts";
import { newId } from "../lib/crypto.ts";
import { addSession, type NewSession, newSession, type SessionPolicy } from "./sessions.ts";
import {
  addRevocationEvent,
  addSessionRevocation,
  noteRevocation,
  revokeAllSessions,
} from "./sessions.ts";
import { addAuditEvent } from "./audit.ts";
import { shortenText } from "../lib/text.ts";
import {
  addWorkspace,
  newWorkspace,
  slugify,
  suffixedSlug,
  type Workspace,
  WORKSPACE_NAME_MAX,
} from "./workspaces.ts";

/** A user record. */
export interface User {
  id: string;
  /** As typed at sign-up (trimmed, NFC); where mail goes. */
  email: string;
  /** Lookup key: {@link import("../lib/email.ts").emailKey}. */
  emailKey: string;
  name: string;
  /** argon2id PHC string; null for accounts that sign in only by OAuth. */
  passwordHash: string | null;
  createdAt: number;
  emailVerifiedAt: number | null;
  /** Where sign-in lands. */
  defaultWorkspaceId: string;
}

/** Input for {@link createAccount}. */
export interface NewAccount {
  email: string;
  emailKey: string;
  name: string;
  passwordHash: string;
  userAgent: string;
  ip: string;
  /** SHA-256 of the device token the browser is trusted with (kept on the first session). */
  deviceHash?: string;
  /** Extra writes that must commit with the account (e.g. a verification token and its mail). */
  addToAtomic?: (op: Deno.AtomicOperation, user: User) => void;
}

/** Result of {@link createAccount}. */
export type CreateAccountResult =
  | { ok: true; user: User; workspace: Workspace; session: NewSession }
  | { ok: false; error: "email_taken" };

const PERSONAL_SUFFIX = "'s workspace";

/**
 * The personal workspace's display name for a user: "Ada Lovelace's workspace", the name
 * shortened (whole characters and emoji, preferably whole words, then "…") to fit
 * {@link WORKSPACE_NAME_MAX} characters.
 */
export function personalWorkspaceName(name: string, email: string): string {
  const who = name || email.slice(0, email.lastIndexOf("@"));
  const room = WORKSPACE_NAME_MAX - PERSONAL_SUFFIX.length;
  return `${shortenText(who, room)}${PERSONAL_SUFFIX}`;
}

/**
 * Creates a user, their personal workspace (owner membership pair) and a first session,
 * all in one atomic guarded by the email index: of N concurrent sign-ups with one
 * address exactly one succeeds.
 */
export async function createAccount(
  kv: Deno.Kv,
  policy: SessionPolicy,
  input: NewAccount,
  now = Date.now(),
): Promise<CreateAccountResult> {
  const base = slugify(input.name || input.email.slice(0, input.email.lastIndexOf("@")));
  for (let attempt = 0; attempt < 8; attempt++) {
    const userId = newId(now);
    const slug = attempt === 0 ? base : suffixedSlug(base);
    const workspace = newWorkspace({
      name: personalWorkspaceName(input.name, input.email),
      slug,
      ownerId: userId,
      personal: true,
    }, now);
    const user: User = {
      id: userId,
      email: input.email,
      emailKey: input.emailKey,
      name: input.name,
      passwordHash: input.passwordHash,
      createdAt: now,
      emailVerifiedAt: null,
      defaultWorkspaceId: workspace.id,
    };
    const session = newSession(policy, {
      userId,
      userAgent: input.userAgent,
      ip: input.ip,
      deviceHash: input.deviceHash,
    }, now);
    const op = kv.atomic()
      .check({ key: keys.userByEmail(input.emailKey), versionstamp: null })
      .check({ key: keys.user(userId), versionstamp: null })
      .set(keys.user(userId), user)
      .set(keys.userByEmail(input.emailKey), userId);
    addWorkspace(op, workspace, now);
    addAuditEvent(op, {
      workspaceId: workspace.id,
      type: "workspace.created",
      actorId: userId,
      data: { slug, personal: true },
    }, now);
    addSession(op, policy, session, now);
    input.addToAtomic?.(op, user);
    if ((await op.commit()).ok) return { ok: true, user, workspace, session };
    // Find out which check failed: the address (final) or the slug (try another).
    if ((await kv.get(keys.userByEmail(input.emailKey))).value) {
      return { ok: false, error: "email_taken" };
    }
  }
  throw new ConflictError("workspace slugs");
}

/** Reads a user by id. */
export async function getUser(kv: Deno.Kv, id: string): Promise<User | null> {
  return (await kv.get<User>(keys.user(id))).value;
}

/** Reads a user by email lookup key. */
export async function getUserByEmailKey(kv: Deno.Kv, emailKey: string): Promise<User | null> {
  const id = (await kv.get<string>(keys.userByEmail(emailKey))).value;
  return id ? await getUser(kv, id) : null;
}

/** Outcome of {@link changePassword}. */
export type ChangePasswordResult =
  | { ok: true; revoked: number }
  | { ok: false; error: "no_user" | "password_changed_meanwhile" };

/** Sessions ended inside the password atomic (3 mutations each); more are ended right after. */
const PASSWORD_ATOMIC_SESSIONS = 300;

/**
 * Replaces a user's password hash and ends every other session (reason `password_changed`)
 * in one atomic, checked on the user record: if the hash is no longer `currentHash` (another
 * change won), nothing is written. The session `keepSessionId` (the one making the change)
 * stays signed in.
 *
 * @example
 * ```ts
 * const r = await changePassword(kv, user.id, { currentHash: user.passwordHash!, newHash, keepSessionId });
 * ```
 */
export async function changePassword(
  kv: Deno.Kv,
  userId: string,
  change: {
    currentHash: string;
    newHash: string;
    keepSessionId: string;
    /** Extra writes committed with the change (e.g. the "password changed" notice mail). */
    addToAtomic?: (op: Deno.AtomicOperation, user: User) => void;
  },
  now = Date.now(),
): Promise<ChangePasswordResult> {
  for (let attempt = 0; attempt < 10; attempt++) {
    const entry = await kv.get<User>(keys.user(userId));
    if (!entry.value) return { ok: false, error: "no_user" };
    if (entry.value.passwordHash !== change.currentHash) {
      return { ok: false, error: "password_changed_meanwhile" };
    }
    const others: { sessionId: string; tokenHash: string; entry: Deno.KvEntry<string> }[] = [];
    let more = false;
    for await (const e of kv.list<string>({ prefix: keys.userSessions(userId) })) {
      const sessionId = e.key[2] as string;
      if (sessionId === change.keepSessionId) continue;
      if (others.length >= PASSWORD_ATOMIC_SESSIONS) {
        more = true;
        break;
      }
      others.push({ sessionId, tokenHash: e.value, entry: e });
    }
    const op = kv.atomic()
      .check(entry)
      .set(keys.user(userId), { ...entry.value, passwordHash: change.newHash });
    change.addToAtomic?.(op, entry.value);
    for (const o of others) {
      addSessionRevocation(op, userId, o.sessionId, o.tokenHash, "password_changed", now);
    }
    if (others.length) {
      addRevocationEvent(op, userId, others.map((o) => o.sessionId), "password_changed", now);
    }
    if (!(await op.commit()).ok) continue;
    let revoked = others.length;
    if (revoked) noteRevocation(userId, "password_changed", revoked, "sessions revoked");
    if (more) {
      revoked += await revokeAllSessions(kv, userId, change.keepSessionId, "password_changed");
    }
    return { ok: true, revoked };
  }
  throw new ConflictError("the account");
}
