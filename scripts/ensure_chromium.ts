/**
 * Makes sure a Chromium for the browser tests is on this machine: uses CHROMIUM_PATH or
 * /usr/bin/chromium when present; otherwise, as root on Debian/Ubuntu, installs Debian's
 * `chromium` package with apt-get. Prints what it found and exits non-zero with a clear
 * message when it cannot get one.
 *
 * Run by `deno task test` before the tests; `.ci/run` uses the same task.
 * @module
 */
const candidates = [Deno.env.get("CHROMIUM_PATH"), "/usr/bin/chromium", "/usr/bin/chromium-browser"]
  .filter((p): p is string => !!p);

async function exists(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

for (const path of candidates) {
  if (await exists(path)) {
    console.log(`Chromium: ${path}`);
    Deno.exit(0);
  }
}

const isRoot = Deno.uid?.() === 0;
const hasApt = await exists("/usr/bin/apt-get");
if (!isRoot || !hasApt) {
  console.error(
    "Chromium is needed for the browser tests and was not found.\n" +
      "Install it (Debian/Ubuntu: `sudo apt-get install -y chromium`) or set CHROMIUM_PATH.",
  );
  Deno.exit(1);
}

console.log("Chromium not found: installing Debian's chromium package (about 30 s)…");
const run = (args: string[]) =>
  new Deno.Command("apt-get", {
    args,
    env: { DEBIAN_FRONTEND: "noninteractive" },
    stdout: "null",
    stderr: "inherit",
  }).output();
if (
  !(await run(["update", "-qq"])).success ||
  !(await run(["install", "-y", "-qq", "chromium"])).success
) {
  console.error("apt-get could not install chromium.");
  Deno.exit(1);
}
console.log("Chromium: /usr/bin/chromium (installed)");
