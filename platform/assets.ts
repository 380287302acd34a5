/**
 * Static assets as Cloudflare serves them, for the local platform: the request routing of
 * workers-shared's router worker (`run_worker_first`, then "can the assets serve this?") and the
 * resolution of its asset worker (`html_handling`, `not_found_handling`, 307s to the canonical
 * path, ETags). Pure functions over an index (path → hash); the bytes come from a `read` callback.
 *
 * Why not the real asset worker: @cloudflare/workers-shared ships it only as a built Worker that
 * needs Cloudflare's KV layout and binary manifest; its resolution rules are what is kept here, in
 * the same order, so each html_handling mode answers as it does on Cloudflare (tests: assets.test.ts).
 */
import { assertNever } from "../lib/result.ts";
import type { AssetsConfig } from "../schemas/deploy.schema.ts";

/** One asset as the runtime knows it. */
export interface AssetEntry {
  hash: string;
  size: number;
  content_type?: string;
}

/** The assets of a version: URL path → entry. */
export type AssetIndex = Readonly<Record<string, AssetEntry>>;

/** Reads an asset's bytes by hash (null if the store lost it). */
export type AssetReader = (hash: string) => Promise<ArrayBuffer | null>;

type HtmlHandling = NonNullable<AssetsConfig["html_handling"]>;
type Step = { serve: string } | { redirect: string; to: string };
type Intent = { serve: string; status: 200 | 404 } | { redirect: string } | null;

/**
 * The asset worker's lookups for `pathname` under each html_handling mode, in its order: serve a
 * file if it exists, or redirect to `to` when `to` would serve that same file.
 */
function steps(mode: HtmlHandling, p: string): Step[] {
  const cut = (suffix: string) => p.slice(0, -suffix.length);
  switch (mode) {
    case "none":
      return [{ serve: p }];
    case "auto-trailing-slash": {
      const lead: Step[] = p.endsWith("/index")
        ? [
            { serve: p },
            { redirect: `${p}.html`, to: cut("index") },
            { redirect: `${cut("/index")}.html`, to: cut("/index") },
          ]
        : p.endsWith("/index.html")
          ? [
              { redirect: p, to: cut("index.html") },
              { redirect: `${cut("/index.html")}.html`, to: cut("/index.html") },
            ]
          : p.endsWith("/")
            ? [{ serve: `${p}index.html` }, { redirect: `${cut("/")}.html`, to: cut("/") }]
            : p.endsWith(".html")
              ? [
                  { redirect: p, to: cut(".html") },
                  { redirect: `${cut(".html")}/index.html`, to: `${cut(".html")}/` },
                ]
              : [];
      return [...lead, { serve: p }, { serve: `${p}.html` }, { redirect: `${p}/index.html`, to: `${p}/` }];
    }
    case "force-trailing-slash": {
      const lead: Step[] = p.endsWith("/index")
        ? [
            { serve: p },
            { redirect: `${p}.html`, to: cut("index") },
            { redirect: `${cut("/index")}.html`, to: cut("index") },
          ]
        : p.endsWith("/index.html")
          ? [
              { redirect: p, to: cut("index.html") },
              { redirect: `${cut("/index.html")}.html`, to: cut("index.html") },
            ]
          : p.endsWith("/")
            ? [{ serve: `${p}index.html` }, { serve: `${cut("/")}.html` }]
            : p.endsWith(".html")
              ? [
                  { redirect: p, to: `${cut(".html")}/` },
                  { serve: p },
                  { redirect: `${cut(".html")}/index.html`, to: `${cut(".html")}/` },
                ]
              : [];
      return [
        ...lead,
        { serve: p },
        { redirect: `${p}.html`, to: `${p}/` },
        { redirect: `${p}/index.html`, to: `${p}/` },
      ];
    }
    case "drop-trailing-slash": {
      const lead: Step[] = p.endsWith("/index")
        ? [
            { serve: p },
            ...(p === "/index"
              ? [{ redirect: "/index.html", to: "/" }]
              : [
                  { redirect: `${cut("/index")}.html`, to: cut("/index") },
                  { redirect: `${p}.html`, to: cut("/index") },
                ]),
          ]
        : p.endsWith("/index.html")
          ? p === "/index.html"
            ? [{ redirect: "/index.html", to: "/" }]
            : [
                { redirect: p, to: cut("/index.html") },
                { serve: p },
                { redirect: `${cut("/index.html")}.html`, to: cut("/index.html") },
              ]
          : p.endsWith("/")
            ? p === "/"
              ? [{ serve: "/index.html" }]
              : [
                  { redirect: `${cut("/")}.html`, to: cut("/") },
                  { redirect: `${cut("/")}/index.html`, to: cut("/") },
                ]
            : p.endsWith(".html")
              ? [
                  { redirect: p, to: cut(".html") },
                  { redirect: `${cut(".html")}/index.html`, to: cut(".html") },
                ]
              : [];
      return [...lead, { serve: p }, { serve: `${p}.html` }, { serve: `${p}/index.html` }];
    }
    default:
      return assertNever(mode);
  }
}

