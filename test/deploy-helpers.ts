/**
 * Helpers for the deploy tests: the sample tenant as a manifest (its real sources, read with
 * Vite's `?raw`), signed webhook deliveries, and waiting for a deploy to finish.
 */
import { env, exports } from "cloudflare:workers";
import { vi } from "vitest";
import realtimeIndex from "../examples/realtime-tenant/src/index.js?raw";
import sampleIndex from "../examples/sample-tenant/src/index.js?raw";
import { signWebhook } from "../producers/webhook.ts";
import type { DeployManifest } from "../schemas/deploy.schema.ts";

export const BASE_URL = "http://shipyard.test";
export const ADMIN = { authorization: "Bearer dev-admin-token" };
export const WEBHOOK_SECRET = "whsec_ZGV2LXdlYmhvb2stc2VjcmV0LWZvci1zaGlweWFyZA==";

/** The sample tenant's manifest; `version` changes what `version.js` says. */
export function sampleManifest(
  projectId: string,
  version = "v1",
  overrides: Partial<DeployManifest> = {},
): DeployManifest {
  return {
    project_id: projectId,
    compatibility_date: "2026-11-01",
    main_module: "src/index.js",
    modules: [
      { name: "src/index.js", type: "esm", content: sampleIndex },
      { name: "src/version.js", type: "esm", content: `export const VERSION = ${JSON.stringify(version)};\n` },
      { name: "README.md", type: "text", content: "# not code" },
    ],
    config: {
      durable_objects: { bindings: [{ name: "COUNTER", class_name: "Counter" }] },
      migrations: [{ tag: "v1", new_sqlite_classes: ["Counter"] }],
      vars: { GREETING: `hello ${version}` },
    },
    ...overrides,
  };
}

/** The realtime tenant's manifest (a WebSocket room, an alarm, a WorkerEntrypoint default export). */
export function realtimeManifest(projectId: string, overrides: Partial<DeployManifest> = {}): DeployManifest {
  return {
    project_id: projectId,
    compatibility_date: "2026-11-01",
    main_module: "src/index.js",
    modules: [{ name: "src/index.js", type: "esm", content: realtimeIndex }],
    config: {
      durable_objects: {
        bindings: [
          { name: "ROOM", class_name: "Room" },
          { name: "TICKER", class_name: "Ticker" },
        ],
      },
      migrations: [{ tag: "v1", new_sqlite_classes: ["Room", "Ticker"] }],
    },
    ...overrides,
  };
}

/**
 * Each project's own deploy secret, from the answer to its first deploy: later deploys of the
 * project are signed with it, as a CI system keeps it after the first answer.
 */
const deploySecrets = new Map<string, string>();

/** The deploy secret `project`'s first deploy returned (or its latest rotation); undefined before. */
export function deploySecretOf(project: string): string | undefined {
  return deploySecrets.get(project);
}

/** Records a secret a rotation answered, so later `postDeploy`s sign with it. */
export function rememberDeploySecret(project: string, secret: string): void {
  deploySecrets.set(project, secret);
}

function projectOf(body: unknown): string | undefined {
  if (typeof body !== "object" || body === null || !("project_id" in body)) return undefined;
  return typeof body.project_id === "string" ? body.project_id : undefined;
}

/**
 * Signs and posts a deploy webhook (Standard Webhooks headers): with `secret` when given, else the
 * project's own deploy secret once its first deploy returned one, else the shared secret.
 */
export async function postDeploy(
  body: unknown,
  options: {
    id?: string;
    timestamp?: number;
    secret?: string;
    tamper?: (raw: string) => string;
    raw?: boolean;
    headers?: Record<string, string>;
  } = {},
): Promise<Response> {
  // `raw`: `body` is the exact text to sign and send (for bodies that are not JSON).
  const raw = options.raw && typeof body === "string" ? body : JSON.stringify(body);
  const id = options.id ?? `msg_${crypto.randomUUID()}`;
  const timestamp = options.timestamp ?? Math.floor(Date.now() / 1000);
  const project = projectOf(body);
  const secret = options.secret ?? (project === undefined ? undefined : deploySecrets.get(project)) ?? WEBHOOK_SECRET;
  const signature = await signWebhook(secret, id, timestamp, new TextEncoder().encode(raw));
  const response = await exports.default.fetch(`${BASE_URL}/v1/deploys`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "webhook-id": id,
      "webhook-timestamp": String(timestamp),
      "webhook-signature": signature,
      ...options.headers,
    },
    body: options.tamper ? options.tamper(raw) : raw,
  });
  if (response.status === 202 && project !== undefined) {
    const answer = await response.clone().json<{ deploy_secret?: string }>();
    if (answer.deploy_secret !== undefined) deploySecrets.set(project, answer.deploy_secret);
  }
  return response;
}

export interface DeployStatusBody {
  deploy_id: string;
  status: string;
  steps: { name: string; state: string; attempts: number; output: unknown; error: string | null }[];
  migration: unknown;
  error: string | null;
}

export async function deployStatus(deployId: string): Promise<DeployStatusBody> {
  const response = await exports.default.fetch(`${BASE_URL}/v1/deploys/${deployId}`, { headers: ADMIN });
  if (response.status !== 200) throw new Error(`GET deploy → ${response.status}: ${await response.text()}`);
  return response.json();
}

/** Waits until the deploy is complete or errored, and returns its status. */
export async function waitForDeploy(deployId: string, timeout = 20_000): Promise<DeployStatusBody> {
  let last: DeployStatusBody | undefined;
  await vi.waitUntil(
    async () => {
      last = await deployStatus(deployId);
      return last.status === "complete" || last.status === "errored";
    },
    { timeout, interval: 100 },
  );
  if (!last) throw new Error("no status");
  return last;
}

/** Deploys and waits; throws with the deploy's error if it did not complete. */
export async function deployAndWait(manifest: DeployManifest): Promise<DeployStatusBody> {
  const response = await postDeploy(manifest);
  if (response.status !== 202) throw new Error(`deploy → ${response.status}: ${await response.text()}`);
  const { deploy_id } = await response.json<{ deploy_id: string }>();
  const status = await waitForDeploy(deploy_id);
  if (status.status !== "complete") throw new Error(`deploy ${deploy_id} ${status.status}: ${status.error}`);
  return status;
}

/** A request to the tenant through Shipyard's dispatch. */
export async function tenant(projectId: string, path: string): Promise<Response> {
  return exports.default.fetch(`${BASE_URL}/t/${projectId}${path}`);
}

export async function tenantJson<T>(projectId: string, path: string): Promise<T> {
  const response = await tenant(projectId, path);
  if (response.status !== 200) throw new Error(`tenant ${path} → ${response.status}: ${await response.text()}`);
  return response.json<T>();
}

/** Unique project ids are slugs. */
export function projectId(prefix: string): string {
  return `${prefix}-${crypto.randomUUID().slice(0, 8)}`;
}

export { env };
