import assert from "node:assert/strict";
import { openKv } from "../../kv/db.ts";
import * as keys from "../../kv/keys.ts";
import { createAccount, getUserByEmailKey, personalWorkspaceName } from "../../kv/users.ts";
import {
  acceptSession,
  createSession,
  listSessions,
  loadSession,
  revokeAllSessions,
  revokeSessionById,
  revokeSessionByToken,
  type Session,
} from "../../kv/sessions.ts";
import {
  getWorkspaceBySlug,
  listMembers,
  listUserWorkspaces,
  slugify,
  suffixedSlug,
} from "../../kv/workspaces.ts";
import { attemptsUsed, releaseAttempt, reserveAttempt } from "../../kv/rate_limits.ts";
import { sha256Hex } from "../../lib/crypto.ts";

const policy = {
  sessionIdleTimeout: 3600,
  sessionAbsoluteLifetime: 7200,
  sessionTouchInterval: 60,
};
const account = (email: string, name = "") => ({
  email,
  emailKey: email.toLowerCase(),
  name,
  passwordHash: "$argon2id$fake",
  userAgent: "test",
  ip: "192.0.2.1",
});

Deno.test("users: account, personal workspace, membership pair and session in one atomic", async () => {
  const kv = await openKv(":memory:");
  try {
    const r = await createAccount(kv, policy, account("Grace@Example.com", "Grace Hopper"));
    assert.ok(r.ok);
    assert.equal(r.workspace.slug, "grace-hopper");
    assert.equal(r.workspace.name, "Grace Hopper's workspace");
    assert.equal((await getUserByEmailKey(kv, "grace@example.com"))?.id, r.user.id);
    assert.equal((await getWorkspaceBySlug(kv, "grace-hopper"))?.id, r.workspace.id);
    const members = await listMembers(kv, r.workspace.id);
    assert.deepEqual(members.map((m) => [m.userId, m.role]), [[r.user.id, "owner"]]);
    const mine = await listUserWorkspaces(kv, r.user.id);
    assert.deepEqual(mine.map((w) => [w.slug, w.role]), [["grace-hopper", "owner"]]);
    const loaded = await loadSession(kv, policy, r.session.token);
    assert.ok(loaded.ok && loaded.session.userId === r.user.id);
    // Only the hash is stored.
    const raw = await kv.get(keys.session(r.session.token));
    assert.equal(raw.value, null);
  } finally {
    kv.close();
  }
});

Deno.test("users: a taken slug gets a suffix; a taken address is refused", async () => {
  const kv = await openKv(":memory:");
  try {
    const a = await createAccount(kv, policy, account("a@example.com", "Team"));
    const b = await createAccount(kv, policy, account("b@example.com", "Team"));
    assert.ok(a.ok && b.ok);
    assert.equal(a.workspace.slug, "team");
    assert.match(b.workspace.slug, /^team-[a-z0-9x]{6}$/);
    const dup = await createAccount(kv, policy, account("A@example.com", "Other"));
    assert.deepEqual(dup, { ok: false, error: "email_taken" });
  } finally {
    kv.close();
  }
});

Deno.test("users: 20 concurrent sign-ups with one address make exactly one account", async () => {
  const kv = await openKv(":memory:");
  try {
    const results = await Promise.all(
      Array.from(
        { length: 20 },
        (_, i) => createAccount(kv, policy, account("race@example.com", `R${i}`)),
      ),
    );
    assert.equal(results.filter((r) => r.ok).length, 1);
    let users = 0;
    for await (const _ of kv.list({ prefix: ["users"] })) users++;
    let workspaces = 0;
    for await (const _ of kv.list({ prefix: ["workspaces"] })) workspaces++;
    assert.equal(users, 1);
    assert.equal(workspaces, 1);
  } finally {
    kv.close();
  }
});

Deno.test("slugify: ASCII, hyphens, never empty", () => {
  assert.equal(slugify("Ada's  Workshop!"), "ada-s-workshop");
  assert.equal(slugify("Café Zürich"), "cafe-zurich");
  assert.equal(slugify("日本"), "workspace");
  assert.equal(slugify("-".repeat(50)), "workspace");
  assert.ok(slugify("x".repeat(100)).length <= 40);
  // A long name is cut between words, not inside one.
  assert.equal(
    slugify("Shahrzad Bahramzadeh Kowalczyk long name's workspace"),
    "shahrzad-bahramzadeh-kowalczyk-long-name",
  );
  assert.match(
    suffixedSlug("shahrzad-bahramzadeh-kowalczyk-long-name"),
    /^shahrzad-bahramzadeh-kowalczyk-[a-z0-9x]{6}$/,
  );
  assert.equal(slugify("a".repeat(60)), "a".repeat(40)); // one long word: cut inside
});

