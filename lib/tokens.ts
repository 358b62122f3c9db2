/**
 * Access tokens: short-lived ES256 JWTs signed with keys kept in KV, so every instance signs
 * and verifies with the same keys. KV is the authority for which key signs and which keys are
 * published; imported `CryptoKey`s are cached in-process by `kid` only to keep minting fast.
 *
 * Rotation: {@link rotateSigningKeyIfDue} replaces the current key when its `activeUntil` has
 * passed, or passes within `dueWithinMs` (the cron in cron/rotate_signing_keys.ts calls it,
 * and minting does too when the cron is late). A retired key stays in the JWKS until every token it signed has expired.
 *
 * @example
 * ```ts
 * const key = await currentSigningKey(kv, policy);
 * const { token } = await mintAccessToken(policy, key, { sub, sid, ws, role });
 * const result = await verifyAccessToken(kv, policy, token);
 * ```
 * @module
 */
import {
  exportJWK,
  generateKeyPair,
  importJWK,
  type JSONWebKeySet,
  type JWK,
  jwtVerify,
  SignJWT,
} from "jose";
import { errors as joseErrors } from "jose";
import * as keys from "../kv/keys.ts";
import { randomToken } from "./crypto.ts";

/** The signing algorithm (ECDSA P-256; small signatures, fast in Web Crypto). */
export const TOKEN_ALG = "ES256";

/** Slack for clocks and in-flight requests when deciding how long a retired key stays published. */
export const KEY_PUBLISH_SLACK_MS = 60_000;

/** What token functions need from configuration. */
export interface TokenPolicy {
  /** Token lifetime, seconds. */
  accessTokenTtl: number;
  /** How long one key signs, seconds. */
  signingKeyRotation: number;
  /** Issuer and audience of every token: the app's origin. */
  appUrl: URL;
}

/** ["signing_keys", kid]: one key pair and its life. */
export interface SigningKey {
  kid: string;
  alg: typeof TOKEN_ALG;
  privateJwk: JWK;
  publicJwk: JWK;
  createdAt: number;
  /** After this (ms) the key signs nothing new. */
  activeUntil: number;
  /** Until this (ms) the public key is in the JWKS: the last token it signed has expired by then. */
  publishUntil: number;
}

/** Claims Lodge puts in an access token (besides iss, aud, iat, exp, jti). */
export interface AccessClaims {
  /** User id. */
  sub: string;
  /** Session id (public id, not the cookie token). */
  sid: string;
  /** Active workspace id, or null when the user has none. */
  ws: string | null;
  /** Role in the active workspace, or null. */
  role: string | null;
}

/** A verified access token's claims. */
export interface VerifiedClaims extends AccessClaims {
  /** Expiry, seconds since epoch. */
  exp: number;
  jti: string;
}

/** Outcome of {@link verifyAccessToken}. */
export type VerifyResult =
  | { ok: true; claims: VerifiedClaims }
  | { ok: false; reason: "token_expired" | "invalid_token" };

function issuer(policy: TokenPolicy): string {
  return policy.appUrl.origin;
}

/**
 * Makes a new key pair (not stored).
 *
 * @example
 * ```ts
 * const key = await newSigningKey(config); // not stored yet
 * ```
 */
export async function newSigningKey(policy: TokenPolicy, now = Date.now()): Promise<SigningKey> {
  const pair = await generateKeyPair(TOKEN_ALG, { extractable: true });
  const kid = randomToken(12);
  const activeUntil = now + policy.signingKeyRotation * 1000;
  return {
    kid,
    alg: TOKEN_ALG,
    privateJwk: await exportJWK(pair.privateKey),
    publicJwk: await exportJWK(pair.publicKey),
    createdAt: now,
    activeUntil,
    publishUntil: activeUntil + policy.accessTokenTtl * 1000 + KEY_PUBLISH_SLACK_MS,
  };
}

function keyExpireIn(k: SigningKey, now: number): number {
  // Cleanup only: the times in the value decide. An hour past the end keeps the JWKS honest.
  return Math.max(60_000, k.publishUntil - now + 3_600_000);
}

/** Outcome of {@link rotateSigningKeyIfDue}. */
export interface RotationResult {
  /** The key that signs now. */
  current: SigningKey;
  /** True when this call made it current. */
  rotated: boolean;
  /** Kid of the key this call retired, if any. */
  retired: string | null;
}

