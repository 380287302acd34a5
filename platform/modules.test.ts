import { env } from "cloudflare:workers";
import { describe, it } from "vitest";
import { WRAPPER_MODULE, generateMeterWrapper } from "./meter-wrapper.ts";
import { type AssembleError, assembleModules, toWorkerLoaderModules } from "./modules.ts";
import type { ScriptModule } from "./script-host.ts";

const WRAPPER = "// wrapper";

function esm(name: string, content = "export default {};"): ScriptModule {
  return { name, type: "esm", content };
}
function file(name: string, type: ScriptModule["type"], content = ""): ScriptModule {
  return { name, type, content };
}

describe("assembleModules", () => {
  const accepted: { name: string; modules: ScriptModule[]; main: string; kept: string[]; dropped: string[] }[] = [
    {
      name: "wrapper first, then the tenant's modules in order",
      modules: [esm("index.js"), file("lib.cjs", "cjs"), file("words.txt", "text"), file("blob.bin", "data")],
      main: "index.js",
      kept: ["index.js", "lib.cjs", "words.txt", "blob.bin"],
      dropped: [],
    },
    {
      name: "source maps travel as type sourcemap; a .map sent as anything else is dropped",
      modules: [esm("index.js"), file("index.js.map", "sourcemap"), file("chunk.js.map", "text")],
      main: "index.js",
      kept: ["index.js", "index.js.map"],
      dropped: ["chunk.js.map"],
    },
    {
      name: "READMEs and licences at any depth and in any case; other markdown is a Text module",
      modules: [
        file("README.md", "text"),
        esm("src/index.js"),
        file("LICENSE", "text"),
        file("licence.txt", "text"),
        file("docs/Guide.markdown", "text"),
        file("node_modules/x/readme", "text"),
        file("CHANGELOG.md", "text"),
      ],
      main: "src/index.js",
      kept: ["src/index.js", "docs/Guide.markdown", "CHANGELOG.md"],
      dropped: ["README.md", "LICENSE", "licence.txt", "node_modules/x/readme"],
    },
    {
      name: "names that only look like documents are kept",
      modules: [esm("index.js"), esm("readme-widget.js"), esm("license.js"), file("md.wasm", "wasm")],
      main: "index.js",
      kept: ["index.js", "readme-widget.js", "license.js", "md.wasm"],
      dropped: [],
    },
  ];

  it.for(accepted)("keeps and drops: $name", ({ modules, main, kept, dropped }, { expect }) => {
    const result = assembleModules({ wrapperSource: WRAPPER, tenantModules: modules, tenantMainModule: main });
    expect(result).toEqual({
      ok: true,
      value: {
        mainModule: WRAPPER_MODULE,
        modules: [
          { name: WRAPPER_MODULE, type: "esm", content: WRAPPER },
          ...modules.filter((m) => kept.includes(m.name)),
        ],
        dropped,
      },
    });
  });

  it("drops a module whose type the platform does not know (unvalidated input)", ({ expect }) => {
    // A manifest parsed without a schema can carry any type string.
    const python: ScriptModule = JSON.parse('{"name": "app.py", "type": "python", "content": ""}');
    const result = assembleModules({
      wrapperSource: WRAPPER,
      tenantModules: [esm("index.js"), python],
      tenantMainModule: "index.js",
    });
    expect(result).toMatchObject({ ok: true, value: { dropped: ["app.py"] } });
  });

  it("T5.1 uploads modules under their normalised names, the main module too", ({ expect }) => {
    const result = assembleModules({
      wrapperSource: WRAPPER,
      tenantModules: [esm("./src/index.js"), esm("src/lib/../util.js"), file("./README.md", "text")],
      tenantMainModule: "./src/index.js",
    });
    expect(result).toMatchObject({
      ok: true,
      value: {
        modules: [{ name: WRAPPER_MODULE }, { name: "src/index.js" }, { name: "src/util.js" }],
        dropped: ["README.md"],
      },
    });
  });

  const refused: { name: string; modules: ScriptModule[]; main: string; reason: AssembleError["reason"] }[] = [
    {
      name: "duplicate names",
      modules: [esm("index.js"), esm("a.js"), esm("a.js")],
      main: "index.js",
      reason: "duplicate_module",
    },
    {
      name: "duplicate names among dropped files",
      modules: [esm("index.js"), file("x.map", "sourcemap"), file("x.map", "sourcemap")],
      main: "index.js",
      reason: "duplicate_module",
    },
    {
      name: "a module named like the wrapper",
      modules: [esm("index.js"), esm(WRAPPER_MODULE)],
      main: "index.js",
      reason: "reserved_name",
    },
    {
      name: "the wrapper as tenant main",
      modules: [esm(WRAPPER_MODULE)],
      main: WRAPPER_MODULE,
      reason: "reserved_name",
    },
    {
      name: "any __shipyard module",
      modules: [esm("index.js"), esm("__shipyard_local.mjs")],
      main: "index.js",
      reason: "reserved_name",
    },
    // T5.1: names are normalised before every check.
    {
      name: "T5.1 ./__shipyard_do_meter.mjs is the wrapper's name",
      modules: [esm("index.js"), esm(`./${WRAPPER_MODULE}`)],
      main: "index.js",
      reason: "reserved_name",
    },
    {
      name: "T5.1 lib/../__shipyard_x.mjs is a reserved name",
      modules: [esm("index.js"), esm("lib/../__shipyard_x.mjs")],
      main: "index.js",
      reason: "reserved_name",
    },
    {
      name: "T5.1 ./index.js next to index.js is a duplicate",
      modules: [esm("index.js"), esm("./index.js")],
      main: "index.js",
      reason: "duplicate_module",
    },
    {
      name: "T5.1 a/../b.js next to b.js is a duplicate",
      modules: [esm("index.js"), esm("b.js"), esm("a/../b.js")],
      main: "index.js",
      reason: "duplicate_module",
    },
    {
      name: "T5.1 src//x.js next to src/x.js is a duplicate",
      modules: [esm("index.js"), esm("src/x.js"), esm("src//x.js")],
      main: "index.js",
      reason: "duplicate_module",
    },
    {
      name: "T5.1 a name climbing out of the root",
      modules: [esm("index.js"), esm("a/../../x.js")],
      main: "index.js",
      reason: "invalid_module_name",
    },
    { name: "main not uploaded", modules: [esm("a.js")], main: "index.js", reason: "missing_main" },
    {
      name: "main is a dropped file",
      modules: [esm("a.js"), file("README.md", "text")],
      main: "README.md",
      reason: "missing_main",
    },
    { name: "main is CommonJS", modules: [file("index.js", "cjs")], main: "index.js", reason: "missing_main" },
    { name: "main is text", modules: [file("index.js", "text")], main: "index.js", reason: "missing_main" },
  ];

  it.for(refused)("refuses $name", ({ modules, main, reason }, { expect }) => {
    const result = assembleModules({ wrapperSource: WRAPPER, tenantModules: modules, tenantMainModule: main });
    expect(result).toMatchObject({ ok: false, error: { reason, message: expect.any(String) } });
  });
});

