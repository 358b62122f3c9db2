/**
 * The Hono environment shared by every route, and small request/response helpers.
 *
 * @example
 * ```ts
 * const app = new Hono<AppEnv>();
 * app.get("/x", (c) => problem(c, 404, "not_found", "No such thing."));
 * ```
 * @module
 */
import type { Context } from "hono";
import type { Config } from "./config.ts";
import type { Assets } from "./assets.ts";

/** Per-request variables set by middleware. */
export interface AppVariables {
  config: Config;
  kv: Deno.Kv;
  assets: Assets;
  requestId: string;
  secureHeadersNonce?: string;
  clientIp: string;
}

/** Hono generics for Lodge: `c.env` is Deno.serve's connection info when served. */
export interface AppEnv {
  Variables: AppVariables;
  Bindings: { remoteAddr?: { hostname?: string } } | undefined;
}

/** The route context type. */
export type Ctx = Context<AppEnv>;

/** True when the request is for the JSON API. */
export function isApi(c: Ctx): boolean {
  return c.req.path === "/api" || c.req.path.startsWith("/api/");
}

/** A JSON problem answer: `{ error, message, requestId }`. */
export function problem(
  c: Ctx,
  status: 400 | 401 | 403 | 404 | 405 | 409 | 413 | 415 | 422 | 429 | 500 | 503,
  error: string,
  message: string,
  headers: Record<string, string> = {},
): Response {
  for (const [k, v] of Object.entries(headers)) c.header(k, v);
  return c.json({ error, message, requestId: c.get("requestId") }, status);
}

/**
 * Returns `next` when it is a same-site relative path (`/x`), otherwise `fallback`.
 * Refuses `//host`, `/\host`, schemes, control characters and anything that
 * resolves to another origin.
 */
export function safeNext(next: string | undefined | null, fallback = "/"): string {
  if (!next || next.length > 2048) return fallback;
  if (!next.startsWith("/") || next.startsWith("//") || next.includes("\\")) return fallback;
  // deno-lint-ignore no-control-regex
  if (/[\u0000-\u001f\u007f\s]/.test(next)) return fallback;
  const base = "http://lodge.invalid";
  let url: URL;
  try {
    url = new URL(next, base);
  } catch {
    return fallback;
  }
  // Dot segments can turn "/.//evil" into "//evil": check what the path resolves to.
  if (url.origin !== base || url.pathname.startsWith("//") || url.pathname.includes("\\")) {
    return fallback;
  }
  return url.pathname + url.search + url.hash;
}

/** A form that parsed, with typed access to its single-valued string fields. */
export interface FormFields {
  get(name: string): string;
  has(name: string): boolean;
}

/** Outcome of {@link readForm}. */
export type FormResult =
  | { ok: true; fields: FormFields }
  | {
    ok: false;
    status: 400 | 415;
    message: string;
    /** What could be read (the first text value of each field), to re-render the form with. */
    fields: FormFields;
  };

function fieldsOf(values: Map<string, string>): FormFields {
  return { get: (n) => values.get(n) ?? "", has: (n) => values.has(n) };
}

/**
 * Reads an HTML form body (urlencoded or multipart). Files, repeated fields and bodies
 * of the wrong type are refused with a status and a message for the person.
 */
export async function readForm(c: Ctx, allowed: readonly string[]): Promise<FormResult> {
  const type = (c.req.header("content-type") ?? "").split(";")[0].trim().toLowerCase();
  const unread = fieldsOf(new Map());
  if (type !== "application/x-www-form-urlencoded" && type !== "multipart/form-data") {
    return {
      ok: false,
      status: 415,
      message: "This form must be sent as a web form.",
      fields: unread,
    };
  }
  let body: Record<string, string | File | (string | File)[]>;
  try {
    body = type === "application/x-www-form-urlencoded"
      ? urlencodedFields(await c.req.text())
      : await multipartFields(c.req.header("content-type")!, await c.req.arrayBuffer());
  } catch {
    return {
      ok: false,
      status: 400,
      message: "The form could not be read. Please try again.",
      fields: unread,
    };
  }
  const values = new Map<string, string>();
  let problem: string | undefined;
  for (const name of allowed) {
    const v = body[name];
    if (v === undefined) continue;
    const first = Array.isArray(v) ? v.find((x) => typeof x === "string") : v;
    if (typeof first === "string") values.set(name, first);
    if (problem) continue;
    if (Array.isArray(v)) problem = `The field “${name}” was sent more than once.`;
    else if (typeof v !== "string") problem = `The field “${name}” must be text, not a file.`;
  }
  if (problem) return { ok: false, status: 400, message: problem, fields: fieldsOf(values) };
  return { ok: true, fields: fieldsOf(values) };
}

/**
 * Parses a multipart body into `parseBody({ all: true })`'s shape. A body cut off before its
 * closing delimiter (`--boundary--`) throws: the platform's parser would return the parts it
 * got (often none), and the form would come back "empty" instead of "could not be read".
 */
async function multipartFields(
  contentType: string,
  bytes: ArrayBuffer,
): Promise<Record<string, string | File | (string | File)[]>> {
  const boundary = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  const delimiter = `--${boundary?.[1] ?? boundary?.[2] ?? ""}--`;
  // latin1 keeps one char per byte, so the ASCII delimiter is found wherever it is.
  const text = new TextDecoder("latin1").decode(bytes);
  if (!boundary || !text.includes(delimiter)) throw new TypeError("multipart body incomplete");
  const form = await new Response(bytes, { headers: { "content-type": contentType } }).formData();
  return fieldRecord(form);
}

