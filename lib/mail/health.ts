/**
 * The `email` section of `GET /health`: which transport is configured and how many mails
 * were sent, finally failed, or left undelivered by the queue.
 *
 * @example
 * ```ts
 * const email = await mailHealth(kv, config); // { transport: "outbox", sent: 3, failed: 0, undelivered: 0 }
 * ```
 * @module
 */
import type { Config } from "../config.ts";
import { mailCounts } from "../../kv/mail.ts";
import { mailTransportName } from "./transport.ts";

/** What /health reports about mail. A KV error reads as `counts: "unavailable"`. */
export type MailHealth =
  | { transport: string; sent: number; failed: number; undelivered: number }
  | { transport: string; counts: "unavailable" };

/** Reads the mail figures for /health; never throws. */
export async function mailHealth(kv: Deno.Kv, config: Config): Promise<MailHealth> {
  const transport = mailTransportName(config);
  try {
    return { transport, ...await mailCounts(kv) };
  } catch {
    return { transport, counts: "unavailable" };
  }
}
