/**
 * The rules the real Workers for Platforms API applies to an uploaded script's code, name and
 * settings, as the fake API checks them (test/fake-cloudflare-api/server.ts). Each rule cites where
 * its code and text come from. JavaScript is parsed with acorn (a real ECMAScript parser): a
 * syntax error, a static import of a module that was not uploaded, and the names a module Worker
 * exports are read from the code, as the runtime reads them when Cloudflare validates an upload by
 * starting it.
 */
import { type Node, parse } from "acorn";
import { gzipSync } from "node:zlib";
import { KNOWN_COMPATIBILITY_FLAGS } from "./compatibility-flags.ts";

/** A rule's verdict: the HTTP status and the envelope's `errors[0]`. */
export interface RuleError {
  status: number;
  code: number;
  message: string;
}

/** An uploaded module: its part name, content type and bytes. */
export interface RuleModule {
  contentType: string;
  bytes: Uint8Array;
}

/**
 * Size: "Your Worker exceeded the size limit of 3 MiB. Please upgrade to a paid plan to deploy
 * Workers up to 10 MiB. [code: 10027]" (free plan; the paid limit is 10 MiB after gzip, 64 MiB
 * before: developers.cloudflare.com/workers/platform/limits "Worker size"; the code and text as
 * wrangler users quote them, e.g. "workers.api.error.script_too_large [code: 10027]" in
 * workers-sdk's deploy tests). The fake is a paid account: 10 MiB compressed, 64 MiB raw.
 */
export const SCRIPT_TOO_LARGE = 10027;
const MAX_COMPRESSED_BYTES = 10 * 1024 * 1024;
const MAX_RAW_BYTES = 64 * 1024 * 1024;

/** Startup validation failures (syntax, missing module, unknown flag) answer 10021, "script validation". */
export const SCRIPT_VALIDATION = 10021;

/**
 * Script names. The API's own examples use underscores ("this-is_my_script-01": cloudflare-typescript
 * `workersForPlatforms.dispatch.namespaces.scripts.update`), so `_` is allowed; names are at most 63
 * characters (a DNS label: wrangler's "Worker names must be between 1 and 63 characters"). The code and
 * wording of the refusal are not documented: (fake).
 */
const SCRIPT_NAME = /^[a-z0-9_][a-z0-9_-]{0,62}$/;

export function checkScriptName(name: string): RuleError | undefined {
  if (SCRIPT_NAME.test(name)) return undefined;
  return {
    status: 400,
    code: SCRIPT_VALIDATION,
    message: `Script name '${name}' is invalid: at most 63 lowercase letters, digits, '-' and '_' (fake)`,
  };
}

/** Unknown flags fail the runtime's startup: "No such compatibility flag: <name>" (workerd compatibility-date-test.c++). */
export function checkCompatibilityFlags(flags: readonly string[]): RuleError | undefined {
  const unknown = flags.find((flag) => !KNOWN_COMPATIBILITY_FLAGS.has(flag));
  if (unknown === undefined) return undefined;
  return { status: 400, code: SCRIPT_VALIDATION, message: `No such compatibility flag: ${unknown}` };
}

/** Size limits of the whole upload (see SCRIPT_TOO_LARGE). */
export function checkSize(modules: ReadonlyMap<string, RuleModule>): RuleError | undefined {
  let raw = 0;
  let compressed = 0;
  for (const module of modules.values()) {
    raw += module.bytes.byteLength;
    compressed += gzipSync(module.bytes, { level: 1 }).byteLength;
  }
  if (raw <= MAX_RAW_BYTES && compressed <= MAX_COMPRESSED_BYTES) return undefined;
  return {
    status: 400,
    code: SCRIPT_TOO_LARGE,
    message: `Your Worker exceeded the size limit of 10 MiB. (${(compressed / 1048576).toFixed(1)} MiB after compression, ${(raw / 1048576).toFixed(1)} MiB before)`,
  };
}

/** What a module's code says: what it imports, what it exports, what it re-exports wholesale. */
interface ModuleShape {
  imports: string[];
  exports: Set<string>;
  reExportsAll: string[];
}

