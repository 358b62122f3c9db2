/**
 * Static assets: every file under static/ is read once at start-up and served from
 * memory. Files under static/build/ have content-hashed names and are served immutable.
 *
 * @example
 * ```ts
 * const assets = await loadAssets(new URL("../static/", import.meta.url));
 * assets.islandsScript; // "/static/build/islands-3f9a….js"
 * ```
 * @module
 */

/** One file ready to serve. */
export interface Asset {
  body: Uint8Array;
  type: string;
  etag: string;
  immutable: boolean;
}

/** The static files and the island bundle's public path. */
export interface Assets {
  files: Map<string, Asset>;
  /** `/static/build/islands-<hash>.js`, or null when the bundle has not been built. */
  islandsScript: string | null;
  /** `/static/app-<hash>.css` equivalent: the stylesheet path with a version query. */
  stylesheet: string;
}

const TYPES: Record<string, string> = {
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  svg: "image/svg+xml",
  png: "image/png",
  ico: "image/x-icon",
  json: "application/json",
  txt: "text/plain; charset=utf-8",
  map: "application/json",
};

async function walk(dir: URL, prefix: string, out: Map<string, Asset>) {
  for await (const e of Deno.readDir(dir)) {
    const url = new URL(e.name + (e.isDirectory ? "/" : ""), dir);
    const rel = prefix + e.name;
    if (e.isDirectory) {
      await walk(url, rel + "/", out);
    } else if (e.isFile) {
      const body = await Deno.readFile(url);
      const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", body));
      const etag = `"${
        [...digest.slice(0, 8)].map((b) => b.toString(16).padStart(2, "0")).join("")
      }"`;
      const ext = e.name.split(".").pop() ?? "";
      out.set("/static/" + rel, {
        body,
        type: TYPES[ext] ?? "application/octet-stream",
        etag,
        immutable: rel.startsWith("build/"),
      });
    }
  }
}

/** Reads static/ into memory and finds the island bundle through static/build/manifest.json. */
export async function loadAssets(
  dir: URL = new URL("../static/", import.meta.url),
): Promise<Assets> {
  const files = new Map<string, Asset>();
  await walk(dir, "", files);
  let islandsScript: string | null = null;
  const manifest = files.get("/static/build/manifest.json");
  if (manifest) {
    const parsed = JSON.parse(new TextDecoder().decode(manifest.body)) as { islands: string };
    islandsScript = `/static/build/${parsed.islands}`;
  } else {
    console.warn("static/build/manifest.json is missing: run `deno task build` for islands.");
  }
  const css = files.get("/static/app.css");
  const stylesheet = `/static/app.css?v=${css?.etag.replaceAll('"', "") ?? "0"}`;
  return { files, islandsScript, stylesheet };
}
