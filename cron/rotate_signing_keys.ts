/**
 * The hourly signing-key job: rotates the access-token signing key when its time is up and
 * drops retired keys whose tokens have all expired. Registered with `Deno.cron` in main.ts;
 * a KV lease makes one instance of N do it.
 *
 * @example
 * ```ts
 * Deno.cron("rotate signing keys", ROTATE_SIGNING_KEYS_SCHEDULE, () => rotateSigningKeys(kv, config));
 * ```
 * @module
 */
import { pruneSigningKeys, rotateSigningKeyIfDue, type TokenPolicy } from "../lib/tokens.ts";
import { withLease } from "../kv/leases.ts";
import { breadcrumb } from "../lib/observability.ts";

/** Cron schedule: every hour at minute 17 (rotation granularity is one hour). */
export const ROTATE_SIGNING_KEYS_SCHEDULE = "17 * * * *";

/** Lease name and hold time (well under the hour between ticks). */
export const ROTATE_SIGNING_KEYS_JOB = "rotate_signing_keys";
const HOLD_MS = 10 * 60_000;

/** What one run did (`ran` false: another instance holds the lease). */
export interface RotationRun {
  ran: boolean;
  rotated: boolean;
  pruned: number;
}

/**
 * One run of the job. Idempotent: running it twice in a row rotates at most once.
 *
 * @example
 * ```ts
 * const { ran, rotated, pruned } = await rotateSigningKeys(kv, config);
 * ```
 */
export async function rotateSigningKeys(
  kv: Deno.Kv,
  policy: TokenPolicy,
  now = Date.now(),
  owner?: string,
): Promise<RotationRun> {
  const out: RotationRun = { ran: false, rotated: false, pruned: 0 };
  out.ran = await withLease(
    kv,
    ROTATE_SIGNING_KEYS_JOB,
    HOLD_MS,
    async () => {
      // Rotate a little early, so a key never runs out between two hourly ticks.
      const result = await rotateSigningKeyIfDue(kv, policy, now, false, 60 * 60_000);
      out.rotated = result.rotated;
      out.pruned = await pruneSigningKeys(kv, now);
      if (result.rotated) breadcrumb("token", "signing key rotated", { retired: result.retired });
    },
    { now, owner },
  );
  return out;
}
