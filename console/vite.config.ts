import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

/**
 * The on-call console: a Preact app built to static files that the Worker serves from Workers
 * static assets under /console (wrangler.toml [assets]). Everything is bundled: no CDN at run
 * time, and no inline script or style, so the console's CSP can forbid both.
 */
export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  base: "/console/",
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: {
    // The assets directory is console/dist; files live under its console/ so URLs are /console/...
    outDir: "dist/console",
    emptyOutDir: true,
    // Inline assets would be data: URLs for scripts; keep every file a file.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    reportCompressedSize: false,
  },
  logLevel: "warn",
});
