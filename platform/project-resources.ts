import { describeError, log } from "../lib/log.ts";
import { listResources } from "../lib/tenant-resources.d1.ts";
import type { ProjectResource } from "../schemas/deploy.schema.ts";
import { resourceHost } from "./tenant-resources.ts";

/**
 * The resources of a project as `GET /v1/projects/:id` lists them, with each one's size when the
 * platform says cheaply (null when it does not, or cannot be asked right now: the listing itself
 * never fails on a size).
 */
export async function projectResources(env: Env, projectId: string): Promise<ProjectResource[]> {
  const rows = await listResources(env.DB, projectId);
  return Promise.all(
    rows.map(async (row): Promise<ProjectResource> => {
      let size: number | null = null;
      try {
        // KV has no cheap size (it would mean listing every key); R2's is its objects' sum.
        if (row.kind === "d1") size = await resourceHost(env).d1Size(row.resource_id);
        if (row.kind === "r2") size = await resourceHost(env).r2Size(row.resource_id);
      } catch (error) {
        log.warn("tenant_resource_size_failed", {
          project_id: projectId,
          binding: row.binding,
          error: describeError(error),
        });
      }
      return {
        kind: row.kind,
        binding: row.binding,
        name: row.name,
        id: row.resource_id,
        size_bytes: size,
        created_at: row.created_at,
      };
    }),
  );
}