Deno.test("sessions: idle timeout, absolute lifetime and touch use the stored times", async () => {
  const kv = await openKv(":memory:");
  try {
    const t0 = Date.now();
    const s = await createSession(kv, policy, { userId: "u1", userAgent: "ua", ip: "ip" }, t0);
    // Within the touch interval: no write.
    let r = await loadSession(kv, policy, s.token, t0 + 30_000);
    assert.ok(r.ok && r.session.lastSeenAt === t0);
    // Past the touch interval: last-seen moves.
    r = await loadSession(kv, policy, s.token, t0 + 61_000);
    assert.ok(r.ok && r.session.lastSeenAt === t0 + 61_000);
    const stored = await kv.get<Session>(keys.session(sha256Hex(s.token)));
    assert.equal(stored.value?.lastSeenAt, t0 + 61_000);
    // Idle for an hour after the last touch: refused and deleted.
    r = await loadSession(kv, policy, s.token, t0 + 61_000 + 3600_000);
    assert.deepEqual(r, { ok: false, reason: "idle_timeout" });
    assert.equal((await kv.get(keys.session(sha256Hex(s.token)))).value, null);

    // Absolute lifetime holds even when active.
    const s2 = await createSession(kv, policy, { userId: "u1", userAgent: "ua", ip: "ip" }, t0);
    for (let t = t0; t < t0 + 7200_000; t += 1800_000) {
      assert.ok((await loadSession(kv, policy, s2.token, t)).ok);
    }
    assert.deepEqual(await loadSession(kv, policy, s2.token, t0 + 7200_000), {
      ok: false,
      reason: "expired",
    });
    assert.deepEqual(await loadSession(kv, policy, undefined), { ok: false, reason: "missing" });
    assert.deepEqual(await loadSession(kv, policy, "nope"), { ok: false, reason: "unknown" });
    const entry = await kv.get<Session>(keys.session("nothing"));
    assert.deepEqual(await acceptSession(kv, policy, "nothing", entry), {
      ok: false,
      reason: "unknown",
    });
  } finally {
    kv.close();
  }
});

Deno.test("sessions: revoke one, by id, and all but one", async () => {
  const kv = await openKv(":memory:");
  try {
    const mk = () => createSession(kv, policy, { userId: "u1", userAgent: "ua", ip: "ip" });
    const [a, b, c, d] = [await mk(), await mk(), await mk(), await mk()];
    assert.equal((await listSessions(kv, "u1")).length, 4);
    assert.ok(await revokeSessionByToken(kv, a.token));
    assert.equal((await loadSession(kv, policy, a.token)).ok, false);
    assert.ok(await revokeSessionById(kv, "u1", b.session.id));
    assert.equal(await revokeSessionById(kv, "u1", b.session.id), false);
    assert.equal(await revokeAllSessions(kv, "u1", d.session.id), 1);
    assert.equal((await loadSession(kv, policy, c.token)).ok, false);
    assert.ok((await loadSession(kv, policy, d.token)).ok);
    assert.deepEqual((await listSessions(kv, "u1")).map((s) => s.id), [d.session.id]);
  } finally {
    kv.close();
  }
});

Deno.test("rate limits: exact under a parallel burst, release gives a slot back", async () => {
  const kv = await openKv(":memory:");
  try {
    const subject = [{ bucket: "t", subject: "x" }];
    const now = Date.now();
    const results = await Promise.all(
      Array.from({ length: 25 }, () => reserveAttempt(kv, subject, 10, 900, { now })),
    );
    assert.equal(results.filter((r) => r.ok).length, 10);
    const refused = results.find((r) => !r.ok);
    // Ten in this window: wait for it to end, and then for a tenth of the next (10 × 0.9 = 9).
    const end = (Math.floor(now / 900_000) + 1) * 900_000;
    assert.ok(refused && !refused.ok);
    assert.equal(refused.retryAfter, Math.ceil((end - now + 90_000) / 1000));
    const granted = results.find((r) => r.ok);
    assert.ok(granted && granted.ok);
    await releaseAttempt(kv, granted, now);
    assert.equal(await attemptsUsed(kv, subject[0], 900, now), 9);
    assert.ok((await reserveAttempt(kv, subject, 10, 900, { now })).ok);
    // A window later they still weigh in (fading), and are gone once the window after ends.
    assert.equal((await reserveAttempt(kv, subject, 10, 900, { now: end })).ok, false);
    const fresh = await Promise.all(
      Array.from(
        { length: 12 },
        () => reserveAttempt(kv, subject, 10, 900, { now: end + 900_000 }),
      ),
    );
    assert.equal(fresh.filter((r) => r.ok).length, 10);
  } finally {
    kv.close();
  }
});

Deno.test("users: a long name makes a shortened, well-formed personal workspace name", async () => {
  assert.equal(personalWorkspaceName("Grace Hopper", "g@example.com"), "Grace Hopper's workspace");
  assert.equal(personalWorkspaceName("", "grace@example.com"), "grace's workspace");
  const fits = "n".repeat(68); // 68 + "'s workspace" is 80 characters: no cut
  assert.equal(personalWorkspaceName(fits, "x@example.com"), `${fits}'s workspace`);
  const cases: [string, string][] = [
    // 79 × "a" then an emoji: cutting 80 UTF-16 units left half of the emoji.
    ["a".repeat(79) + "😀", `${"a".repeat(67)}…'s workspace`],
    // A family emoji is 7 code points, 11 units: it stays whole or goes.
    ["a".repeat(66) + "👩\u200d👩\u200d👧\u200d👦", `${"a".repeat(66)}…'s workspace`],
    // Words stay whole.
    [
      "Very Long Name ".repeat(8).trim(),
      "Very Long Name Very Long Name Very Long Name Very Long Name Very…'s workspace",
    ],
    [
      "Maximiliana Alexandrina Konstantinopolous-Wolfeschlegelsteinhausenbergerdorff",
      "Maximiliana Alexandrina Konstantinopolous…'s workspace",
    ],
    ["e\u0301".repeat(40), `${"e\u0301".repeat(33)}…'s workspace`], // accents stay on their letter
  ];
  for (const [name, expected] of cases) {
    const ws = personalWorkspaceName(name, "x@example.com");
    assert.equal(ws, expected, name);
    assert.ok(ws.isWellFormed(), name);
    assert.ok([...ws].length <= 80, name);
  }
  // Through createAccount too.
  const kv = await openKv(":memory:");
  try {
    const r = await createAccount(kv, policy, account("long@example.com", "a".repeat(79) + "😀"));
    assert.ok(r.ok && r.workspace.name.isWellFormed());
  } finally {
    kv.close();
  }
});
