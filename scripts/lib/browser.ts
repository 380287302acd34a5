/**
 * Chromium from Debian's packages (`apt-get install chromium`), driven by playwright-core: no
 * browser download, ever (playwright-core has none). Each launch gets a fresh profile directory,
 * removed on close, and flags that keep the browser off the network: it talks to 127.0.0.1 only.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { type BrowserContext, chromium } from "playwright-core";

export const CHROMIUM = process.env.SHIPYARD_CHROMIUM ?? "/usr/bin/chromium";

const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export interface Browser {
  context: BrowserContext;
  close: () => Promise<void>;
}

/** Launches the system Chromium with a fresh profile; `close` ends it and deletes the profile. */
export async function launchChromium(viewport = { width: 1280, height: 900 }): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `no Chromium at ${CHROMIUM}: install Debian's package (apt-get update && apt-get install -y chromium) or set SHIPYARD_CHROMIUM`,
    );
  }
  const profile = mkdtempSync(path.join(tmpdir(), "shipyard-chromium-"));
  // The profile directory is Chromium's --user-data-dir; Playwright passes it for a persistent context.
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    viewport,
    timeout: 60_000,
  });
  return {
    context,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
