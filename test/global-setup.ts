/**
 * Vitest globalSetup (runs in Node, once per run): starts the fake Cloudflare API on an ephemeral
 * port of 127.0.0.1 and provides its base URL; vitest.config.ts hands it to the Worker under test
 * as the `CF_API_BASE_URL` binding. The teardown stops it.
 */
import type { TestProject } from "vitest/node";
import { FakeCloudflareApi } from "./fake-cloudflare-api/server.ts";

declare module "vitest" {
  export interface ProvidedContext {
    /** Base URL of the fake Workers for Platforms API, e.g. `http://127.0.0.1:4711/client/v4`. */
    cfApiBaseUrl: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const api = new FakeCloudflareApi();
  project.provide("cfApiBaseUrl", await api.start());
  return () => api.stop();
}
