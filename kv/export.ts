/**
 * The customer export of one workspace: one JSON document with the workspace, its
 * members, invitations and audit log — and no secrets (no password or token hashes).
 * `deno task restore --workspace <slug> <export.json>` can bring it back.
 *
 * @example
 * ```ts
 * const doc = await buildWorkspaceExport(kv, workspace);
 * return new Response(JSON.stringify(doc), { headers: { "content-type": "application/json" } });
 * ```
 * @module
 */
import * as keys from "./keys.ts";
import type { User } from "./users.ts";
import { listMembers, type Role, type Workspace } from "./workspaces.ts";
import { type AuditEvent, listAuditEvents } from "./audit.ts";

/** The export format name. */
export const EXPORT_FORMAT = "lodge-workspace-export";
/** The export format version. */
export const EXPORT_VERSION = 1;

/** One member in an export. */
export interface ExportedMember {
  userId: string;
  name: string;
  email: string;
  role: Role;
  joinedAt: number;
}

/** The export document. */
export interface WorkspaceExport {
  format: typeof EXPORT_FORMAT;
  version: number;
  exportedAt: string;
  workspace: Workspace;
  members: ExportedMember[];
  invitations: Record<string, unknown>[];
  auditLog: AuditEvent[];
}

const SECRET_FIELD = /hash|token|secret|password|code/i;

/**
 * Copies a JSON-like value without any field whose name suggests a secret, at any depth.
 *
 * @example
 * ```ts
 * withoutSecrets({ id: "1", tokenHash: "ab" }); // { id: "1" }
 * ```
 */
export function withoutSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutSecrets);
  if (value && typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (!SECRET_FIELD.test(k)) out[k] = withoutSecrets(v);
    }
    return out;
  }
  return value;
}

/**
 * Builds the export for a workspace (reads members, their users, invitations, audit log).
 *
 * @example
 * ```ts
 * const doc = await buildWorkspaceExport(kv, workspace);
 * ```
 */
export async function buildWorkspaceExport(
  kv: Deno.Kv,
  workspace: Workspace,
  now = Date.now(),
): Promise<WorkspaceExport> {
  const memberships = await listMembers(kv, workspace.id);
  const members: ExportedMember[] = [];
  for (let i = 0; i < memberships.length; i += 10) {
    const slice = memberships.slice(i, i + 10);
    const users = await kv.getMany<User[]>(slice.map((m) => keys.user(m.userId)));
    slice.forEach((m, j) => {
      const u = users[j].value;
      members.push({
        userId: m.userId,
        name: u?.name ?? "",
        email: u?.email ?? "",
        role: m.role,
        joinedAt: m.joinedAt,
      });
    });
  }
  const invitations: Record<string, unknown>[] = [];
  for await (const e of kv.list({ prefix: keys.workspaceInvitations(workspace.id) })) {
    invitations.push(withoutSecrets(e.value) as Record<string, unknown>);
  }
  return {
    format: EXPORT_FORMAT,
    version: EXPORT_VERSION,
    exportedAt: new Date(now).toISOString(),
    workspace: withoutSecrets(workspace) as Workspace,
    members,
    invitations,
    auditLog: (await listAuditEvents(kv, workspace.id)).map((e) => withoutSecrets(e) as AuditEvent),
  };
}
