/**
 * The Durable Object metering wrapper: a generated ES module that becomes a tenant script's main
 * module. It re-exports the tenant's main module unchanged, except that every Durable Object class is
 * replaced by a subclass of the same name whose external invocations (fetch, alarm, WebSocket
 * handlers, RPC methods) each write one data point to the tenant's `USAGE` Analytics Engine binding:
 *
 *   { indexes: [projectId], blobs: [projectId, className, handler, "ok" | "error"], doubles: [wallMs] }
 *
 * with `handler` one of "fetch", "alarm", "webSocketMessage", "webSocketClose", "webSocketError" or
 * "rpc:<method>". Enforcement sums `wallMs` per project (platform/local/tenant-gateway.ts reads the same
 * shape locally).
 *
 * Why the subclass returns a Proxy from its constructor instead of overriding methods on its
 * prototype: an override would also catch the tenant's own internal calls (`this.helper()` inside
 * `fetch`), counting one request several times and summing overlapping wall time. The runtime only
 * ever sees the object the constructor returns, so metering that object's surface meters exactly the
 * external invocations, while tenant methods run with `this` bound to the real instance (private
 * fields keep working, internal calls stay unmetered). workerd dispatches fetch, alarms and RPC
 * through such a Proxy (see meter-wrapper.test.ts, which runs the wrapper as a real facet).
 */

/** Module name of the wrapper; it is the main module of every tenant script Shipyard uploads. */
export const WRAPPER_MODULE = "__shipyard_do_meter.mjs";

