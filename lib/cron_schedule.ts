/**
 * Checks a 5-field cron schedule (minute hour day-of-month month day-of-week, UTC) the way
 * Deno.cron will read it, so a bad BACKUP_CRON is one clear line at start-up instead of a
 * stack trace from Deno.cron.
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
  { name: "day of week", min: 0, max: 7, names: ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"] },
];

/**
 * Why `schedule` is not a valid 5-field cron schedule, or null when it is.
 *
 * @example
 * ```ts
 * cronScheduleProblem("61 * * * *"); // "minute 61 is out of range 0-59"
 * ```
 */
export function cronScheduleProblem(schedule: string): string | null {
  const parts = schedule.trim().split(/\s+/);
  if (parts.length !== 5) return `must have 5 fields (minute hour day month weekday)`;
  for (let i = 0; i < 5; i++) {
    const f = FIELDS[i];
    const value = (token: string): number | string => {
      const named = f.names.indexOf(token.toUpperCase());
      if (named >= 0) return named + (f.name === "month" ? 1 : 0);
      if (!/^\d+$/.test(token)) return `${f.name} "${token}" is not a number`;
      const n = Number(token);
      return n < f.min || n > f.max ? `${f.name} ${n} is out of range ${f.min}-${f.max}` : n;
    };
    for (const item of parts[i].split(",")) {
      const m = /^([^/]+)(?:\/(\d+))?$/.exec(item);
      if (!m) return `${f.name} "${item}" is not valid`;
      if (m[2] !== undefined && Number(m[2]) < 1) return `${f.name} step must be at least 1`;
      if (m[1] === "*") continue;
      const [a, b, extra] = m[1].split("-");
      if (extra !== undefined) return `${f.name} "${item}" is not valid`;
      const lo = value(a);
      if (typeof lo === "string") return lo;
      if (b !== undefined) {
        const hi = value(b);
        if (typeof hi === "string") return hi;
        if (hi < lo) return `${f.name} range ${m[1]} runs backwards`;
      }
    }
  }
  return null;
}
