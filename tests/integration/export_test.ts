import assert from "node:assert/strict";
import { testApp } from "../helpers.ts";
import * as keys from "../../kv/keys.ts";
import type { Role } from "../../kv/workspaces.ts";
import { createBackup } from "../../cron/backup.ts";
import { FolderDestination } from "../../lib/backup_store.ts";
import { readWorkspaceSource, restoreWorkspace } from "../../cron/restore_workspace.ts";
import { restoreMain } from "../../cron/restore.ts";
import { encodeEntry } from "../../lib/backup_codec.ts";
import { checkInvariants } from "../../kv/invariants.ts";
import { listAuditEvents } from "../../kv/audit.ts";

async function userIdOf(kv: Deno.Kv, email: string): Promise<string> {
  for await (const e of kv.list<{ id: string; email: string }>({ prefix: ["users"] })) {
    if (e.value.email === email) return e.value.id;
  }
  throw new Error("no such user");
}

async function addMember(kv: Deno.Kv, slug: string, userId: string, role: Role) {
  const wsId = (await kv.get<string>(keys.workspaceBySlug(slug))).value!;
  const name = (await kv.get<{ name: string }>(keys.workspace(wsId))).value!.name;
  await kv.atomic()
    .set(keys.membership(wsId, userId), { workspaceId: wsId, userId, role, joinedAt: 1 })
    .set(keys.userWorkspace(userId, wsId), { workspaceId: wsId, slug, name, role })
    .commit();
  return wsId;
}

/** Every entry of a store as lines, for before/after comparisons. */
async function dump(kv: Deno.Kv, skip: (key: Deno.KvKey) => boolean = () => false) {
  const out: string[] = [];
  for await (const e of kv.list({ prefix: [] })) {
    if (!skip(e.key) && e.key[0] !== "health_probe") out.push(encodeEntry(e.key, e.value));
  }
  return out;
}

Deno.test("owners and admins download the workspace export; members get 403, others 404", async () => {
  const owner = await testApp();
  const kv = owner.kv;
  const member = await testApp({}, kv);
  const stranger = await testApp({}, kv);
  try {
    const { location } = await owner.signup("owner@example.com", "Olive Owner");
    const slug = location.split("/").at(-1)!;
    const { email } = await member.signup("member@example.com", "Max Member");
    await stranger.signup();
    const wsId = await addMember(kv, slug, await userIdOf(kv, email), "member");

    const res = await owner.request(`/w/${slug}/export`);
    assert.equal(res.status, 200);
    assert.match(
      res.headers.get("content-disposition")!,
      new RegExp(`^attachment; filename="lodge-${slug}-\\d{4}-\\d{2}-\\d{2}\\.json"$`),
    );
    assert.match(res.headers.get("content-type")!, /application\/json/);
    assert.equal(res.headers.get("cache-control"), "no-store");
    const text = await res.text();
    const doc = JSON.parse(text);
    assert.equal(doc.format, "lodge-workspace-export");
    assert.equal(doc.workspace.id, wsId);
    assert.deepEqual(
      doc.members.map((m: { email: string; role: string }) => [m.email, m.role]).sort(),
      [["member@example.com", "member"], ["owner@example.com", "owner"]],
    );
    assert.deepEqual(doc.invitations, []);
    assert.deepEqual(doc.auditLog.map((e: { type: string }) => e.type), ["workspace.created"]);
    // No secrets: no password hash, no session or token hashes.
    assert.doesNotMatch(text, /argon2|passwordHash|tokenHash|\$argon/i);
    for await (const s of kv.list({ prefix: ["sessions"] })) {
      assert.ok(!text.includes(String(s.key[1])), "a session token hash leaked");
    }
    // The export itself is audited.
    const events = await Array.fromAsync(kv.list({ prefix: keys.workspaceAudit(wsId) }));
    assert.deepEqual(events.map((e) => (e.value as { type: string }).type), [
      "workspace.created",
      "workspace.exported",
    ]);

    assert.equal((await member.request(`/w/${slug}/export`)).status, 403);
    await addMember(kv, slug, await userIdOf(kv, email), "admin");
    assert.equal((await member.request(`/w/${slug}/export`)).status, 200);
    assert.equal((await stranger.request(`/w/${slug}/export`)).status, 404);
    assert.equal((await stranger.request(`/w/no-such-workspace/export`)).status, 404);
    const anonymous = await testApp({}, kv);
    const signedOut = await anonymous.request(`/w/${slug}/export`);
    assert.equal(signedOut.status, 303);
    assert.match(signedOut.headers.get("location")!, /^\/login/);
  } finally {
    kv.close();
  }
});

