/**
 * Packs a Worker's static assets directory (wrangler's `assets.directory`) into the deploy
 * manifest: every file as `{path, hash, size, content_type, content}`, hashed so the platform can
 * store and upload each file by content (Cloudflare's upload session takes 32-hex hashes).
 * `.assetsignore` is honoured with gitignore semantics (the `ignore` package), as wrangler does.
 */
import { createHash } from "node:crypto";
import { readFile, readdir } from "node:fs/promises";
import path from "node:path";
import ignore from "ignore";
import mime from "mime";
import type { AssetFile } from "../schemas/deploy.schema.ts";

/** Cloudflare's per-file limit for static assets. */
export const ASSET_FILE_LIMIT_BYTES = 25 * 1024 * 1024;

/** Files wrangler never uploads as assets (`.assetsignore` itself; `_headers`/`_redirects` are config). */
const NEVER_UPLOADED = new Set([".assetsignore", "_headers", "_redirects", "_worker.js"]);

/** The content hash the manifest and the upload session use: the first 32 hex digits of SHA-256. */
export function assetHash(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex").slice(0, 32);
}

async function walk(root: string, dir: string, out: string[]): Promise<void> {
  for (const entry of await readdir(path.join(root, dir), { withFileTypes: true })) {
    const relative = dir === "" ? entry.name : `${dir}/${entry.name}`;
    if (entry.isDirectory()) await walk(root, relative, out);
    else if (entry.isFile()) out.push(relative);
  }
}

export interface PackedAssets {
  files: AssetFile[];
  /** The directory's `_redirects` and `_headers` files (config, not assets), if present. */
  redirects?: string;
  headers?: string;
  /** Files left out, and why (for the user). */
  skipped: { path: string; reason: string }[];
  bytes: number;
}

/** Reads every asset under `directory`; throws an Error naming the file that cannot go. */
export async function packAssets(directory: string): Promise<PackedAssets> {
  const names: string[] = [];
  await walk(directory, "", names);
  const filter = ignore();
  const ignoreFile = await readFile(path.join(directory, ".assetsignore"), "utf8").catch(() => "");
  filter.add(ignoreFile);
  const files: AssetFile[] = [];
  const skipped: PackedAssets["skipped"] = [];
  let total = 0;
  const config: Pick<PackedAssets, "redirects" | "headers"> = {};
  for (const name of names.toSorted()) {
    if (name === "_redirects" || name === "_headers") {
      const text = await readFile(path.join(directory, name), "utf8");
      if (name === "_redirects") config.redirects = text;
      else config.headers = text;
      skipped.push({ path: name, reason: "sent as config: applied on Cloudflare, not yet by the local platform" });
      continue;
    }
    if (NEVER_UPLOADED.has(name)) continue;
    if (filter.ignores(name)) continue;
    const bytes = await readFile(path.join(directory, name));
    if (bytes.byteLength > ASSET_FILE_LIMIT_BYTES) {
      throw new Error(`${path.join(directory, name)} is ${bytes.byteLength} bytes; an asset may be at most 25 MiB`);
    }
    total += bytes.byteLength;
    const type = mime.getType(name);
    files.push({
      path: `/${name}`,
      hash: assetHash(bytes),
      size: bytes.byteLength,
      ...(type === null ? {} : { content_type: type }),
      content: bytes.toString("base64"),
    });
  }
  return { files, skipped, bytes: total, ...config };
}
