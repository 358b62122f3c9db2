/**
 * Checks a 5-field cron schedule (minute hour day-of-month month day-of-week, UTC) the way
 * Deno.cron will read it, so a bad BACKUP_CRON is one clear line at start-up instead of a
 * stack trace from Deno.cron — or a panic: Deno accepts a day that never occurs ("31 2",
 * 31 February) and then crashes the process computing the next run. So this is stricter
 * than Deno.cron's own check, never looser: what passes here was seen to run under Deno 2.9
 * (steps below the field's size, day of week 1-7 or SUN-SAT, a day that exists in at least
 * one of the months).
 *
 * @example
 * ```ts
 * cronScheduleProblem("0 3 * * *"); // null
 * cronScheduleProblem("0 25 * * *"); // "hour 25 is out of range 0-23"
 * ```
 * @module
 */

const FIELDS = [
  { name: "minute", min: 0, max: 59, names: [] as string[] },
  { name: "hour", min: 0, max: 23, names: [] },
  { name: "day of month", min: 1, max: 31, names: [] },
  {
    name: "month",
    min: 1,
    max: 12,
    names: ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"],
  },
  // Deno.cron refuses 0 here (its week runs 1-7); names are the unambiguous way to write it.
  { name: "day of week", min: 1, max: 7, names: ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"] },
];

/** The most days each month can have (February: 29, in leap years). */
const MONTH_DAYS = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * Why `schedule` is not a valid 5-field cron schedule, or null when it is.
 *
 * @example
 * ```ts
 * cronScheduleProblem("61 * * * *"); // "minute 61 is out of range 0-59"
 * cronScheduleProblem("0 3 31 2 *"); // "day of month 31 never occurs in month 2"
 * ```
 */
export function cronScheduleProblem(schedule: string): string | null {
  const parts = schedule.trim().split(/\s+/);
  if (parts.length !== 5) return `must have 5 fields (minute hour day month weekday)`;
  const values: Set<number>[] = [];
  for (let i = 0; i < 5; i++) {
    const f = FIELDS[i];
    const size = f.max - f.min + 1;
    const value = (token: string): number | string => {
      const named = f.names.indexOf(token.toUpperCase());
      if (named >= 0) return named + 1;
      if (!/^\d+$/.test(token)) return `${f.name} "${token}" is not a number`;
      const n = Number(token);
      if (n < f.min || n > f.max) {
        return `${f.name} ${n} is out of range ${f.min}-${f.max}` +
          (f.name === "day of week" ? " (or SUN-SAT)" : "");
      }
      return n;
    };
    const seen = new Set<number>();
    for (const item of parts[i].split(",")) {
      const m = /^([^/]+)(?:\/(\d+))?$/.exec(item);
      if (!m) return `${f.name} "${item}" is not valid`;
      const step = m[2] === undefined ? 1 : Number(m[2]);
      if (m[2] !== undefined && (step < 1 || step >= size)) {
        return `${f.name} step ${m[2]} must be 1-${size - 1}`;
      }
      let lo = f.min, hi = f.max;
      if (m[1] !== "*") {
        const [a, b, extra] = m[1].split("-");
        if (extra !== undefined) return `${f.name} "${item}" is not valid`;
        const first = value(a);
        if (typeof first === "string") return first;
        lo = first;
        // "a/n" runs from a to the end of the field; a lone "a" is just a.
        hi = b === undefined ? (m[2] === undefined ? first : f.max) : f.max;
        if (b !== undefined) {
          const last = value(b);
          if (typeof last === "string") return last;
          if (last < first) return `${f.name} range ${m[1]} runs backwards`;
          hi = last;
        }
      }
      for (let v = lo; v <= hi; v += step) seen.add(v);
    }
    values.push(seen);
  }
  const months = [...values[3]];
  const days = [...values[2]];
  if (!days.some((d) => months.some((mo) => d <= MONTH_DAYS[mo - 1]))) {
    return `day of month ${parts[2]} never occurs in month ${parts[3]}`;
  }
  return null;
}
