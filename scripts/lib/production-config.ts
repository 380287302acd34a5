/**
 * The wrangler config `npm run deploy` ships: wrangler.toml less what only the local platform
 * uses (docs/production.md): the Worker Loader binding, the Durable Object bindings of the
 * local tenant runtime and the service binding to its process (TENANT_RUNTIME), with `SCRIPT_HOST = "cloudflare"`, `CLIENT_ADDRESS = "cf-connecting-ip"` and
 * `SHIPYARD_WORKER_NAME` = `name` (the tail consumer of every tenant upload). The classes stay exported and migrated
 * (a migration may not forget a class that once existed); only their bindings go, so nothing in
 * production can reach them. Paths are rewritten for the file's own folder, as wrangler resolves
 * them against the config's location.
 */
import path from "node:path";
import { parse } from "smol-toml";
import { z } from "zod";

/** Durable Object classes only the local platform binds (platform/local/). */
export const LOCAL_ONLY_CLASSES = ["LocalPlatform", "TenantObjectHost", "TenantAssets"] as const;
/** Workers only the local platform runs: the tenant runtime process (wrangler.tenants.toml). */
export const LOCAL_ONLY_SERVICES = ["shipyard-tenants"] as const;

const ConfigSchema = z.looseObject({
  name: z.string(),
  main: z.string(),
  vars: z.record(z.string(), z.unknown()).default({}),
  durable_objects: z
    .looseObject({ bindings: z.array(z.looseObject({ name: z.string(), class_name: z.string() })) })
    .optional(),
  d1_databases: z.array(z.looseObject({ migrations_dir: z.string().optional() })).default([]),
  worker_loaders: z.array(z.unknown()).optional(),
  services: z.array(z.looseObject({ service: z.string() })).optional(),
  // The on-call console's files (console/dist, docs/decisions/0013-16-console.md).
  assets: z.looseObject({ directory: z.string() }).optional(),
});

/** The namespace tenants are uploaded to: the `CF_DISPATCH_NAMESPACE` var (platform/index.ts). */
function dispatchNamespace(vars: Record<string, unknown>): string {
  const name = vars["CF_DISPATCH_NAMESPACE"];
  if (typeof name !== "string" || name === "") {
    throw new Error("wrangler.toml [vars] CF_DISPATCH_NAMESPACE must name the tenants' dispatch namespace");
  }
  return name;
}

/** The production config for `toml` (wrangler.toml's text), to be written into `outDir`. */
export function productionConfig(toml: string, root: string, outDir: string): Record<string, unknown> {
  const config = ConfigSchema.parse(parse(toml));
  const { worker_loaders: _localOnly, ...rest } = config;
  const relative = (file: string) => path.relative(outDir, path.resolve(root, file));
  const local = new Set<string>(LOCAL_ONLY_CLASSES);
  const localServices = new Set<string>(LOCAL_ONLY_SERVICES);
  return {
    ...rest,
    main: relative(config.main),
    // On Cloudflare the edge sets CF-Connecting-IP from the connection: it is a request's source
    // there (locally, wrangler.toml's "socket", a client could choose it: producers/client-address.ts).
    // Tenant uploads name this Worker as their tail consumer (metering, platform/tail-usage.ts): its
    // name comes from `name` itself, so the two cannot drift apart.
    vars: {
      ...config.vars,
      SCRIPT_HOST: "cloudflare",
      CLIENT_ADDRESS: "cf-connecting-ip",
      SHIPYARD_WORKER_NAME: config.name,
    },
    // Tenant traffic goes to the dispatch namespace the tenants are uploaded to (platform/dispatch.ts).
    // Declared here, not in wrangler.toml: wrangler 4 has no local simulator for it (its dev
    // server and the test pool warn on every start, and get() throws without a real account),
    // so the type is declared by hand once, in platform/dispatch-env.d.ts.
    dispatch_namespaces: [{ binding: "DISPATCHER", namespace: dispatchNamespace(config.vars) }],
    ...(config.durable_objects
      ? {
          durable_objects: {
            ...config.durable_objects,
            bindings: config.durable_objects.bindings.filter((binding) => !local.has(binding.class_name)),
          },
        }
      : {}),
    ...(config.services ? { services: config.services.filter((binding) => !localServices.has(binding.service)) } : {}),
    ...(config.assets ? { assets: { ...config.assets, directory: relative(config.assets.directory) } } : {}),
    d1_databases: config.d1_databases.map((database) =>
      database.migrations_dir === undefined
        ? database
        : { ...database, migrations_dir: relative(database.migrations_dir) },
    ),
  };
}
