/**
 * The local platform's side of static assets: storing a version's files (called by the local
 * ScriptHost on upload), the router check in front of the tenant Worker, and the `ASSETS` binding
 * the tenant's env gets (a loopback entrypoint that asks the script's TenantAssets object).
 */
import { WorkerEntrypoint, exports } from "cloudflare:workers";
import { tenantAssetsName } from "../durable/tenant-assets.do.ts";
import type { AssetIndex } from "./assets.ts";
import type { UploadAssets } from "./script-host.ts";

/** How many bytes of base64 one putFiles call carries (RPC messages are capped at 32 MiB). */
const PUT_BATCH_CHARS = 4 * 1024 * 1024;

function store(env: Env, script: string) {
  return env.TENANT_ASSETS.getByName(tenantAssetsName(script));
}

/**
 * Stores the files of an upload (content-addressed, so a retried or repeated upload stores nothing
 * new) and returns the index the version is bound with.
 */
export async function storeAssets(env: Env, script: string, assets: UploadAssets): Promise<AssetIndex> {
  const stub = store(env, script);
  let batch: { hash: string; content: string }[] = [];
  let chars = 0;
  for (const file of assets.files) {
    if (chars + file.content.length > PUT_BATCH_CHARS && batch.length > 0) {
      await stub.putFiles(batch);
      batch = [];
      chars = 0;
    }
    batch.push({ hash: file.hash, content: file.content });
    chars += file.content.length;
  }
  if (batch.length > 0) await stub.putFiles(batch);
  return Object.fromEntries(
    assets.files.map((file) => [
      file.path,
      {
        hash: file.hash,
        size: file.size,
        ...(file.content_type === undefined ? {} : { content_type: file.content_type }),
      },
    ]),
  );
}

/** Makes `index` the assets of `versionId` (after the platform created that version). */
export async function bindAssets(
  env: Env,
  script: string,
  versionId: string,
  index: AssetIndex,
  assets: UploadAssets,
  compatibilityDate: string,
): Promise<void> {
  await store(env, script).bindVersion(versionId, index, assets.config, compatibilityDate);
}

/** The assets' answer to a tenant request, or null to run the Worker (no assets, worker first, or a miss). */
export async function routeTenantAssets(
  env: Env,
  script: string,
  versionId: string,
  request: Request,
): Promise<Response | null> {
  // Without the body: assets never read it, and the Worker may still need it after a miss.
  const probe = new Request(request.url, { method: request.method, headers: request.headers });
  return store(env, script).route(versionId, probe);
}

/** Deletes a script's assets (the script was deleted). */
export async function clearAssets(env: Env, script: string): Promise<void> {
  await store(env, script).clear();
}

/** Props of the ASSETS binding given to a tenant isolate: whose assets, which version. */
export interface AssetsBindingProps {
  script: string;
  versionId: string;
}

/** A tenant's `env.ASSETS` on the local platform: `fetch` answers from the version's assets. */
export class TenantAssetsBinding extends WorkerEntrypoint<Env, AssetsBindingProps> {
  override async fetch(request: Request): Promise<Response> {
    return store(this.env, this.ctx.props.script).fetchAsset(this.ctx.props.versionId, request);
  }
}

/** The ASSETS binding stub for a version. */
export function assetsBinding(props: AssetsBindingProps): Fetcher {
  return exports.TenantAssetsBinding({ props });
}
