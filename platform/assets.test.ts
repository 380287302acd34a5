import { describe, expect, it } from "vitest";
import { type AssetIndex, routeToAssets, runsWorkerFirst, serveAsset } from "./assets.ts";
import type { AssetsConfig } from "../schemas/deploy.schema.ts";

const FILES: Record<string, string> = {
  "/index.html": "home",
  "/about.html": "about",
  "/blog/index.html": "blog",
  "/docs/404.html": "docs 404",
  "/404.html": "root 404",
  "/style.css": "body{}",
  "/logo": "binary logo",
};
const INDEX: AssetIndex = Object.fromEntries(
  Object.entries(FILES).map(([path, text], position) => [
    path,
    { hash: position.toString(16).padStart(32, "0"), size: text.length, content_type: "text/html" },
  ]),
);
const BY_HASH = new Map(Object.entries(FILES).map(([path, text]) => [INDEX[path]?.hash, text]));
const read = async (hash: string) => {
  const text = BY_HASH.get(hash);
  return text === undefined ? null : new Uint8Array(new TextEncoder().encode(text)).buffer;
};

async function answer(path: string, config: AssetsConfig, init?: RequestInit): Promise<string> {
  const response = await serveAsset(new Request(`http://tenant.test${path}`, init), INDEX, config, read);
  if (response === null) return "none";
  if (response.status === 307) return `307 ${response.headers.get("Location")}`;
  return `${response.status} ${await response.text()}`;
}

describe("serveAsset: html_handling as Cloudflare's asset worker resolves it", () => {
  const cases: [AssetsConfig["html_handling"], string, string][] = [
    ["auto-trailing-slash", "/", "200 home"],
    ["auto-trailing-slash", "/index.html", "307 /"],
    ["auto-trailing-slash", "/about", "200 about"],
    ["auto-trailing-slash", "/about.html", "307 /about"],
    ["auto-trailing-slash", "/about/", "307 /about"],
    ["auto-trailing-slash", "/blog", "307 /blog/"],
    ["auto-trailing-slash", "/blog/", "200 blog"],
    ["auto-trailing-slash", "/blog/index.html", "307 /blog/"],
    ["auto-trailing-slash", "/logo", "200 binary logo"],
    ["force-trailing-slash", "/about", "307 /about/"],
    ["force-trailing-slash", "/about/", "200 about"],
    ["force-trailing-slash", "/blog", "307 /blog/"],
    ["force-trailing-slash", "/blog/", "200 blog"],
    ["drop-trailing-slash", "/about", "200 about"],
    ["drop-trailing-slash", "/about/", "307 /about"],
    ["drop-trailing-slash", "/blog", "200 blog"],
    ["drop-trailing-slash", "/blog/", "307 /blog"],
    ["drop-trailing-slash", "/", "200 home"],
    ["none", "/about", "none"],
    ["none", "/about.html", "200 about"],
    ["none", "/", "none"],
  ];
  for (const [mode, path, expected] of cases) {
    it(`${mode}: ${path} → ${expected}`, async () => {
      expect(await answer(path, { html_handling: mode })).toBe(expected);
    });
  }
  it("keeps the query string on redirects", async () => {
    expect(await answer("/about.html?x=1", {})).toBe("307 /about?x=1");
  });
});

describe("serveAsset: not_found_handling", () => {
  it("none: a miss is no answer (the Worker, or a plain 404, takes it)", async () => {
    expect(await answer("/missing", { not_found_handling: "none" })).toBe("none");
  });
  it("404-page: the nearest 404.html up the path, with status 404", async () => {
    expect(await answer("/docs/a/b", { not_found_handling: "404-page" })).toBe("404 docs 404");
    expect(await answer("/elsewhere", { not_found_handling: "404-page" })).toBe("404 root 404");
  });
  it("single-page-application: /index.html with status 200", async () => {
    expect(await answer("/app/route/42", { not_found_handling: "single-page-application" })).toBe("200 home");
  });
});

describe("serveAsset: HTTP details", () => {
  it("ETag, 304 on If-None-Match, HEAD without a body, 405 for other methods", async () => {
    const first = await serveAsset(new Request("http://t.test/style.css"), INDEX, {}, read);
    const etag = first?.headers.get("ETag") ?? "";
    expect(etag).toMatch(/^"[0-9a-f]{32}"$/);
    const again = await serveAsset(
      new Request("http://t.test/style.css", { headers: { "If-None-Match": etag } }),
      INDEX,
      {},
      read,
    );
    expect(again?.status).toBe(304);
    expect(await answer("/style.css", {}, { method: "HEAD" })).toBe("200 ");
    expect(await answer("/style.css", {}, { method: "POST" })).toBe("405 ");
  });
});

async function route(path: string, config: AssetsConfig, headers: HeadersInit = {}, date = "2026-11-01") {
  const response = await routeToAssets(new Request(`http://t.test${path}`, { headers }), INDEX, config, date, read);
  return response === null ? "worker" : `${response.status} ${await response.text()}`;
}

describe("routeToAssets: the router in front of a Worker", () => {
  it("run_worker_first: true sends everything to the Worker; patterns with ! negations pick routes", async () => {
    expect(await route("/about", { run_worker_first: true })).toBe("worker");
    const config: AssetsConfig = { run_worker_first: ["/api/*", "!/api/docs/*"] };
    expect(await route("/api/x", config)).toBe("worker");
    expect(await route("/about", config)).toBe("200 about");
    expect(runsWorkerFirst("/api/docs/a", config.run_worker_first)).toBe(false);
    expect(runsWorkerFirst("/apix", config.run_worker_first)).toBe(false);
  });
  it("a miss goes to the Worker, except a browser navigation that gets the fallback", async () => {
    const spa: AssetsConfig = { not_found_handling: "single-page-application" };
    expect(await route("/app/1", spa)).toBe("worker");
    expect(await route("/app/1", spa, { "Sec-Fetch-Mode": "navigate" })).toBe("200 home");
    // Before 2025-04-01 navigations are not preferred for assets.
    expect(await route("/app/1", spa, { "Sec-Fetch-Mode": "navigate" }, "2024-09-01")).toBe("worker");
  });
});