const JS_TYPES = new Set(["application/javascript+module"]);

/**
 * Parses every ES module of the upload and checks what starting the Worker would: each parses
 * ("Uncaught SyntaxError: …\n  at <module>:<line>:<column>", code 10021: wrangler users quote
 * e.g. "Uncaught SyntaxError: Unexpected token 'export' [code: 10021]"; the text after
 * "SyntaxError:" is V8's there and acorn's here), and each static import names an uploaded module
 * or a runtime one (workerd: `No such module "<name>".\n  imported from "<importer>"`, as
 * workers-sdk's miniflare tests assert it). Returns the main module's exported names (following
 * `export * from`), or undefined when the main module is not an ES module (CommonJS exports are
 * not statically known).
 */
export function checkModules(
  modules: ReadonlyMap<string, RuleModule>,
  mainModule: string,
): { error: RuleError } | { exports: Set<string> | undefined } {
  const shapes = new Map<string, ModuleShape>();
  for (const [name, module] of modules) {
    if (!JS_TYPES.has(module.contentType)) continue;
    const source = new TextDecoder().decode(module.bytes);
    let program: Node;
    try {
      program = parse(source, { ecmaVersion: "latest", sourceType: "module", locations: true });
    } catch (error) {
      const { message, loc } = syntaxErrorOf(error);
      const at = loc === undefined ? name : `${name}:${loc.line}:${loc.column + 1}`;
      return {
        error: { status: 400, code: SCRIPT_VALIDATION, message: `Uncaught SyntaxError: ${message}\n  at ${at}\n` },
      };
    }
    shapes.set(name, shapeOf(program));
  }
  for (const [name, shape] of shapes) {
    for (const specifier of shape.imports) {
      if (isRuntimeModule(specifier)) continue;
      const resolved = resolveSpecifier(name, specifier);
      if (!modules.has(resolved)) {
        return {
          error: {
            status: 400,
            code: SCRIPT_VALIDATION,
            message: `Uncaught Error: No such module "${resolved}".\n  imported from "${name}"\n`,
          },
        };
      }
    }
  }
  if (!shapes.has(mainModule)) return { exports: undefined };
  return { exports: exportedNames(mainModule, shapes, new Set()) };
}

function syntaxErrorOf(error: unknown): { message: string; loc: { line: number; column: number } | undefined } {
  if (error instanceof SyntaxError) {
    const loc: unknown = Reflect.get(error, "loc");
    const message = error.message.replace(/\s*\(\d+:\d+\)$/, "");
    if (typeof loc === "object" && loc !== null) {
      const line: unknown = Reflect.get(loc, "line");
      const column: unknown = Reflect.get(loc, "column");
      if (typeof line === "number" && typeof column === "number") return { message, loc: { line, column } };
    }
    return { message, loc: undefined };
  }
  return { message: String(error), loc: undefined };
}

/** `cloudflare:*`, `node:*` (nodejs_compat) and `workerd:*` come from the runtime, not the upload. */
function isRuntimeModule(specifier: string): boolean {
  return /^(cloudflare|node|workerd):/.test(specifier);
}

/** workerd resolves a specifier against the importing module's name, as a path. */
function resolveSpecifier(importer: string, specifier: string): string {
  const base = importer.includes("/") ? importer.slice(0, importer.lastIndexOf("/") + 1) : "";
  const parts: string[] = [];
  for (const part of (specifier.startsWith("/") ? specifier.slice(1) : base + specifier).split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") parts.pop();
    else parts.push(part);
  }
  return parts.join("/");
}

