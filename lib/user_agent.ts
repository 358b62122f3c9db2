/**
 * A short, human description of a browser from its User-Agent header ("Firefox 128 on
 * Linux"), for the sessions page. Coarse on purpose: it helps a person recognise their own
 * devices, and decides nothing.
 *
 * @example
 * ```ts
 * describeUserAgent("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) … Version/17.4 Safari/605.1.15");
 * // "Safari 17 on macOS"
 * ```
 * @module
 */

/** Browser and operating system names parsed from a User-Agent. */
export interface DeviceDescription {
  browser: string;
  os: string;
  /** "mobile", "tablet" or "desktop". */
  kind: "mobile" | "tablet" | "desktop";
}

const BROWSERS: [RegExp, string][] = [
  [/Edg(?:e|A|iOS)?\/(\d+)/, "Edge"],
  [/OPR\/(\d+)/, "Opera"],
  [/SamsungBrowser\/(\d+)/, "Samsung Internet"],
  [/Firefox\/(\d+)/, "Firefox"],
  [/FxiOS\/(\d+)/, "Firefox"],
  [/CriOS\/(\d+)/, "Chrome"],
  [/HeadlessChrome\/(\d+)/, "Headless Chrome"],
  [/Chrom(?:e|ium)\/(\d+)/, "Chrome"],
  [/Version\/(\d+)[\d.]* (?:Mobile\/\S+ )?Safari\//, "Safari"],
  [/curl\/(\d+)/, "curl"],
];

const SYSTEMS: [RegExp, string][] = [
  [/Windows NT/, "Windows"],
  [/iPhone|iPod/, "iOS"],
  [/iPad/, "iPadOS"],
  [/Mac OS X|Macintosh/, "macOS"],
  [/Android/, "Android"],
  [/CrOS/, "ChromeOS"],
  [/Linux/, "Linux"],
];

/**
 * Parses a User-Agent into browser, OS and device kind ("Unknown" when unsure).
 *
 * @example
 * ```ts
 * parseUserAgent(ua); // { browser: "Firefox 128", os: "Linux", kind: "desktop" }
 * ```
 */
export function parseUserAgent(ua: string): DeviceDescription {
  let browser = "Unknown browser";
  for (const [re, name] of BROWSERS) {
    const m = re.exec(ua);
    if (m) {
      browser = `${name} ${m[1]}`;
      break;
    }
  }
  const os = SYSTEMS.find(([re]) => re.test(ua))?.[1] ?? "an unknown system";
  const kind = /iPad|Tablet/.test(ua)
    ? "tablet"
    : /Mobi|iPhone|Android.*Mobile/.test(ua)
    ? "mobile"
    : "desktop";
  return { browser, os, kind };
}

/**
 * "Firefox 128 on Linux".
 *
 * @example
 * ```ts
 * describeUserAgent(session.userAgent); // "Firefox 128 on Linux"
 * ```
 */
export function describeUserAgent(ua: string): string {
  if (!ua.trim()) return "Unknown device";
  const d = parseUserAgent(ua);
  return `${d.browser} on ${d.os}`;
}
