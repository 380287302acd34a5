import type { AssetFile } from "../schemas/deploy.schema.ts";

/** A static asset as a deploy manifest carries it: base64 content, its size, a 32-hex SHA-256 prefix. */
export async function htmlAsset(path: string, text: string): Promise<AssetFile> {
  const bytes = new TextEncoder().encode(text);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  const hash = [...digest]
    .map((byte) => byte.toString(16).padStart(2, "0"))
    .join("")
    .slice(0, 32);
  return { path, hash, size: bytes.byteLength, content_type: "text/html", content: btoa(text) };
}