/** What the wrapper is generated from. */
export interface MeterWrapperInput {
  /** Written as index and first blob of every data point (Analytics Engine caps an index at 96 bytes). */
  projectId: string;
  /** Name of the tenant's main module (an ES module in the same upload). */
  tenantMainModule: string;
  /** Durable Object classes exported by the tenant's main module. */
  durableObjectClasses: string[];
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
// Path segments of a module name: no empty, "." or ".." segments, no leading "/", nothing that
// would need escaping or change how the specifier resolves.
const MODULE_SEGMENT = /^[A-Za-z0-9_@+-][A-Za-z0-9_.@+-]*$/;
const MAX_INDEX_BYTES = 96;
// The generated code's own top-level names; a tenant class must not shadow them.
const INTERNAL_PREFIX = "__shipyard";

// Words that cannot name an exported `const` in a strict-mode module.
const RESERVED_WORDS = new Set([
  "arguments",
  "await",
  "break",
  "case",
  "catch",
  "class",
  "const",
  "continue",
  "debugger",
  "default",
  "delete",
  "do",
  "else",
  "enum",
  "eval",
  "export",
  "extends",
  "false",
  "finally",
  "for",
  "function",
  "if",
  "implements",
  "import",
  "in",
  "instanceof",
  "interface",
  "let",
  "new",
  "null",
  "package",
  "private",
  "protected",
  "public",
  "return",
  "static",
  "super",
  "switch",
  "this",
  "throw",
  "true",
  "try",
  "typeof",
  "var",
  "void",
  "while",
  "with",
  "yield",
]);

/** Whether `name` can be a Durable Object class name in the wrapper (an exported binding). */
export function isSafeClassName(name: string): boolean {
  return IDENTIFIER.test(name) && !RESERVED_WORDS.has(name) && !name.startsWith(INTERNAL_PREFIX);
}

/** Whether `name` can be imported by the wrapper as `./<name>` without escaping or path tricks. */
export function isSafeModuleName(name: string): boolean {
  return name.length > 0 && name.length <= 256 && name.split("/").every((segment) => MODULE_SEGMENT.test(segment));
}

/**
 * The source of the metering wrapper module (see the file header). Throws on a project id, module
 * name or class name that cannot be embedded safely; every value goes into the code either validated
 * as an identifier or as a JSON string literal.
 */
export function generateMeterWrapper(input: MeterWrapperInput): string {
  const { projectId, tenantMainModule, durableObjectClasses } = input;
  if (projectId.length === 0 || new TextEncoder().encode(projectId).byteLength > MAX_INDEX_BYTES) {
    throw new Error(`project id must be 1..${MAX_INDEX_BYTES} bytes (it is an Analytics Engine index)`);
  }
  if (!isSafeModuleName(tenantMainModule)) {
    throw new Error(
      `invalid main module name ${JSON.stringify(tenantMainModule)}: use letters, digits, _ . @ + - and /`,
    );
  }
  if (tenantMainModule === WRAPPER_MODULE) {
    throw new Error(`the main module must not be named ${WRAPPER_MODULE} (reserved by Shipyard)`);
  }
  const seen = new Set<string>();
  for (const name of durableObjectClasses) {
    if (!isSafeClassName(name)) {
      throw new Error(
        `invalid Durable Object class name ${JSON.stringify(name)}: it must be a JavaScript identifier, not a reserved word, not starting with ${INTERNAL_PREFIX}`,
      );
    }
    if (seen.has(name)) throw new Error(`Durable Object class ${name} is listed twice`);
    seen.add(name);
  }

  const specifier = JSON.stringify(`./${tenantMainModule}`);
  const classExports = durableObjectClasses
    .map((name) => `export const ${name} = __shipyardMeter(${JSON.stringify(name)});`)
    .join("\n");

  return `// Generated by Shipyard: Durable Object metering wrapper (platform/meter-wrapper.ts). Do not edit.
import { DurableObject as __shipyardDurableObject } from "cloudflare:workers";
import * as __shipyardTenant from ${specifier};

export * from ${specifier};

// \`export { default } from\` fails to link when the tenant module has no default export (a
// Durable-Object-only Worker); an empty handler object keeps such a Worker loadable.
export default __shipyardTenant.default ?? {};

const __shipyardProjectId = ${JSON.stringify(projectId)};
const __shipyardMainModule = ${specifier};
const __shipyardHandlers = new Set(["fetch", "alarm", "webSocketMessage", "webSocketClose", "webSocketError"]);

// Methods a caller can invoke on an instance: functions on the class's prototype chain up to the
// DurableObject base (or Object.prototype for a plain class). Accessors, symbols and the
// constructor are left alone; the nearest definition of a name decides.
function __shipyardMethodNames(Base) {
  const seen = new Set();
  const methods = new Set();
  for (let proto = Base.prototype; proto && proto !== Object.prototype && proto !== __shipyardDurableObject.prototype; proto = Object.getPrototypeOf(proto)) {
    for (const name of Object.getOwnPropertyNames(proto)) {
      if (name === "constructor" || seen.has(name)) continue;
      seen.add(name);
      const descriptor = Object.getOwnPropertyDescriptor(proto, name);
      if (descriptor && "value" in descriptor && typeof descriptor.value === "function") methods.add(name);
    }
  }
  return methods;
}

// Metering must never break the tenant: a missing binding (removed by enforcement) means no point,
// and a failing write is swallowed. Locally USAGE writes through the gateway and returns a promise.
function __shipyardRecord(usage, className, handler, outcome, wallMs) {
  if (usage == null || typeof usage.writeDataPoint !== "function") return;
  try {
    const pending = usage.writeDataPoint({
      indexes: [__shipyardProjectId],
      blobs: [__shipyardProjectId, className, handler, outcome],
      doubles: [wallMs],
    });
    if (pending && typeof pending.then === "function") pending.then(undefined, () => {});
  } catch {
    // A point that cannot be written is lost; the invocation's own outcome matters more.
  }
}

function __shipyardMeter(className) {
  const Base = __shipyardTenant[className];
  if (typeof Base !== "function") {
    throw new Error("Durable Object class " + className + " is not exported by " + __shipyardMainModule);
  }
  const methods = __shipyardMethodNames(Base);
  const Metered = class extends Base {
    constructor(ctx, env) {
      super(ctx, env);
      // Captured here, not read from this.env: a tenant class need not extend DurableObject.
      const usage = env == null ? undefined : env.USAGE;
      const target = this;
      const wrappers = new Map();
      const meter = (name, method) => {
        const handler = __shipyardHandlers.has(name) ? name : "rpc:" + name;
        // A method named like the tenant's keeps stack traces readable.
        return {
          async [name](...args) {
            // Workers clocks advance only across I/O, so this is wall time spent waiting (storage,
            // subrequests, awaited timers), not CPU time; the await covers the whole invocation.
            const started = Date.now();
            let outcome = "error";
            try {
              const result = await method.apply(target, args);
              outcome = "ok";
              return result;
            } finally {
              __shipyardRecord(usage, className, handler, outcome, Date.now() - started);
            }
          },
        }[name];
      };
      // Only the object the runtime receives is metered; tenant code keeps the real instance as
      // \`this\`, so its internal calls are not counted twice.
      return new Proxy(target, {
        get(object, name) {
          const value = Reflect.get(object, name, object);
          if (typeof name !== "string" || typeof value !== "function" || !methods.has(name)) return value;
          const cached = wrappers.get(name);
          if (cached && cached.method === value) return cached.wrapper;
          const wrapper = meter(name, value);
          wrappers.set(name, { method: value, wrapper });
          return wrapper;
        },
      });
    }
  };
  Object.defineProperty(Metered, "name", { value: className });
  return Metered;
}

${classExports}
`;
}