Deno.test("one workspace restores from an export or a full backup without touching the rest", async () => {
  const dir = await Deno.makeTempDir({ prefix: "lodge-ws-" });
  const owner = await testApp();
  const kv = owner.kv;
  const other = await testApp({}, kv);
  try {
    const { location } = await owner.signup("o@example.com", "Ona");
    const slug = location.split("/").at(-1)!;
    const { email } = await other.signup("p@example.com", "Pat");
    const patId = await userIdOf(kv, email);
    const wsId = await addMember(kv, slug, patId, "admin");
    const exportPath = `${dir}/export.json`;
    await Deno.writeTextFile(exportPath, await (await owner.request(`/w/${slug}/export`)).text());
    const backup = await createBackup({
      kv,
      kvPath: undefined,
      destination: new FolderDestination(dir),
      appVersion: "test",
    });
    const inScope = (k: Deno.KvKey) =>
      (k[0] === "memberships" && k[1] === wsId) || (k[0] === "user_workspaces" && k[2] === wsId) ||
      (k[0] === "workspaces" && k[1] === wsId) || (k[0] === "audit" && k[1] === wsId) ||
      k[0] === "workspaces_by_slug" && k[1] === slug;
    const wanted = await dump(kv, (k) => !inScope(k));
    // Switcher-list versions move on every restore that touches a member's switcher half.
    const elsewhere = (k: Deno.KvKey) => inScope(k) || k[0] === "user_workspaces_version";

    for (const source of ["export", "backup"] as const) {
      // Damage the workspace: a member removed (both halves), renamed, an extra audit event.
      await kv.atomic().delete(keys.membership(wsId, patId)).delete(keys.userWorkspace(patId, wsId))
        .set(keys.auditEvent(wsId, "ZZZ"), { id: "ZZZ" })
        .set(keys.workspace(wsId), {
          ...(await kv.get<object>(keys.workspace(wsId))).value,
          name: "X",
        })
        .commit();
      // Elsewhere, life goes on: this must survive the restore.
      await kv.set(["users", patId], {
        ...(await kv.get<object>(keys.user(patId))).value,
        name: "Pat 2",
      });
      const untouched = await dump(kv, elsewhere);
      const versionBefore = (await kv.get(keys.userWorkspacesVersion(patId))).versionstamp;

      const path = source === "export" ? exportPath : backup.location;
      const auditBefore = await listAuditEvents(kv, wsId);
      const dry = await restoreWorkspace(kv, await readWorkspaceSource(path, slug), {
        dryRun: true,
      });
      // The workspace and both membership halves; audit events are only ever added.
      assert.equal(dry.sets, 3, dry.summary);
      assert.equal(dry.deletes, 0, dry.summary);
      assert.deepEqual(await listAuditEvents(kv, wsId), auditBefore, "a dry run records nothing");
      const code = await restoreMain([path, "--workspace", slug, "--yes"], {
        APP_ENV: "test",
        DENO_KV_PATH: `${dir}/unused.kv`,
        BACKUP_DIR: `${dir}/safety`,
      });
      assert.equal(code, 0); // (that run targeted another, empty store: the slug is free there)
      const done = await restoreWorkspace(kv, await readWorkspaceSource(path, slug));
      assert.equal(done.sets + done.deletes, 3, done.summary);
      const restored = await dump(kv, (k) => !inScope(k));
      assert.notEqual(
        (await kv.get(keys.userWorkspacesVersion(patId))).versionstamp,
        versionBefore,
        "the restored member's switcher list version moved",
      );
      // Everything but the audit log is as it was; the audit log kept every event (the extra
      // one and the export's own "exported" event, newer than the export) and gained one.
      const notAudit = (l: string) => !l.startsWith('[["audit"');
      assert.deepEqual(restored.filter(notAudit), wanted.filter(notAudit));
      const auditAfter = await listAuditEvents(kv, wsId);
      const beforeIds = new Set(auditBefore.map((e) => e.id));
      assert.deepEqual(auditAfter.filter((e) => beforeIds.has(e.id)), auditBefore);
      const added = auditAfter.filter((e) => !beforeIds.has(e.id));
      assert.equal(added.length, 1);
      const event = added[0];
      assert.equal(event.type, "workspace.restored");
      assert.deepEqual(event.data, { from: source, written: 3, deleted: 0, skippedMembers: 0 });
      assert.deepEqual(await dump(kv, elsewhere), untouched);
      assert.ok((await checkInvariants(kv)).ok);
    }
    await assert.rejects(readWorkspaceSource(exportPath, "someone-else"), /not of workspace/);
  } finally {
    kv.close();
    await Deno.remove(dir, { recursive: true });
  }
});