function shapeOf(program: Node): ModuleShape {
  const shape: ModuleShape = { imports: [], exports: new Set(), reExportsAll: [] };
  const body: unknown = Reflect.get(program, "body");
  if (!Array.isArray(body)) return shape;
  for (const statement of body) {
    const type: unknown = Reflect.get(statement, "type");
    const source = stringValue(Reflect.get(statement, "source"));
    if (type === "ImportDeclaration" && source !== undefined) shape.imports.push(source);
    if (type === "ExportAllDeclaration" && source !== undefined) {
      shape.imports.push(source);
      const exported = nameOf(Reflect.get(statement, "exported"));
      if (exported === undefined) shape.reExportsAll.push(source);
      else shape.exports.add(exported);
    }
    if (type === "ExportDefaultDeclaration") shape.exports.add("default");
    if (type === "ExportNamedDeclaration") {
      if (source !== undefined) shape.imports.push(source);
      for (const name of declaredNames(Reflect.get(statement, "declaration"))) shape.exports.add(name);
      const specifiers: unknown = Reflect.get(statement, "specifiers");
      if (Array.isArray(specifiers)) {
        for (const specifier of specifiers) {
          const exported = nameOf(Reflect.get(specifier, "exported"));
          if (exported !== undefined) shape.exports.add(exported);
        }
      }
    }
  }
  return shape;
}

function declaredNames(declaration: unknown): string[] {
  if (typeof declaration !== "object" || declaration === null) return [];
  const id = nameOf(Reflect.get(declaration, "id"));
  if (id !== undefined) return [id];
  const declarations: unknown = Reflect.get(declaration, "declarations");
  if (!Array.isArray(declarations)) return [];
  return declarations.flatMap((item) => {
    const name = nameOf(Reflect.get(item, "id"));
    return name === undefined ? [] : [name];
  });
}

/** An Identifier's name or a string Literal's value (`export { x as "y" }`). */
function nameOf(node: unknown): string | undefined {
  if (typeof node !== "object" || node === null) return undefined;
  const name: unknown = Reflect.get(node, "name");
  if (typeof name === "string") return name;
  return stringValue(node);
}

function stringValue(node: unknown): string | undefined {
  if (typeof node !== "object" || node === null) return undefined;
  const value: unknown = Reflect.get(node, "value");
  return typeof value === "string" ? value : undefined;
}

function exportedNames(name: string, shapes: ReadonlyMap<string, ModuleShape>, seen: Set<string>): Set<string> {
  const shape = shapes.get(name);
  const names = new Set<string>(shape?.exports ?? []);
  if (shape === undefined || seen.has(name)) return names;
  seen.add(name);
  for (const specifier of shape.reExportsAll) {
    // `export *` never re-exports `default`.
    for (const inner of exportedNames(resolveSpecifier(name, specifier), shapes, seen)) {
      if (inner !== "default") names.add(inner);
    }
  }
  return names;
}

/**
 * The Durable Object classes of the script after this upload must be exported by it:
 *  - a class a migration of this upload creates (new_classes, new_sqlite_classes, renamed_classes
 *    `to`, transferred_classes `to`): 10070 "Cannot apply new-class migration to class 'X' that is
 *    not exported by script." (quoted from real deploys, e.g. the pikku and EmailDraftRoom reports);
 *  - a class the script already had (live Durable Objects): 10064 "New version of script does not
 *    export class 'X' which is depended on by existing Durable Objects. Did you forget to include
 *    it? If you renamed it, try a rename-class migration. If you want to delete all the Durable
 *    Objects implemented by the class, you can use a delete-class migration" (wrangler output
 *    quoted in many repositories, e.g. "[code: 10064]" for RelayRateLimiter).
 */
export function checkExportedClasses(
  exports: ReadonlySet<string> | undefined,
  created: readonly string[],
  classes: ReadonlySet<string>,
): RuleError | undefined {
  if (exports === undefined) return undefined;
  for (const name of created) {
    if (!exports.has(name)) {
      return {
        status: 400,
        code: 10070,
        message: `Cannot apply new-class migration to class '${name}' that is not exported by script.`,
      };
    }
  }
  for (const name of classes) {
    if (!exports.has(name)) {
      return {
        status: 400,
        code: 10064,
        message: `New version of script does not export class '${name}' which is depended on by existing Durable Objects. Did you forget to include it? If you renamed it, try a rename-class migration. If you want to delete all the Durable Objects implemented by the class, you can use a delete-class migration.`,
      };
    }
  }
  return undefined;
}
