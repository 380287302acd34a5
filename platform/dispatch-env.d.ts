/**
 * The one binding `wrangler types` cannot see: the Workers for Platforms dispatch namespace is
 * declared by the production config only (scripts/lib/production-config.ts adds
 * `[[dispatch_namespaces]] binding = "DISPATCHER"`), because wrangler 4 has no local simulator for
 * it: `wrangler dev` and the test pool warn on every start that the binding "do[es] not support
 * local development", and its `get()` then throws unless `remote = true` reaches a real account.
 * Optional, so code that reads it handles the local case, where it is absent.
 */
declare global {
  namespace Cloudflare {
    interface Env {
      DISPATCHER?: DispatchNamespace;
    }
  }
  interface Env {
    DISPATCHER?: DispatchNamespace;
  }
}

/** The binding's type, named (this export also makes the file a module, as `declare global` needs). */
export type DispatcherBinding = DispatchNamespace;
