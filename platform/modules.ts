/**
 * The module list of an upload: Shipyard's entry module (platform/meter-wrapper.ts) in front as the
 * main module, then the tenant's code modules and source maps in their order. Files a deploy manifest
 * may carry but the runtime cannot load (READMEs, licences, a `.map` sent as code) are dropped and
 * reported rather than uploaded, so a bundler's output directory can be posted as is.
 */
import { type Result, assertNever, err, ok } from "../lib/result.ts";
import { WRAPPER_MODULE } from "./meter-wrapper.ts";
import type { ScriptModule } from "./script-host.ts";

/** Module types the platform takes; `sourcemap` is uploaded for stack traces, never loaded as code. */
const CODE_TYPES: ReadonlySet<string> = new Set(["esm", "cjs", "text", "data", "wasm", "sourcemap"]);

// Prefix of every module Shipyard generates (the wrapper, the local bootstrap): a tenant module
// with such a name would replace or shadow ours.
const RESERVED_PREFIX = "__shipyard";

// READMEs and licences bundlers and repositories put next to the code, bare or as text (a
// "readme.js" is code and stays). Other markdown stays: wrangler's `rules` can make it a Text module.
const DOCUMENT = /(^|\/)(readme|licen[cs]e)(\.(txt|rst|md|markdown))?$/i;

export type AssembleError = {
  reason: "duplicate_module" | "missing_main" | "reserved_name" | "invalid_module_name";
  message: string;
};

/**
 * A module name as the runtime resolves it: `.` segments and empty segments dropped, `a/../b`
 * folded to `b`, so `./index.js`, `src//x.js` and `lib/../x.js` are the names they stand for.
 * Every check (reserved prefix, duplicates, the main module) runs on this form, or `./index.js`
 * would pass next to `index.js` and `./__shipyard_do_meter.mjs` would shadow the wrapper. Null
 * for a name that climbs out of the root (`../x.js`).
 */
export function normaliseModuleName(name: string): string | null {
  const segments: string[] = [];
  for (const segment of name.split("/")) {
    if (segment === "" || segment === ".") continue;
    if (segment === "..") {
      if (segments.pop() === undefined) return null;
      continue;
    }
    segments.push(segment);
  }
  return segments.length === 0 ? null : segments.join("/");
}

export interface AssembledModules {
  /** Always the wrapper. */
  mainModule: string;
  /** The wrapper first, then the tenant's kept modules in manifest order. */
  modules: ScriptModule[];
  /** Names of the tenant files that were not uploaded. */
  dropped: string[];
}

/** Why a file is not uploaded, or null to keep it. */
function dropReason(module: ScriptModule): string | null {
  if (!CODE_TYPES.has(module.type)) return `type ${module.type} is not a module type`;
  // A source map travels with the upload (wrangler's --upload-source-maps) only as type sourcemap.
  if (module.name.endsWith(".map") && module.type !== "sourcemap") return "source map sent as code";
  if (DOCUMENT.test(module.name)) return "documentation";
  return null;
}

/**
 * Builds the upload's module list (see the file header). Refuses duplicate names, a tenant module in
 * Shipyard's reserved `__shipyard*` namespace, and a main module that is missing, dropped or not an
 * ES module (the wrapper re-exports it with `export *`).
 */
export function assembleModules(input: {
  wrapperSource: string;
  tenantModules: ScriptModule[];
  tenantMainModule: string;
}): Result<AssembledModules, AssembleError> {
  const names = new Set<string>();
  const tenantModules: ScriptModule[] = [];
  for (const sent of input.tenantModules) {
    const name = normaliseModuleName(sent.name);
    if (name === null) {
      return err({
        reason: "invalid_module_name",
        message: `module ${JSON.stringify(sent.name)} is not a path inside the Worker (it is empty or climbs out with ..)`,
      });
    }
    const module = { ...sent, name };
    tenantModules.push(module);
    if (module.name.startsWith(RESERVED_PREFIX)) {
      return err({
        reason: "reserved_name",
        message: `module ${JSON.stringify(sent.name)} uses the reserved prefix ${RESERVED_PREFIX} (Shipyard's own modules, e.g. ${WRAPPER_MODULE}); rename it`,
      });
    }
    if (names.has(module.name)) {
      return err({
        reason: "duplicate_module",
        message: `module ${JSON.stringify(module.name)} appears more than once${sent.name === module.name ? "" : ` (as ${JSON.stringify(sent.name)})`}`,
      });
    }
    names.add(module.name);
  }
  const mainModule = normaliseModuleName(input.tenantMainModule) ?? input.tenantMainModule;

  const kept: ScriptModule[] = [];
  const dropped: string[] = [];
  for (const module of tenantModules) {
    if (dropReason(module) === null) kept.push(module);
    else dropped.push(module.name);
  }

  const main = kept.find((module) => module.name === mainModule);
  if (!main) {
    const why = names.has(mainModule) ? "is not a code module" : "is not among the modules";
    return err({ reason: "missing_main", message: `main module ${JSON.stringify(input.tenantMainModule)} ${why}` });
  }
  if (main.type !== "esm") {
    return err({
      reason: "missing_main",
      message: `main module ${JSON.stringify(input.tenantMainModule)} must be an ES module (type "esm"), not ${main.type}`,
    });
  }

  return ok({
    mainModule: WRAPPER_MODULE,
    modules: [{ name: WRAPPER_MODULE, type: "esm", content: input.wrapperSource }, ...kept],
    dropped,
  });
}

function decodeBase64(name: string, content: string): ArrayBuffer {
  let binary: string;
  try {
    binary = atob(content);
  } catch {
    throw new Error(`module ${JSON.stringify(name)} is not valid base64`);
  }
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes.buffer;
}

/**
 * Manifest modules as the Worker Loader's module map: code and text as strings, data and wasm
 * decoded from base64. Source maps have no place in a loaded Worker and are skipped. Throws on a
 * duplicate name or bad base64: the input is expected to come from {@link assembleModules}.
 */
export function toWorkerLoaderModules(modules: ScriptModule[]): Record<string, WorkerLoaderModule> {
  // Entries, not assignments: a module named "__proto__" must stay a module.
  const entries: [string, WorkerLoaderModule][] = [];
  const names = new Set<string>();
  for (const module of modules) {
    if (names.has(module.name)) throw new Error(`module ${JSON.stringify(module.name)} appears twice`);
    names.add(module.name);
    const converted = toWorkerLoaderModule(module);
    if (converted) entries.push([module.name, converted]);
  }
  return Object.fromEntries(entries);
}

function toWorkerLoaderModule(module: ScriptModule): WorkerLoaderModule | null {
  switch (module.type) {
    case "esm":
      return { js: module.content };
    case "cjs":
      return { cjs: module.content };
    case "text":
      return { text: module.content };
    case "data":
      return { data: decodeBase64(module.name, module.content) };
    case "wasm":
      return { wasm: decodeBase64(module.name, module.content) };
    case "sourcemap":
      return null;
    default:
      return assertNever(module.type);
  }
}
