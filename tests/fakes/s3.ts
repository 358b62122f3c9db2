/**
 * A small S3-compatible server for tests that, unlike s3rver, VERIFIES every request's
 * AWS Signature V4 (credential, signed headers, canonical request, payload hash), so the
 * real `aws4fetch` client is tested end to end. Supports what Lodge's backups use:
 * Put/Get/Delete object, ListObjectsV2 (with continuation), and multipart upload.
 *
 * @example
 * ```ts
 * const s3 = startFakeS3({ accessKeyId: "AKID", secretAccessKey: "secret", bucket: "b" });
 * // ... BACKUP_S3_ENDPOINT = s3.endpoint ...
 * await s3.close();
 * ```
 * @module
 */
import { createHash, createHmac } from "node:crypto";

/** A running fake. */
export interface FakeS3 {
  endpoint: string;
  objects: Map<string, Uint8Array>;
  /** Requests refused for a bad signature. */
  rejected: number;
  /** Requests by operation name. */
  calls: string[];
  close(): Promise<void>;
}

function rfc3986(s: string): string {
  return encodeURIComponent(s).replace(
    /[!'()*]/g,
    (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase(),
  );
}

function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac("sha256", key).update(data).digest();
}

function xmlError(status: number, code: string): Response {
  return new Response(`<?xml version="1.0"?><Error><Code>${code}</Code></Error>`, {
    status,
    headers: { "content-type": "application/xml" },
  });
}

/** Starts the fake on 127.0.0.1, a random port. */
export function startFakeS3(opts: {
  accessKeyId: string;
  secretAccessKey: string;
  region?: string;
  bucket: string;
  /** Keys per ListObjectsV2 page (small to test continuation). */
  pageSize?: number;
}): FakeS3 {
  const region = opts.region ?? "auto";
  const objects = new Map<string, Uint8Array>();
  const uploads = new Map<string, Map<number, Uint8Array>>();
  const state = { rejected: 0, calls: [] as string[] };

  function verify(req: Request, url: URL, body: Uint8Array): string | null {
    const auth = req.headers.get("authorization") ?? "";
    const m =
      /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/s3\/aws4_request, SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$/
        .exec(auth);
    if (!m) return "malformed authorization";
    const [, akid, date, reg, signedHeaders, signature] = m;
    if (akid !== opts.accessKeyId) return "unknown access key";
    if (reg !== region) return "wrong region";
    const amzDate = req.headers.get("x-amz-date") ?? "";
    if (!amzDate.startsWith(date)) return "date mismatch";
    const when = Date.parse(
      amzDate.replace(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/, "$1-$2-$3T$4:$5:$6Z"),
    );
    if (!(Math.abs(Date.now() - when) < 15 * 60_000)) return "request time skewed";
    const payloadHash = req.headers.get("x-amz-content-sha256") ?? "";
    if (payloadHash !== createHash("sha256").update(body).digest("hex")) {
      return "payload hash mismatch (or unsigned payload)";
    }
    const names = signedHeaders.split(";");
    if (!names.includes("host") || !names.includes("x-amz-content-sha256")) {
      return "host and payload hash must be signed";
    }
    const canonicalHeaders = names.map((h) =>
      `${h}:${(req.headers.get(h) ?? "").trim().replace(/\s+/g, " ")}\n`
    ).join("");
    const path = rfc3986(decodeURIComponent(url.pathname)).replace(/%2F/g, "/");
    const query = [...url.searchParams].map(([k, v]) => [rfc3986(k), rfc3986(v)])
      .sort(([a, x], [b, y]) => a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0)
      .map((p) => p.join("=")).join("&");
    const canonical = [req.method, path, query, canonicalHeaders, signedHeaders, payloadHash]
      .join("\n");
    const scope = `${date}/${region}/s3/aws4_request`;
    const toSign = [
      "AWS4-HMAC-SHA256",
      amzDate,
      scope,
      createHash("sha256").update(canonical).digest("hex"),
    ].join("\n");
    const kDate = hmac(`AWS4${opts.secretAccessKey}`, date);
    const kSigning = hmac(hmac(hmac(kDate, region), "s3"), "aws4_request");
    const expected = createHmac("sha256", kSigning).update(toSign).digest("hex");
    return expected === signature ? null : "signature mismatch";
  }

  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const url = new URL(req.url);
    const body = new Uint8Array(await req.arrayBuffer());
    const problem = verify(req, url, body);
    if (problem) {
      state.rejected++;
      return xmlError(403, "SignatureDoesNotMatch");
    }
    const [, bucket, ...rest] = url.pathname.split("/");
    if (decodeURIComponent(bucket) !== opts.bucket) return xmlError(404, "NoSuchBucket");
    const key = rest.map(decodeURIComponent).join("/");
    const q = url.searchParams;
    if (req.method === "GET" && !key && q.get("list-type") === "2") {
      state.calls.push("ListObjectsV2");
      const prefix = q.get("prefix") ?? "";
      const after = q.get("continuation-token") ?? "";
      const all = [...objects.keys()].filter((k) => k.startsWith(prefix) && k > after).sort();
      const page = all.slice(0, opts.pageSize ?? 1000);
      const truncated = all.length > page.length;
      const xml = `<?xml version="1.0"?><ListBucketResult><IsTruncated>${truncated}</IsTruncated>${
        page.map((k) => `<Contents><Key>${k.replaceAll("&", "&amp;")}</Key></Contents>`).join("")
      }${
        truncated ? `<NextContinuationToken>${page.at(-1)}</NextContinuationToken>` : ""
      }</ListBucketResult>`;
      return new Response(xml, { headers: { "content-type": "application/xml" } });
    }
    if (!key) return xmlError(400, "InvalidRequest");
    if (req.method === "POST" && q.has("uploads")) {
      state.calls.push("CreateMultipartUpload");
      const id = crypto.randomUUID();
      uploads.set(id, new Map());
      return new Response(
        `<?xml version="1.0"?><InitiateMultipartUploadResult><UploadId>${id}</UploadId></InitiateMultipartUploadResult>`,
      );
    }
    if (req.method === "PUT" && q.has("uploadId")) {
      state.calls.push("UploadPart");
      const parts = uploads.get(q.get("uploadId")!);
      if (!parts) return xmlError(404, "NoSuchUpload");
      parts.set(Number(q.get("partNumber")), body);
      return new Response(null, { headers: { etag: `"part-${q.get("partNumber")}"` } });
    }
    if (req.method === "POST" && q.has("uploadId")) {
      state.calls.push("CompleteMultipartUpload");
      const parts = uploads.get(q.get("uploadId")!);
      if (!parts) return xmlError(404, "NoSuchUpload");
      const numbers = [...new TextDecoder().decode(body).matchAll(/<PartNumber>(\d+)</g)]
        .map((m) => Number(m[1]));
      const chunks = numbers.map((n) => parts.get(n));
      if (chunks.some((c) => !c)) return xmlError(400, "InvalidPart");
      const total = chunks.reduce((n, c) => n + c!.length, 0);
      const joined = new Uint8Array(total);
      let off = 0;
      for (const c of chunks) {
        joined.set(c!, off);
        off += c!.length;
      }
      objects.set(key, joined);
      uploads.delete(q.get("uploadId")!);
      return new Response(`<?xml version="1.0"?><CompleteMultipartUploadResult/>`);
    }
    if (req.method === "DELETE" && q.has("uploadId")) {
      uploads.delete(q.get("uploadId")!);
      return new Response(null, { status: 204 });
    }
    if (req.method === "PUT") {
      state.calls.push("PutObject");
      objects.set(key, body);
      return new Response(null, { headers: { etag: '"x"' } });
    }
    if (req.method === "GET") {
      state.calls.push("GetObject");
      const obj = objects.get(key);
      return obj ? new Response(obj as Uint8Array<ArrayBuffer>) : xmlError(404, "NoSuchKey");
    }
    if (req.method === "DELETE") {
      state.calls.push("DeleteObject");
      objects.delete(key);
      return new Response(null, { status: 204 });
    }
    return xmlError(405, "MethodNotAllowed");
  });
  const addr = server.addr as Deno.NetAddr;
  return {
    endpoint: `http://127.0.0.1:${addr.port}`,
    objects,
    get rejected() {
      return state.rejected;
    },
    calls: state.calls,
    close: () => server.shutdown(),
  };
}