// "hello" and the smallest valid WebAssembly module (magic number and version).
const HELLO_BASE64 = btoa("hello");
const EMPTY_WASM = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
const EMPTY_WASM_BASE64 = btoa(String.fromCharCode(...EMPTY_WASM));

describe("toWorkerLoaderModules", () => {
  const cases: { type: ScriptModule["type"]; content: string; expected: WorkerLoaderModule | null }[] = [
    { type: "esm", content: "export {}", expected: { js: "export {}" } },
    { type: "cjs", content: "module.exports = 1", expected: { cjs: "module.exports = 1" } },
    { type: "text", content: "plain", expected: { text: "plain" } },
    {
      type: "data",
      content: HELLO_BASE64,
      expected: { data: new Uint8Array(new TextEncoder().encode("hello")).buffer },
    },
    { type: "wasm", content: EMPTY_WASM_BASE64, expected: { wasm: EMPTY_WASM.buffer } },
    { type: "sourcemap", content: "{}", expected: null },
  ];

  it.for(cases)("converts $type", ({ type, content, expected }, { expect }) => {
    const out = toWorkerLoaderModules([{ name: "m", type, content }]);
    expect(out).toEqual(expected === null ? {} : { m: expected });
  });

  it("keeps a module named __proto__ as a module", ({ expect }) => {
    const out = toWorkerLoaderModules([{ name: "__proto__", type: "text", content: "x" }]);
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(Object.entries(out)).toEqual([["__proto__", { text: "x" }]]);
  });

  it("throws on a duplicate name and on bad base64", ({ expect }) => {
    expect(() => toWorkerLoaderModules([esm("a.js"), esm("a.js")])).toThrow(/appears twice/);
    expect(() => toWorkerLoaderModules([{ name: "b.bin", type: "data", content: "not base64!" }])).toThrow(
      /not valid base64/,
    );
  });

  it("produces modules the Worker Loader runs: every type, behind the wrapper", async ({ expect }) => {
    const tenant: ScriptModule[] = [
      esm(
        "src/index.js",
        `import greeting from "./greeting.txt";
import bytes from "./hello.bin";
import empty from "./empty.wasm";
import math from "./math.cjs";
export default {
  fetch() {
    return Response.json({
      greeting,
      bytes: new TextDecoder().decode(bytes),
      wasm: empty instanceof WebAssembly.Module,
      doubled: math.double(21),
    });
  },
};`,
      ),
      file("src/greeting.txt", "text", "hi there"),
      file("src/hello.bin", "data", HELLO_BASE64),
      file("src/empty.wasm", "wasm", EMPTY_WASM_BASE64),
      file("src/math.cjs", "cjs", "module.exports.double = (n) => n * 2;"),
      file("src/index.js.map", "sourcemap", "{}"),
    ];
    const assembled = assembleModules({
      wrapperSource: generateMeterWrapper({
        tenantMainModule: "src/index.js",
        durableObjectClasses: [],
      }),
      tenantModules: tenant,
      tenantMainModule: "src/index.js",
    });
    if (!assembled.ok) throw new Error(assembled.error.message);
    const worker = env.LOADER.load({
      compatibilityDate: "2026-11-01",
      mainModule: assembled.value.mainModule,
      modules: toWorkerLoaderModules(assembled.value.modules),
    });
    const response = await worker.getEntrypoint().fetch("http://tenant/");
    expect(await response.json()).toEqual({ greeting: "hi there", bytes: "hello", wasm: true, doubled: 42 });
  });
});
