/**
 * What a tenant's env holds for its non-Durable-Object bindings on the local platform: the value
 * each binding has on Cloudflare. Vars bind as text or as parsed JSON, as wrangler uploads them;
 * secrets as text; the assets binding as a Fetcher.
 */
import { assertNever } from "../lib/result.ts";
import type { ScriptBinding } from "./script-host.ts";

type PlainBinding = Extract<ScriptBinding, { type: "plain_text" | "json" | "secret_text" | "assets" }>;

/** The env value of a var, secret or assets binding (`assets`: the version's ASSETS Fetcher). */
export function plainBindingValue(binding: PlainBinding, assets: Fetcher | undefined): unknown {
  switch (binding.type) {
    case "plain_text":
      return binding.text;
    case "json":
      return binding.json;
    case "secret_text":
      return binding.text ?? "";
    case "assets":
      return assets;
    default:
      return assertNever(binding);
  }
}