/**
 * Makes a new current key when there is none or the current one's time is up (`force` rotates
 * anyway, e.g. after a suspected leak). The swap is one atomic checked on the current-key
 * pointer, so of N instances racing exactly one key wins and the others adopt it.
 *
 * @example
 * ```ts
 * const { current, rotated } = await rotateSigningKeyIfDue(kv, config);
 * ```
 */
export async function rotateSigningKeyIfDue(
  kv: Deno.Kv,
  policy: TokenPolicy,
  now = Date.now(),
  force = false,
  dueWithinMs = 0,
): Promise<RotationResult> {
  for (let attempt = 0; attempt < 10; attempt++) {
    const pointer = await kv.get<string>(keys.signingKeyCurrent());
    const old = pointer.value
      ? (await kv.get<SigningKey>(keys.signingKey(pointer.value))).value
      : null;
    if (old && old.activeUntil > now + dueWithinMs && !force) {
      return { current: old, rotated: false, retired: null };
    }
    const next = await newSigningKey(policy, now);
    const op = kv.atomic()
      .check(pointer)
      .check({ key: keys.signingKey(next.kid), versionstamp: null })
      .set(keys.signingKeyCurrent(), next.kid)
      .set(keys.signingKey(next.kid), next, { expireIn: keyExpireIn(next, now) });
    if (old) {
      const retired: SigningKey = {
        ...old,
        activeUntil: Math.min(old.activeUntil, now),
        // It signs nothing from now on, so its last token expires within one lifetime.
        publishUntil: now + policy.accessTokenTtl * 1000 + KEY_PUBLISH_SLACK_MS,
      };
      op.set(keys.signingKey(old.kid), retired, { expireIn: keyExpireIn(retired, now) });
    }
    if ((await op.commit()).ok) {
      signingKeyCache.set(next.kid, next);
      return { current: next, rotated: true, retired: old?.kid ?? null };
    }
    // Another instance rotated first: read again and adopt its key.
  }
  throw new Error("signing key rotation: too much contention");
}

/**
 * Deletes keys whose publication has ended (never the current one). Returns how many.
 *
 * @example
 * ```ts
 * const removed = await pruneSigningKeys(kv);
 * ```
 */
export async function pruneSigningKeys(kv: Deno.Kv, now = Date.now()): Promise<number> {
  const current = (await kv.get<string>(keys.signingKeyCurrent())).value;
  let pruned = 0;
  for await (const e of kv.list<SigningKey>({ prefix: keys.signingKeys() })) {
    if (e.value.kid === current || e.value.publishUntil > now) continue;
    if ((await kv.atomic().check(e).delete(e.key).commit()).ok) pruned++;
    privateKeys.delete(e.value.kid);
    publicKeys.delete(e.value.kid);
    signingKeyCache.delete(e.value.kid);
  }
  return pruned;
}

/** Key records by kid (immutable material; times re-read through the pointer check). */
const signingKeyCache = new Map<string, SigningKey>();
const privateKeys = new Map<string, Promise<CryptoKey>>();
const publicKeys = new Map<string, { key: Promise<CryptoKey>; publishUntil: number; at: number }>();

/** How long a verifier trusts its cached view of a key's publication, ms. */
const PUBLIC_KEY_RECHECK_MS = 30_000;

/**
 * The key that signs now. `pointerKid` is the current-key pointer the caller already read
 * (e.g. in the same `getMany` as the session); KV is read again only for a kid not yet seen.
 *
 * @example
 * ```ts
 * const key = await currentSigningKey(kv, config);
 * ```
 */
export async function currentSigningKey(
  kv: Deno.Kv,
  policy: TokenPolicy,
  now = Date.now(),
  pointerKid?: string | null,
): Promise<SigningKey> {
  const kid = pointerKid === undefined
    ? (await kv.get<string>(keys.signingKeyCurrent())).value
    : pointerKid;
  if (kid) {
    let k = signingKeyCache.get(kid);
    if (!k) {
      k = (await kv.get<SigningKey>(keys.signingKey(kid))).value ?? undefined;
      if (k) signingKeyCache.set(kid, k);
    }
    if (k && k.activeUntil > now) return k;
  }
  return (await rotateSigningKeyIfDue(kv, policy, now)).current;
}

function privateKeyFor(k: SigningKey): Promise<CryptoKey> {
  let p = privateKeys.get(k.kid);
  if (!p) {
    p = importJWK(k.privateJwk, TOKEN_ALG) as Promise<CryptoKey>;
    privateKeys.set(k.kid, p);
  }
  return p;
}

