/**
 * Mail in tests: runs the real queue listener over a test app's KV (so queued mail is
 * delivered by the real `email.send` job) and waits for mails in the development outbox.
 *
 * @example
 * ```ts
 * const t = await testApp();
 * const mail = startMail(t);
 * await t.post("/password/forgot", { email });
 * const reset = await mail.waitFor((m) => m.kind === "password_reset");
 * await mail.close(); // closes the app's KV too
 * ```
 * @module
 */
import type { TestApp } from "./helpers.ts";
import { startQueueListener } from "../cron/queue.ts";
import { listOutbox, type OutboxMail } from "../kv/mail.ts";

/** A running listener with outbox helpers. */
export interface TestMail {
  /** Waits until a mail matching `pred` is in the outbox (newest first), or throws. */
  waitFor(pred: (m: OutboxMail) => boolean, timeoutMs?: number): Promise<OutboxMail>;
  /**
   * Waits until exactly `n` mails match `pred`, then waits `settleMs` more and checks that
   * no further one arrived; returns them. Throws on timeout or on more than `n`.
   */
  waitForCount(
    pred: (m: OutboxMail) => boolean,
    n: number,
    settleMs?: number,
  ): Promise<OutboxMail[]>;
  /** Every outbox mail, newest first. */
  all(): Promise<OutboxMail[]>;
  /** Closes the app's KV (which ends the listener) and waits for the listener. */
  close(): Promise<void>;
}

/** Starts the queue listener for `t` (the app's config picks the transport). */
export function startMail(t: TestApp): TestMail {
  const listening = startQueueListener({ kv: t.kv, config: t.config });
  return {
    async waitFor(pred, timeoutMs = 5000) {
      const end = Date.now() + timeoutMs;
      while (Date.now() < end) {
        const found = (await listOutbox(t.kv, 1000)).find(pred);
        if (found) return found;
        await new Promise((r) => setTimeout(r, 10));
      }
      throw new Error("no matching mail arrived in the outbox");
    },
    async waitForCount(pred, n, settleMs = 100) {
      const end = Date.now() + 5000;
      let found: OutboxMail[] = [];
      while (Date.now() < end) {
        found = (await listOutbox(t.kv, 1000)).filter(pred);
        if (found.length >= n) break;
        await new Promise((r) => setTimeout(r, 10));
      }
      await new Promise((r) => setTimeout(r, settleMs));
      found = (await listOutbox(t.kv, 1000)).filter(pred);
      if (found.length !== n) {
        throw new Error(`expected ${n} matching mails, found ${found.length}`);
      }
      return found;
    },
    all: () => listOutbox(t.kv, 1000),
    async close() {
      t.kv.close();
      await listening;
    },
  };
}

/** The first link in a mail's plain text. */
export function linkIn(mail: { text: string }): string {
  const m = mail.text.match(/https?:\/\/\S+/);
  if (!m) throw new Error("mail has no link");
  return m[0];
}

/** The token in a mail's first link. */
export function tokenIn(mail: { text: string }): string {
  return new URL(linkIn(mail)).searchParams.get("token") ?? "";
}
