/**
 * Workspaces and memberships. A membership is a pair written in one atomic:
 * ["memberships", ws, user] (the workspace's member list) and
 * ["user_workspaces", user, ws] (the user's switcher list, with slug and name).
 *
 * @example
 * ```ts
 * const view = await getWorkspaceForMember(kv, slug, userId);
 * if (!view) return notFound();
 * ```
 * @module
 */
import * as keys from "./keys.ts";
import { HintCache } from "./db.ts";
import { newId, randomToken } from "../lib/crypto.ts";

/** Roles, most powerful first. */
export type Role = "owner" | "admin" | "member";

/** A workspace record. */
export interface Workspace {
  id: string;
  slug: string;
  name: string;
  ownerId: string;
  /** Created automatically at sign-up. */
  personal: boolean;
  createdAt: number;
}

/** ["memberships", ws, user] value. */
export interface Membership {
  workspaceId: string;
  userId: string;
  role: Role;
  joinedAt: number;
}

/** ["user_workspaces", user, ws] value: what the switcher shows. */
export interface UserWorkspace {
  workspaceId: string;
  slug: string;
  name: string;
  role: Role;
}

/** Most characters in a workspace name. */
export const WORKSPACE_NAME_MAX = 80;

/** `slug` cut to `max` characters, at a hyphen when that keeps at least half (no "…-lo"). */
function cutSlug(slug: string, max: number): string {
  if (slug.length <= max) return slug;
  const cut = slug.slice(0, max);
  const hyphen = cut.lastIndexOf("-");
  const atWord = slug[max] === "-" ? cut : hyphen >= max / 2 ? cut.slice(0, hyphen) : cut;
  return atWord.replace(/-+$/, "");
}

/** Turns a name into a URL slug: lowercase ASCII letters, digits and single hyphens. */
export function slugify(name: string): string {
  const s = name.normalize("NFKD").replace(/[\u0300-\u036f]/g, "").toLowerCase()
    .replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "");
  return cutSlug(s, 40) || "workspace";
}

/** A slug with a short random suffix, for when the plain one is taken. */
export function suffixedSlug(base: string): string {
  return `${cutSlug(base, 33)}-${
    randomToken(4).toLowerCase().replace(/[^a-z0-9]/g, "x").slice(0, 6)
  }`;
}

/** Builds a new workspace record. */
export function newWorkspace(
  input: { name: string; slug: string; ownerId: string; personal: boolean },
  now = Date.now(),
): Workspace {
  return { id: newId(now), createdAt: now, ...input };
}

/** Adds the writes that create `ws` with its owner's membership pair to an atomic. */
export function addWorkspace(
  op: Deno.AtomicOperation,
  ws: Workspace,
  now = Date.now(),
): Deno.AtomicOperation {
  const m: Membership = { workspaceId: ws.id, userId: ws.ownerId, role: "owner", joinedAt: now };
  const uw: UserWorkspace = { workspaceId: ws.id, slug: ws.slug, name: ws.name, role: "owner" };
  op
    .check({ key: keys.workspace(ws.id), versionstamp: null })
    .check({ key: keys.workspaceBySlug(ws.slug), versionstamp: null })
    .set(keys.workspace(ws.id), ws)
    .set(keys.workspaceBySlug(ws.slug), ws.id)
    .set(keys.membership(ws.id, ws.ownerId), m)
    .set(keys.userWorkspace(ws.ownerId, ws.id), uw);
  return bumpUserWorkspaces(op, ws.ownerId, now);
}

/**
 * Adds the version bump that every atomic adding or removing a ["user_workspaces", user, ws]
 * entry must carry, so cached id lists ({@link userWorkspaceHints}) notice the change (a new
 * versionstamp). A blind set needs no read and never conflicts, so it adds no contention.
 *
 * @example
 * ```ts
 * await bumpUserWorkspaces(kv.atomic().delete(keys.userWorkspace(userId, wsId)), userId).commit();
 * ```
 */
