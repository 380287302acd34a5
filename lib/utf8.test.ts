import { assert, property, string } from "fast-check";
import { describe, it } from "vitest";
import { utf8Length } from "./utf8.ts";

const encoder = new TextEncoder();

describe("utf8Length", () => {
  it("matches TextEncoder on ASCII, 2-, 3- and 4-byte characters and lone surrogates", ({ expect }) => {
    for (const text of ["", "abc", "é", "€", "😀", "a😀b", "\ud800", "\udc00x", "x\ud800", "\ud800\ud800\udc00"]) {
      expect(utf8Length(text), JSON.stringify(text)).toBe(encoder.encode(text).byteLength);
    }
  });

  it("matches TextEncoder on arbitrary UTF-16 strings", ({ expect }) => {
    assert(
      property(string({ unit: "binary" }), (text) => {
        expect(utf8Length(text)).toBe(encoder.encode(text).byteLength);
      }),
      { numRuns: 2_000 },
    );
  });
});
