/// <reference types="vite/client" />
/**
 * The layers of the house (STYLE.md): lib/ is the bottom layer and imports none of durable/,
 * producers/, consumers/ or platform/; nothing but the entry and the consumers' own tests imports a
 * consumer (a name is learnt from its registry, lib/queues.ts, or from the Durable Object's file).
 * Read from the sources themselves, so a new file is covered the day it lands.
 */
import { describe, it } from "vitest";

const sources = import.meta.glob<string>(
  ["../{lib,durable,producers,consumers,platform,workflows,jobs,schemas}/**/*.ts", "!../**/*.test.ts"],
  { query: "?raw", import: "default", eager: true },
);

/** Folders `file` (a path like `../lib/x.ts`) imports from, resolved against its own folder. */
function importedFolders(file: string, source: string): string[] {
  const folders = [];
  for (const match of source.matchAll(/^\s*(?:import|export)[^"';]*?from\s+"(\.[^"]+)"/gm)) {
    const target = new URL(match[1] ?? "", new URL(file, "file:///root/test/")).pathname;
    folders.push(target.replace(/^\/root\//, "").split("/")[0] ?? "");
  }
  return folders;
}

function folderOf(file: string): string {
  return file.replace(/^\.\.\//, "").split("/")[0] ?? "";
}

describe("layers", () => {
  const files = Object.entries(sources);

  it("reads the tree", ({ expect }) => {
    expect(files.filter(([file]) => folderOf(file) === "lib").length).toBeGreaterThan(15);
  });

  it("lib/ imports nothing above it", ({ expect }) => {
    const upward = files.flatMap(([file, source]) =>
      folderOf(file) === "lib"
        ? importedFolders(file, source)
            .filter((folder) => ["durable", "producers", "consumers", "platform", "workflows", "jobs"].includes(folder))
            .map((folder) => `${file} → ${folder}/`)
        : [],
    );
    expect(upward).toEqual([]);
  });

  it("schemas/ import only lib/ and each other", ({ expect }) => {
    const outside = files.flatMap(([file, source]) =>
      folderOf(file) === "schemas"
        ? importedFolders(file, source)
            .filter((folder) => folder !== "schemas" && folder !== "lib")
            .map((folder) => `${file} → ${folder}/`)
        : [],
    );
    expect(outside).toEqual([]);
  });

  it("no producer, platform, workflow, job or Durable Object imports a consumer", ({ expect }) => {
    const intoConsumers = files.flatMap(([file, source]) =>
      folderOf(file) !== "consumers" && importedFolders(file, source).includes("consumers") ? [file] : [],
    );
    expect(intoConsumers).toEqual([]);
  });
});