/**
 * Signs an access token; returns it with its expiry.
 *
 * @example
 * ```ts
 * const { token, expiresAt } = await mintAccessToken(config, key, { sub, sid, ws, role });
 * ```
 */
export async function mintAccessToken(
  policy: TokenPolicy,
  key: SigningKey,
  claims: AccessClaims,
  now = Date.now(),
): Promise<{ token: string; expiresAt: number }> {
  const iat = Math.floor(now / 1000);
  const exp = iat + policy.accessTokenTtl;
  const token = await new SignJWT({ sid: claims.sid, ws: claims.ws, role: claims.role })
    .setProtectedHeader({ alg: TOKEN_ALG, kid: key.kid, typ: "at+jwt" })
    .setIssuer(issuer(policy))
    .setAudience(issuer(policy))
    .setSubject(claims.sub)
    .setIssuedAt(iat)
    .setExpirationTime(exp)
    .setJti(randomToken(12))
    .sign(await privateKeyFor(key));
  return { token, expiresAt: exp * 1000 };
}

async function publicKeyFor(kv: Deno.Kv, kid: string, now: number): Promise<CryptoKey> {
  let cached = publicKeys.get(kid);
  if (!cached || now - cached.at > PUBLIC_KEY_RECHECK_MS) {
    const k = (await kv.get<SigningKey>(keys.signingKey(kid))).value;
    if (!k) {
      publicKeys.delete(kid);
      throw new Error("unknown kid");
    }
    cached = {
      key: cached?.key ?? importJWK(k.publicJwk, TOKEN_ALG) as Promise<CryptoKey>,
      publishUntil: k.publishUntil,
      at: now,
    };
    publicKeys.set(kid, cached);
  }
  if (cached.publishUntil <= now) throw new Error("retired kid");
  return await cached.key;
}

/**
 * Verifies an access token: signature by a published Lodge key, issuer, audience, type and
 * expiry with no clock tolerance (an expired token is refused outright).
 *
 * @example
 * ```ts
 * const r = await verifyAccessToken(kv, config, token);
 * if (!r.ok) console.log(r.reason); // "token_expired" | "invalid_token"
 * ```
 */
export async function verifyAccessToken(
  kv: Deno.Kv,
  policy: TokenPolicy,
  token: string,
  now = Date.now(),
): Promise<VerifyResult> {
  if (token.length > 4096) return { ok: false, reason: "invalid_token" };
  try {
    const { payload } = await jwtVerify(token, async (header) => {
      if (typeof header.kid !== "string") throw new Error("no kid");
      return await publicKeyFor(kv, header.kid, now);
    }, {
      issuer: issuer(policy),
      audience: issuer(policy),
      algorithms: [TOKEN_ALG],
      typ: "at+jwt",
      currentDate: new Date(now),
      clockTolerance: 0,
      requiredClaims: ["sub", "sid", "exp", "jti"],
    });
    // jose accepts exp == now; "no grace" means a token is dead at its exp second.
    if (typeof payload.exp !== "number" || payload.exp * 1000 <= now) {
      return { ok: false, reason: "token_expired" };
    }
    if (typeof payload.sid !== "string" || typeof payload.sub !== "string") {
      return { ok: false, reason: "invalid_token" };
    }
    return {
      ok: true,
      claims: {
        sub: payload.sub,
        sid: payload.sid,
        ws: typeof payload.ws === "string" ? payload.ws : null,
        role: typeof payload.role === "string" ? payload.role : null,
        exp: payload.exp,
        jti: String(payload.jti),
      },
    };
  } catch (err) {
    if (err instanceof joseErrors.JWTExpired) return { ok: false, reason: "token_expired" };
    return { ok: false, reason: "invalid_token" };
  }
}

/**
 * The public keys still published (current and recently retired), as a JWKS.
 *
 * @example
 * ```ts
 * const jwks = await publishedKeys(kv); // { keys: [{ kty: "EC", kid, … }] }
 * ```
 */
export async function publishedKeys(kv: Deno.Kv, now = Date.now()): Promise<JSONWebKeySet> {
  const out: JWK[] = [];
  for await (const e of kv.list<SigningKey>({ prefix: keys.signingKeys() })) {
    if (e.value.publishUntil <= now) continue;
    const { kty, crv, x, y } = e.value.publicJwk;
    out.push({ kty, crv, x, y, kid: e.value.kid, alg: TOKEN_ALG, use: "sig" });
  }
  return { keys: out };
}
