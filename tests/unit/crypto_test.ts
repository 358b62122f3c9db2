import assert from "node:assert/strict";
import { base64url, randomToken, sha256Hex } from "../../lib/crypto.ts";
import { limitedClient } from "../../lib/http.ts";

Deno.test("base64url matches RFC 4648 §5 without padding, for every length and byte", () => {
  const reference = (b: Uint8Array) =>
    btoa(String.fromCharCode(...b)).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
  for (let len = 0; len <= 40; len++) {
    const b = new Uint8Array(len);
    crypto.getRandomValues(b);
    assert.equal(base64url(b), reference(b));
  }
  assert.equal(base64url(new Uint8Array([0xfb, 0xff, 0xfe])), "-__-");
});

Deno.test("randomToken is 256 bits in 43 base64url characters, never repeated", () => {
  const seen = new Set<string>();
  for (let i = 0; i < 1000; i++) {
    const t = randomToken();
    assert.match(t, /^[A-Za-z0-9_-]{43}$/);
    seen.add(t);
  }
  assert.equal(seen.size, 1000);
});

Deno.test("sha256Hex is the SHA-256 of the UTF-8 text, as lowercase hex", async () => {
  for (const text of ["", "abc", "grüße ✓"]) {
    const digest = new Uint8Array(
      await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)),
    );
    const hex = [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
    assert.equal(sha256Hex(text), hex);
  }
});

Deno.test("limitedClient: IPv4 as it is, IPv6 by its /64, IPv4-mapped as IPv4", () => {
  assert.equal(limitedClient("192.0.2.7"), "192.0.2.7");
  assert.equal(limitedClient("::ffff:192.0.2.7"), "192.0.2.7");
  assert.equal(limitedClient("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::/64");
  assert.equal(limitedClient("2001:0DB8:0001:0002::1"), "2001:db8:1:2::/64");
  assert.equal(limitedClient("2001:db8::1"), "2001:db8:0:0::/64");
  assert.equal(limitedClient("[2001:db8:1:2::9]"), "2001:db8:1:2::/64");
  assert.equal(limitedClient("::1"), "0:0:0:0::/64");
  assert.equal(limitedClient("unknown"), "unknown");
});
