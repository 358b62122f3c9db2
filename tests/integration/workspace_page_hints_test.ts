/**
 * The workspace page's one-getMany fast path: cached ids only pick keys; KV decides. A
 * change made elsewhere (another process: no shared memory) shows on the very next page.
 */
import assert from "node:assert/strict";
import { testApp } from "../helpers.ts";
import * as keys from "../../kv/keys.ts";
import {
  addWorkspace,
  bumpUserWorkspaces,
  newWorkspace,
  userWorkspaceHints,
} from "../../kv/workspaces.ts";

async function signedInOwner() {
  const t = await testApp();
  const { location } = await t.signup(undefined, "Hint Tester");
  const session = await t.kv.list<string>({ prefix: ["user_sessions"] }).next();
  const userId = session.value!.key[1] as string;
  // Twice: the first view lists and fills the hints, the second takes the fast path.
  for (let i = 0; i < 2; i++) assert.equal((await t.request(location)).status, 200);
  assert.ok(userWorkspaceHints.get(userId), "the first view records the workspace-id hint");
  return { t, location, userId };
}

Deno.test("a workspace added elsewhere appears in the switcher on the next page", async () => {
  const { t, location, userId } = await signedInOwner();
  try {
    const ws = newWorkspace({
      name: "Added Elsewhere",
      slug: "added-elsewhere",
      ownerId: userId,
      personal: false,
    });
    assert.ok((await addWorkspace(t.kv.atomic(), ws).commit()).ok);
    const html = await (await t.request(location)).text();
    assert.match(html, /Added Elsewhere/);
    // …and the refreshed hint serves the page after that too.
    assert.match(await (await t.request(location)).text(), /Added Elsewhere/);
  } finally {
    t.close();
  }
});

Deno.test("a membership removed elsewhere disappears at once, and its page is a 404", async () => {
  const { t, location, userId } = await signedInOwner();
  try {
    const ws = newWorkspace({
      name: "Short Stay",
      slug: "short-stay",
      ownerId: userId,
      personal: false,
    });
    assert.ok((await addWorkspace(t.kv.atomic(), ws).commit()).ok);
    assert.equal((await t.request("/w/short-stay")).status, 200);
    assert.match(await (await t.request(location)).text(), /Short Stay/);
    const removed = await bumpUserWorkspaces(
      t.kv.atomic()
        .delete(keys.membership(ws.id, userId))
        .delete(keys.userWorkspace(userId, ws.id)),
      userId,
    ).commit();
    assert.ok(removed.ok);
    assert.doesNotMatch(await (await t.request(location)).text(), /Short Stay/);
    assert.equal((await t.request("/w/short-stay")).status, 404);
  } finally {
    t.close();
  }
});

Deno.test("a renamed workspace shows its new name in the switcher on the next page", async () => {
  const { t, location, userId } = await signedInOwner();
  try {
    const ws = newWorkspace({
      name: "Old Name",
      slug: "old-name",
      ownerId: userId,
      personal: false,
    });
    assert.ok((await addWorkspace(t.kv.atomic(), ws).commit()).ok);
    assert.match(await (await t.request(location)).text(), /Old Name/);
    const entry = await t.kv.get<{ name: string }>(keys.userWorkspace(userId, ws.id));
    await t.kv.set(keys.userWorkspace(userId, ws.id), { ...entry.value!, name: "New Name" });
    const html = await (await t.request(location)).text();
    assert.match(html, /New Name/);
    assert.doesNotMatch(html, /Old Name/);
  } finally {
    t.close();
  }
});

Deno.test("a signed-out session is refused on the fast path", async () => {
  const { t, location } = await signedInOwner();
  try {
    const cookie = t.jar.header();
    assert.equal((await t.post("/logout", {})).status, 303);
    const res = await t.request(location, { headers: { cookie } });
    assert.equal(res.status, 303);
    assert.match(res.headers.get("location")!, /^\/login\?next=/);
  } finally {
    t.close();
  }
});
