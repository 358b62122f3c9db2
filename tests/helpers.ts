/**
 * Test helpers: a real app on an in-memory KV, form posts with a same-origin `Origin`,
 * and a cookie jar that follows what the app sets.
 *
 * @example
 * ```ts
 * const t = await testApp();
 * const res = await t.post("/signup", { email: "a@b.co", password: "..." });
 * ```
 * @module
 */
import { createApp } from "../app.ts";
import { type Config, testConfig } from "../lib/config.ts";
import { loadAssets } from "../lib/assets.ts";
import { openKv } from "../kv/db.ts";

/** A strong password that is on no common list. */
export const GOOD_PASSWORD = "violet-harbour-71-kites";

/** A cookie jar: name → value, updated from Set-Cookie. */
export class CookieJar {
  cookies = new Map<string, string>();
  update(res: Response) {
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(";");
      const i = pair.indexOf("=");
      const name = pair.slice(0, i).trim();
      const value = pair.slice(i + 1).trim();
      const expired = attrs.some((a) => /^\s*max-age=0\s*$/i.test(a)) || value === "";
      if (expired) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }
  header(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
  }
}

/** A test app with its KV and a cookie jar. Call `close()` at the end. */
export interface TestApp {
  app: ReturnType<typeof createApp>;
  kv: Deno.Kv;
  config: Config;
  jar: CookieJar;
  origin: string;
  /** GET (or any method) with the jar's cookies; updates the jar. */
  request(path: string, init?: RequestInit & { ip?: string }): Promise<Response>;
  /** POST a urlencoded form with a same-origin Origin header. */
  post(
    path: string,
    form: Record<string, string>,
    init?: RequestInit & { ip?: string },
  ): Promise<Response>;
  /** Signs up a fresh user and returns their email and workspace path. */
  signup(email?: string, name?: string): Promise<{ email: string; location: string }>;
  close(): void;
}

let counter = 0;

/** Builds a real app over a fresh `:memory:` KV. */
export async function testApp(overrides: Partial<Config> = {}, kv?: Deno.Kv): Promise<TestApp> {
  const config = testConfig(overrides);
  const store = kv ?? await openKv(":memory:");
  const assets = await loadAssets();
  const app = createApp({ config, kv: store, assets });
  const jar = new CookieJar();
  const origin = config.appUrl.origin;
  const t: TestApp = {
    app,
    kv: store,
    config,
    jar,
    origin,
    async request(path, init = {}) {
      const headers = new Headers(init.headers);
      if (jar.cookies.size && !headers.has("cookie")) headers.set("cookie", jar.header());
      const env = { remoteAddr: { hostname: init.ip ?? "192.0.2.1" } };
      const res = await app.request(new URL(path, origin).href, { ...init, headers }, env);
      jar.update(res);
      return res;
    },
    post(path, form, init = {}) {
      const headers = new Headers(init.headers);
      if (!headers.has("origin")) headers.set("origin", origin);
      headers.set("content-type", "application/x-www-form-urlencoded");
      return t.request(path, { ...init, method: "POST", headers, body: new URLSearchParams(form) });
    },
    async signup(
      email = `user${++counter}-${crypto.randomUUID().slice(0, 8)}@example.com`,
      name = "",
    ) {
      const res = await t.post("/signup", { email, password: GOOD_PASSWORD, name });
      if (res.status !== 303) throw new Error(`signup failed: ${res.status} ${await res.text()}`);
      return { email, location: res.headers.get("location")! };
    },
    close() {
      if (!kv) store.close();
    },
  };
  return t;
}
