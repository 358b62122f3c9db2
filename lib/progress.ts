/**
 * A progress bar on stderr with entries/s and time left (or, with no known total, a counter
 * with entries/s). On a terminal it redraws one line; otherwise it prints at most one line
 * every few seconds, so logs stay readable, and always the final line.
 *
 * @example
 * ```ts
 * const bar = new ProgressBar("Restoring", 1_000_000);
 * bar.update(500_000);
 * bar.done();
 * ```
 * @module
 */

/**
 * Formats seconds as m:ss (or h:mm:ss).
 *
 * @example
 * ```ts
 * formatDuration(75); // "1:15"
 * ```
 */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  const mm = h ? String(m).padStart(2, "0") : String(m);
  return `${h ? `${h}:` : ""}${mm}:${String(r).padStart(2, "0")}`;
}

/**
 * The progress bar.
 *
 * @example
 * ```ts
 * const bar = new ProgressBar("Restoring", 100);
 * bar.update(50);
 * bar.done();
 * ```
 */
export class ProgressBar {
  readonly #started = performance.now();
  #last = -Infinity;
  readonly #tty: boolean;
  readonly #out = new TextEncoder();
  constructor(
    readonly label: string,
    readonly total: number,
    readonly write: (text: string) => void = (t) => Deno.stderr.writeSync(this.#out.encode(t)),
    tty = Deno.stderr.isTerminal(),
  ) {
    this.#tty = tty;
  }
  /** The line for `done` entries. */
  line(done: number, now = performance.now()): string {
    const secs = (now - this.#started) / 1000;
    const rate = secs > 0 ? done / secs : 0;
    // No known total (e.g. a backup, which learns its size as it goes): a counter.
    if (this.total <= 0) return `${this.label}: ${done} entries · ${Math.round(rate)} entries/s`;
    const frac = this.total > 0 ? Math.min(1, done / this.total) : 1;
    const width = 24;
    const filled = Math.round(frac * width);
    const left = rate > 0 ? (this.total - done) / rate : Infinity;
    return `${this.label} [${"#".repeat(filled)}${".".repeat(width - filled)}] ` +
      `${(frac * 100).toFixed(0).padStart(3)}% ${done}/${this.total} · ` +
      `${Math.round(rate)} entries/s · ${formatDuration(left)} left`;
  }
  /** Reports progress (throttled). */
  update(done: number): void {
    const now = performance.now();
    if (now - this.#last < (this.#tty ? 200 : 5000)) return;
    this.#last = now;
    this.write(this.#tty ? `\r${this.line(done, now)}\x1b[K` : `${this.line(done, now)}\n`);
  }
  /** Prints the final line. */
  done(doneCount = this.total): void {
    const secs = (performance.now() - this.#started) / 1000;
    const text = `${this.label}: ${doneCount} entries in ${secs.toFixed(1)} s ` +
      `(${Math.round(doneCount / Math.max(secs, 0.001))} entries/s)`;
    this.write(this.#tty ? `\r${text}\x1b[K\n` : `${text}\n`);
  }
}
