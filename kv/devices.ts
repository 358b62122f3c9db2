/**
 * Trusted devices: the defence against malicious account lockout (OWASP's "device cookies").
 *
 * A successful sign-in leaves the browser a device cookie (a 256-bit random token, one per
 * browser, kept across accounts) and records, for that account's email key, that this device
 * signed in. Later sign-in attempts for that account from that browser are limited on their own
 * (per device and account) instead of by the account-wide and per-address limits, so a stranger
 * failing ten times at someone's address, or a crowd behind the same address, cannot lock the
 * real owner out of their own browser. Attempts from untrusted clients keep the shared limits.
 * KV keeps only SHA-256 of the email key and of the token; each record has its own `expiresAt`.
 *
 * @example
 * ```ts
 * const trusted = await isTrustedDevice(kv, email.key, deviceToken(c));
 * ```
 * @module
 */
import * as keys from "./keys.ts";
import { sha256Hex } from "../lib/crypto.ts";

/** What KV keeps for a trusted device. */
export interface TrustedDevice {
  userId: string;
  createdAt: number;
  /** The trust ends here, whatever `expireIn` did (local KV expires lazily). */
  expiresAt: number;
}

/** How long a device stays trusted after its last successful sign-in: 180 days. */
export const DEVICE_TRUST_SECONDS = 180 * 86_400;

/** The KV key of the trust that `token` holds for the account with `emailKey`. */
export function trustedDeviceKey(emailKey: string, token: string): Deno.KvKey {
  return keys.trustedDevice(sha256Hex(emailKey), sha256Hex(token));
}

/** True when the device cookie `token` signed in to the account with `emailKey` and still holds. */
export async function isTrustedDevice(
  kv: Deno.Kv,
  emailKey: string,
  token: string | undefined,
  now = Date.now(),
): Promise<boolean> {
  if (!token) return false;
  const entry = await kv.get<TrustedDevice>(trustedDeviceKey(emailKey, token));
  return !!entry.value && entry.value.expiresAt > now;
}

/** Adds (or renews) the trust to an atomic: the same commit as the sign-in's session. */
export function addTrustedDevice(
  op: Deno.AtomicOperation,
  device: { emailKey: string; token: string; userId: string },
  now = Date.now(),
): Deno.AtomicOperation {
  const value: TrustedDevice = {
    userId: device.userId,
    createdAt: now,
    expiresAt: now + DEVICE_TRUST_SECONDS * 1000,
  };
  return op.set(trustedDeviceKey(device.emailKey, device.token), value, {
    expireIn: DEVICE_TRUST_SECONDS * 1000,
  });
}