/** Fields in `parseBody({ all: true })`'s shape: a repeated name gives an array. */
function fieldRecord<V extends string | File>(
  entries: Iterable<[string, V]>,
): Record<string, V | V[]> {
  const out: Record<string, V | V[]> = Object.create(null);
  for (const [name, value] of entries) {
    const had = out[name];
    if (had === undefined) out[name] = value;
    else if (Array.isArray(had)) had.push(value);
    else out[name] = [had, value];
  }
  return out;
}

/**
 * Parses an urlencoded body into `parseBody({ all: true })`'s shape (a repeated name gives
 * an array), with the WHATWG parser `URLSearchParams` uses: the same fields FormData would
 * give, without building a FormData (sign-in's hot path).
 */
function urlencodedFields(text: string): Record<string, string | string[]> {
  return fieldRecord(new URLSearchParams(text));
}

/**
 * The table's own entry for a key from the request (`?m=…`), never an inherited one:
 * `?m=constructor` must find nothing, not `Object.prototype.constructor`.
 *
 * @example
 * ```ts
 * const notice = ownEntry(NOTICES, c.req.query("m"));
 * ```
 */
export function ownEntry<T>(table: Record<string, T>, key: string | undefined): T | undefined {
  return key !== undefined && Object.hasOwn(table, key) ? table[key] : undefined;
}

/** True for an address of this machine's loopback interface (127.0.0.0/8, ::1, ::ffff:127.x). */
export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  const a = address.replace(/^\[|\]$/g, "").toLowerCase();
  return a === "::1" || /^(::ffff:)?127(\.\d{1,3}){3}$/.test(a);
}

/**
 * True when the request comes from this machine, failing closed: the connection is loopback, the
 * Host header names this machine (not a rebound DNS name), and
 * - with TRUST_PROXY, the client the proxy names is loopback too (a malformed entry, like Squid's
 *   "unknown", is not); a request with no X-Forwarded-For did not come through the proxy;
 * - otherwise the request carries no proxy headers at all (a proxy on this host that Lodge was
 *   not told about would otherwise make every visitor look local).
 */
export function fromThisMachine(c: Ctx, trustProxy: boolean): boolean {
  if (!isLoopback(c.env?.remoteAddr?.hostname)) return false;
  // DNS rebinding: a page on attacker.example whose name now points at 127.0.0.1 reaches us
  // from the developer's own browser, but with its own name in Host.
  // (The URL's host is the Host header as Deno.serve received it.)
  if (!isLoopbackHost(new URL(c.req.url).host)) return false;
  if (trustProxy && c.req.header("x-forwarded-for") !== undefined) {
    return isLoopback(forwardedClient(c) ?? undefined);
  }
  return !PROXY_HEADERS.some((h) => c.req.header(h) !== undefined);
}

/** True for a Host header that names this machine: localhost (or a subdomain), 127.x, [::1]. */
function isLoopbackHost(host: string | undefined): boolean {
  if (!host) return false;
  const name = host.toLowerCase().replace(/:\d+$/, "");
  return name === "localhost" || name.endsWith(".localhost") || isLoopback(name);
}

const PROXY_HEADERS = ["x-forwarded-for", "forwarded", "x-real-ip", "x-forwarded-host"];

/** The last X-Forwarded-For entry (the one the trusted proxy appended), if it is an address. */
function forwardedClient(c: Ctx): string | null {
  const last = c.req.header("x-forwarded-for")?.split(",").map((s) => s.trim()).filter(Boolean)
    .at(-1);
  return last && last.length <= 64 && /^[0-9a-fA-F:.]+$/.test(last) ? last : null;
}

/**
 * The client as per-address limits count it: an IPv4 address as it is, an IPv6 address by its
 * /64 (one home or office gets a whole /64, so counting single addresses would hand one attacker
 * endless fresh budgets). IPv4-mapped IPv6 (`::ffff:192.0.2.1`) counts as its IPv4 address.
 *
 * @example
 * ```ts
 * limitedClient("2001:db8:1:2:aaaa::1"); // "2001:db8:1:2::/64"
 * ```
 */
export function limitedClient(ip: string): string {
  const a = ip.toLowerCase().replace(/^\[|\]$/g, "");
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(a);
  if (mapped) return mapped[1];
  if (!a.includes(":")) return a;
  const [head, tail = ""] = a.split("::");
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  const groups = a.includes("::")
    ? [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill("0"), ...right]
    : left;
  if (groups.length !== 8 || !groups.every((g) => /^[0-9a-f]{1,4}$/.test(g))) return a;
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, "")).join(":")}::/64`;
}

/** The client address: from the connection, or X-Forwarded-For only when trusted. */
export function clientIp(c: Ctx, trustProxy: boolean): string {
  const forwarded = trustProxy ? forwardedClient(c) : null;
  // A malformed entry falls back to the proxy's address: one shared budget, never a fresh one.
  return forwarded ?? c.env?.remoteAddr?.hostname ?? "unknown";
}
