/**
 * Bundles every island in islands/ into one minified browser file with a content-hashed
 * name (static/build/islands-<hash>.js) and writes static/build/manifest.json.
 *
 * Run: `deno task build`. Uses `deno bundle` (esbuild underneath).
 * @module
 */
const root = new URL("../", import.meta.url);
const islandsDir = new URL("islands/", root);
const buildDir = new URL("static/build/", root);
const tmpDir = new URL(".tmp/", root);

const names: string[] = [];
for await (const e of Deno.readDir(islandsDir)) {
  if (e.isFile && /^[A-Z][A-Za-z0-9]*\.tsx$/.test(e.name)) names.push(e.name.replace(/\.tsx$/, ""));
}
names.sort();

await Deno.mkdir(tmpDir, { recursive: true });
const entry = new URL("islands_entry.ts", tmpDir);
await Deno.writeTextFile(
  entry,
  [
    `import { hydrateIslands } from "../islands/_client.ts";`,
    ...names.map((n) => `import ${n} from "../islands/${n}.tsx";`),
    `// deno-lint-ignore no-explicit-any`,
    `hydrateIslands({ ${names.join(", ")} } as any);`,
    "",
  ].join("\n"),
);

const out = new URL("islands.bundle.js", tmpDir);
const started = performance.now();
const result = await new Deno.Command(Deno.execPath(), {
  args: [
    "bundle",
    "--quiet",
    "--platform",
    "browser",
    "--minify",
    "--output",
    out.pathname,
    entry.pathname,
  ],
  cwd: root.pathname,
  stdout: "inherit",
  stderr: "inherit",
}).output();
if (!result.success) {
  console.error("Island bundle failed.");
  Deno.exit(1);
}

const code = await Deno.readFile(out);
const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", code));
const hash = [...digest.slice(0, 6)].map((b) => b.toString(16).padStart(2, "0")).join("");
const file = `islands-${hash}.js`;

await Deno.remove(buildDir, { recursive: true }).catch(() => {});
await Deno.mkdir(buildDir, { recursive: true });
await Deno.writeFile(new URL(file, buildDir), code);
await Deno.writeTextFile(
  new URL("manifest.json", buildDir),
  JSON.stringify({ islands: file, names }, null, 2) + "\n",
);
console.log(
  `Islands: ${names.join(", ")} → static/build/${file} ` +
    `(${(code.length / 1024).toFixed(1)} KiB, ${Math.round(performance.now() - started)} ms)`,
);
