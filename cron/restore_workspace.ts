/**
 * Single-workspace restore (`deno task restore --workspace <slug> <backup or export>`):
 * makes one workspace's keys in the target equal to the source — the workspace record,
 * its slug index, both halves of every membership, its audit log and invitations —
 * without touching anything else. The source is a full backup (verified first) or a
 * customer export (kv/export.ts).
 *
 * Memberships of users who no longer exist in the target are skipped (and reported):
 * restoring them would leave half-pairs pointing at no one. The audit log is append-only:
 * events the source lacks (newer than it) are kept, and the restore itself is recorded as a
 * "workspace.restored" event.
 *
 * @example
 * ```ts
 * const source = await readWorkspaceSource("data/backups/lodge-….ndjson.gz", "acme");
 * const result = await restoreWorkspace(kv, source);
 * console.log(result.summary);
 * ```
 * @module
 */
import * as keys from "../kv/keys.ts";
import { bumpUserWorkspaces } from "../kv/workspaces.ts";
import { encodeKey, encodeValue, fromTagged } from "../lib/backup_codec.ts";
import { BackupRejectedError, readBackupLines, verifyBackup } from "../lib/backup_file.ts";
import type { Membership, UserWorkspace, Workspace } from "../kv/workspaces.ts";
import { EXPORT_FORMAT, EXPORT_VERSION, type WorkspaceExport } from "../kv/export.ts";
import { BatchWriter } from "./restore.ts";
import { addAuditEvent } from "../kv/audit.ts";

/** One workspace's desired entries. */
export interface WorkspaceSource {
  slug: string;
  workspace: Workspace;
  entries: { key: Deno.KvKey; value: unknown }[];
  /** "backup" or "export". */
  kind: "backup" | "export";
}

/**
 * True when `key` belongs to workspace `id` (the keys a workspace restore owns).
 *
 * @example
 * ```ts
 * inWorkspaceScope(["memberships", "ws1", "u1"], "ws1"); // true
 * ```
 */
export function inWorkspaceScope(key: Deno.KvKey, id: string): boolean {
  switch (key[0]) {
    case "workspaces":
      return key[1] === id && key.length === 2;
    case "memberships":
    case "audit":
    case "invitations":
      return key[1] === id;
    case "user_workspaces":
      return key[2] === id && key.length === 3;
    default:
      return false;
  }
}

async function isGzip(path: string): Promise<boolean> {
  const f = await Deno.open(path, { read: true });
  try {
    const head = new Uint8Array(2);
    const n = await f.read(head);
    return n === 2 && head[0] === 0x1f && head[1] === 0x8b;
  } finally {
    f.close();
  }
}

/**
 * Reads one workspace out of a full backup (verified first) or a customer export.
 *
 * @example
 * ```ts
 * const source = await readWorkspaceSource("export.json", "acme");
 * ```
 */
export async function readWorkspaceSource(path: string, slug: string): Promise<WorkspaceSource> {
  let exists = true;
  await Deno.stat(path).catch(() => exists = false);
  if (!exists) throw new BackupRejectedError(`File not found: ${path}`);
  return await isGzip(path) ? await fromBackup(path, slug) : await fromExport(path, slug);
}

async function fromBackup(path: string, slug: string): Promise<WorkspaceSource> {
  await verifyBackup(path);
  const slugKey = encodeKey(keys.workspaceBySlug(slug));
  let id: string | null = null;
  for await (const lines of readBackupLines(path)) {
    for (const line of lines) {
      if (!line.startsWith(`[${slugKey},`)) continue;
      id = fromTagged(JSON.parse(line)[1]) as string;
    }
  }
  if (!id) throw new BackupRejectedError(`The backup has no workspace with slug "${slug}".`);
  const entries: WorkspaceSource["entries"] = [];
  let workspace: Workspace | null = null;
  for await (const lines of readBackupLines(path)) {
    for (const line of lines) {
      const [k, v] = JSON.parse(line);
      const key = fromTagged(k) as Deno.KvKey;
      if (!inWorkspaceScope(key, id)) continue;
      const value = fromTagged(v);
      if (key[0] === "workspaces") workspace = value as Workspace;
      entries.push({ key, value });
    }
  }
  if (!workspace) {
    throw new BackupRejectedError(`The backup's slug index for "${slug}" is dangling.`);
  }
  entries.push({ key: keys.workspaceBySlug(slug), value: id });
  return { slug, workspace, entries, kind: "backup" };
}

async function fromExport(path: string, slug: string): Promise<WorkspaceSource> {
  let doc: WorkspaceExport;
  try {
    doc = JSON.parse(await Deno.readTextFile(path));
  } catch {
    throw new BackupRejectedError("Neither a backup (gzip) nor a workspace export (JSON).");
  }
  if (doc?.format !== EXPORT_FORMAT || typeof doc.version !== "number") {
    throw new BackupRejectedError("The JSON file is not a Lodge workspace export.");
  }
  if (doc.version > EXPORT_VERSION) {
    throw new BackupRejectedError(
      `The export uses version ${doc.version}, newer than this Lodge reads.`,
    );
  }
  const ws = doc.workspace;
  if (!ws || typeof ws.id !== "string" || ws.slug !== slug || !Array.isArray(doc.members)) {
    throw new BackupRejectedError(`The export is not of workspace "${slug}".`);
  }
  const entries: WorkspaceSource["entries"] = [
    { key: keys.workspace(ws.id), value: ws },
    { key: keys.workspaceBySlug(ws.slug), value: ws.id },
  ];
  for (const m of doc.members) {
    const membership: Membership = {
      workspaceId: ws.id,
      userId: m.userId,
      role: m.role,
      joinedAt: m.joinedAt,
    };
    const uw: UserWorkspace = { workspaceId: ws.id, slug: ws.slug, name: ws.name, role: m.role };
    entries.push({ key: keys.membership(ws.id, m.userId), value: membership });
    entries.push({ key: keys.userWorkspace(m.userId, ws.id), value: uw });
  }
  for (const e of doc.auditLog ?? []) entries.push({ key: keys.auditEvent(ws.id, e.id), value: e });
  for (const inv of doc.invitations ?? []) {
    if (typeof inv.id === "string") {
      entries.push({ key: keys.invitation(ws.id, inv.id), value: inv });
    }
  }
  return { slug, workspace: ws, entries, kind: "export" };
}