export function bumpUserWorkspaces(
  op: Deno.AtomicOperation,
  userId: string,
  now = Date.now(),
): Deno.AtomicOperation {
  return op.set(keys.userWorkspacesVersion(userId), now);
}

/**
 * A user's workspace ids as last listed, with the versionstamp of their
 * {@link keys.userWorkspacesVersion} counter at that moment.
 */
export interface UserWorkspacesHint {
  versionstamp: string | null;
  ids: string[];
}

/**
 * User id → workspace ids hints, so a page can read the user's switcher entries by key in
 * its one getMany. Valid only while the counter's versionstamp read alongside matches.
 */
export const userWorkspaceHints: HintCache<UserWorkspacesHint> = new HintCache();

/**
 * Lists the user's workspaces and records the hint for later pages. The counter is read
 * before the list, so a change racing the list leaves a hint that the next read rejects.
 *
 * @example
 * ```ts
 * const workspaces = await listUserWorkspacesAndHint(kv, userId);
 * userWorkspaceHints.get(userId); // { versionstamp, ids } for the next page's getMany
 * ```
 */
export async function listUserWorkspacesAndHint(
  kv: Deno.Kv,
  userId: string,
): Promise<UserWorkspace[]> {
  const version = await kv.get(keys.userWorkspacesVersion(userId));
  const list = await listUserWorkspaces(kv, userId);
  if (list.length <= USER_WORKSPACES_BY_KEY_MAX) {
    userWorkspaceHints.set(userId, {
      versionstamp: version.versionstamp,
      ids: list.map((w) => w.workspaceId),
    });
  } else {
    userWorkspaceHints.delete(userId);
  }
  return list;
}

/** Most workspaces a page reads by key (beyond this it lists them). */
export const USER_WORKSPACES_BY_KEY_MAX = 20;

/** Reads a workspace by id. */
export async function getWorkspace(kv: Deno.Kv, id: string): Promise<Workspace | null> {
  return (await kv.get<Workspace>(keys.workspace(id))).value;
}

/** Reads a workspace by slug. */
export async function getWorkspaceBySlug(kv: Deno.Kv, slug: string): Promise<Workspace | null> {
  const id = (await kv.get<string>(keys.workspaceBySlug(slug))).value;
  return id ? await getWorkspace(kv, id) : null;
}

/** Lists the workspaces a user belongs to (switcher order: by id, i.e. creation). */
export async function listUserWorkspaces(
  kv: Deno.Kv,
  userId: string,
  limit = 100,
): Promise<UserWorkspace[]> {
  const out: UserWorkspace[] = [];
  for await (
    const e of kv.list<UserWorkspace>({ prefix: keys.userWorkspaces(userId) }, { limit })
  ) {
    out.push(e.value);
  }
  return out;
}

/** Lists a workspace's members. */
export async function listMembers(kv: Deno.Kv, workspaceId: string): Promise<Membership[]> {
  const out: Membership[] = [];
  for await (const e of kv.list<Membership>({ prefix: keys.workspaceMembers(workspaceId) })) {
    out.push(e.value);
  }
  return out;
}

/** Slug → workspace id hints. A hint only picks keys to prefetch; KV stays the authority. */
export const slugHints: HintCache<string> = new HintCache<string>();

/** A workspace with the viewer's membership. */
export interface MemberView {
  workspace: Workspace;
  membership: Membership;
}

/** Reads a workspace by slug for a member; null when absent or the user is not a member. */
export async function getWorkspaceForMember(
  kv: Deno.Kv,
  slug: string,
  userId: string,
): Promise<MemberView | null> {
  const id = (await kv.get<string>(keys.workspaceBySlug(slug))).value;
  if (!id) return null;
  slugHints.set(slug, id);
  const [ws, m] = await kv.getMany<[Workspace, Membership]>([
    keys.workspace(id),
    keys.membership(id, userId),
  ]);
  if (!ws.value || !m.value) return null;
  return { workspace: ws.value, membership: m.value };
}