function resolve(index: AssetIndex, pathname: string, mode: HtmlHandling, redirects: boolean): Intent {
  for (const step of steps(mode, pathname)) {
    if ("serve" in step) {
      if (index[step.serve]) return { serve: step.serve, status: 200 };
      continue;
    }
    const file = index[step.redirect];
    if (!redirects || !file || index[step.to]) continue;
    // Only a redirect to a URL that then serves this very file (never into a 404).
    const target = resolve(index, step.to, mode, false);
    if (target && "serve" in target && index[target.serve]?.hash === file.hash) return { redirect: step.to };
  }
  return null;
}

function notFound(index: AssetIndex, pathname: string, handling: AssetsConfig["not_found_handling"]): Intent {
  if (handling === "single-page-application")
    return index["/index.html"] ? { serve: "/index.html", status: 200 } : null;
  if (handling === "404-page") {
    for (let dir = pathname; dir !== "";) {
      dir = dir.slice(0, dir.lastIndexOf("/"));
      if (index[`${dir}/404.html`]) return { serve: `${dir}/404.html`, status: 404 };
    }
  }
  return null;
}

function decodePath(pathname: string): string {
  return pathname
    .split("/")
    .map((segment) => {
      try {
        return decodeURIComponent(segment);
      } catch {
        return segment;
      }
    })
    .join("/")
    .replace(/\/+/g, "/");
}

function encodePath(pathname: string): string {
  return pathname
    .split("/")
    .map((segment) => encodeURIComponent(segment))
    .join("/");
}

/**
 * The asset answer for `request` (what `env.ASSETS.fetch` returns), or null when no asset and no
 * not-found fallback applies. 307 to the canonical path, 405 for methods other than GET/HEAD on an
 * asset, 304 for a matching If-None-Match.
 */
export async function serveAsset(
  request: Request,
  index: AssetIndex,
  config: AssetsConfig,
  read: AssetReader,
): Promise<Response | null> {
  const url = new URL(request.url);
  const decoded = decodePath(url.pathname);
  const intent =
    resolve(index, decoded, config.html_handling ?? "auto-trailing-slash", true) ??
    notFound(index, decoded, config.not_found_handling);
  if (!intent) return null;
  if (!["GET", "HEAD"].includes(request.method.toUpperCase())) {
    return new Response(null, { status: 405, headers: { Allow: "GET, HEAD" } });
  }
  const destination = encodePath("redirect" in intent ? intent.redirect : decoded);
  if ("redirect" in intent || (destination !== url.pathname && intent.status === 200)) {
    return new Response(null, { status: 307, headers: { Location: `${destination}${url.search}` } });
  }
  const entry = index[intent.serve];
  if (!entry) return null;
  const etag = `"${entry.hash}"`;
  const headers = new Headers({
    "Content-Type": entry.content_type ?? "application/octet-stream",
    ETag: etag,
    "Cache-Control": "public, max-age=0, must-revalidate",
  });
  const ifNoneMatch = request.headers.get("If-None-Match");
  if (ifNoneMatch === etag || ifNoneMatch === `W/${etag}`) return new Response(null, { status: 304, headers });
  const bytes = await read(entry.hash);
  if (bytes === null) return new Response("asset content missing", { status: 500 });
  return new Response(request.method.toUpperCase() === "HEAD" ? null : bytes, { status: intent.status, headers });
}

/** Whether `run_worker_first` sends `pathname` to the Worker before assets are looked at. */
export function runsWorkerFirst(pathname: string, rule: AssetsConfig["run_worker_first"]): boolean {
  if (rule === undefined || typeof rule === "boolean") return rule === true;
  const matches = (pattern: string) =>
    new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replaceAll("*", ".*")}$`).test(pathname);
  const negative = rule.filter((pattern) => pattern.startsWith("!")).map((pattern) => pattern.slice(1));
  const positive = rule.filter((pattern) => !pattern.startsWith("!"));
  return positive.some(matches) && !negative.some(matches);
}

/**
 * Compatibility date from which a navigation request (`Sec-Fetch-Mode: navigate`) may get the
 * not-found fallback (SPA index or 404 page) before the Worker (`assets_navigation_prefers_asset_serving`).
 */
const NAVIGATION_PREFERS_ASSETS_FROM = "2025-04-01";

/**
 * The router worker's decision for a request to a Worker with assets: the asset answer, or null to
 * run the Worker. With a Worker behind them, assets answer a miss with the not-found fallback only
 * for browser navigations (on compatibility dates that enable it); other misses go to the Worker.
 */
export async function routeToAssets(
  request: Request,
  index: AssetIndex,
  config: AssetsConfig,
  compatibilityDate: string,
  read: AssetReader,
): Promise<Response | null> {
  if (runsWorkerFirst(new URL(request.url).pathname, config.run_worker_first)) return null;
  const navigation =
    request.headers.get("Sec-Fetch-Mode") === "navigate" && compatibilityDate >= NAVIGATION_PREFERS_ASSETS_FROM;
  return serveAsset(request, index, navigation ? config : { ...config, not_found_handling: "none" }, read);
}