/** Result of {@link restoreWorkspace}. */
export interface WorkspaceRestoreResult {
  sets: number;
  deletes: number;
  /** User ids whose memberships were skipped because the user is gone from the target. */
  skippedUsers: string[];
  summary: string;
}

/**
 * Makes the workspace's keys in `target` equal to `source` (or, with dryRun, reports).
 *
 * @example
 * ```ts
 * const r = await restoreWorkspace(kv, source, { dryRun: true });
 * console.log(r.summary);
 * ```
 */
export async function restoreWorkspace(
  target: Deno.Kv,
  source: WorkspaceSource,
  options: { dryRun?: boolean } = {},
): Promise<WorkspaceRestoreResult> {
  const id = source.workspace.id;
  const slugOwner = await target.get<string>(keys.workspaceBySlug(source.slug));
  if (slugOwner.value && slugOwner.value !== id) {
    throw new BackupRejectedError(
      `The slug "${source.slug}" now belongs to another workspace in the target; rename it first.`,
    );
  }
  // What the target holds in scope now.
  const current = new Map<string, { key: Deno.KvKey; value: unknown }>();
  const keep = (e: { key: Deno.KvKey; value: unknown }) => current.set(encodeKey(e.key), e);
  const ws = await target.get<Workspace>(keys.workspace(id));
  if (ws.value) {
    keep(ws);
    const oldSlug = await target.get<string>(keys.workspaceBySlug(ws.value.slug));
    if (oldSlug.value === id) keep(oldSlug);
  }
  if (slugOwner.value === id) keep(slugOwner);
  for (
    const prefix of [
      keys.workspaceMembers(id),
      keys.workspaceAudit(id),
      keys.workspaceInvitations(id),
    ]
  ) {
    for await (const e of target.list({ prefix })) keep(e);
  }
  // Users on either side: their switcher halves, and whether they still exist.
  const userIds = new Set<string>();
  for (const e of current.values()) if (e.key[0] === "memberships") userIds.add(String(e.key[2]));
  for (const e of source.entries) if (e.key[0] === "memberships") userIds.add(String(e.key[2]));
  const ids = [...userIds];
  const existing = new Set<string>();
  for (let i = 0; i < ids.length; i += 5) {
    const slice = ids.slice(i, i + 5);
    const got = await target.getMany(
      slice.flatMap((u) => [keys.userWorkspace(u, id), keys.user(u)]),
    );
    slice.forEach((u, j) => {
      if (got[2 * j].value !== null) keep(got[2 * j]);
      if (got[2 * j + 1].value !== null) existing.add(u);
    });
  }
  const skipped = new Set<string>();
  const desired = new Map<string, { key: Deno.KvKey; value: unknown }>();
  for (const e of source.entries) {
    const userId = e.key[0] === "memberships"
      ? e.key[2]
      : e.key[0] === "user_workspaces"
      ? e.key[1]
      : null;
    if (typeof userId === "string" && !existing.has(userId)) {
      skipped.add(userId);
      continue;
    }
    desired.set(encodeKey(e.key), e);
  }
  const sets: { key: Deno.KvKey; value: unknown; chars: number }[] = [];
  for (const [k, e] of desired) {
    const cur = current.get(k);
    const encoded = encodeValue(e.value);
    if (!cur || encodeValue(cur.value) !== encoded) {
      sets.push({ ...e, chars: encoded.length + k.length });
    }
  }
  // Audit events are never deleted: those newer than the source stay.
  const deletes = [...current].filter(([k, e]) => !desired.has(k) && e.key[0] !== "audit")
    .map(([, e]) => e.key);
  const summary = `Workspace "${source.slug}" from the ${source.kind}: ${sets.length} to write, ` +
    `${deletes.length} to delete` +
    (skipped.size ? `; ${skipped.size} member(s) skipped (user no longer exists)` : "");
  if (!options.dryRun && sets.length + deletes.length > 0) {
    const writer = new BatchWriter(target);
    for (const k of deletes) await writer.delete(k);
    for (const s of sets) await writer.set(s.key, s.value, s.chars);
    await writer.flush();
    // A changed switcher half must bump its user's list version (kv/workspaces.ts), or
    // running instances keep showing the cached list.
    const touched = new Set<string>();
    for (const k of [...deletes, ...sets.map((x) => x.key)]) {
      if (k[0] === "user_workspaces") touched.add(String(k[1]));
    }
    for (const userId of touched) {
      await bumpUserWorkspaces(target.atomic(), userId).commit();
    }
  }
  if (!options.dryRun) {
    const op = target.atomic();
    addAuditEvent(op, {
      workspaceId: id,
      type: "workspace.restored",
      actorId: null,
      data: {
        from: source.kind,
        written: sets.length,
        deleted: deletes.length,
        skippedMembers: skipped.size,
      },
    });
    await op.commit();
  }
  return { sets: sets.length, deletes: deletes.length, skippedUsers: [...skipped], summary };
}
