import { describe, it } from "vitest";
import { fnv1a32, hashToShard } from "./hash.ts";

/** FNV-1a 32 straight from its definition, over explicit bytes: the reference for UTF-8 input. */
function referenceFnv1a32(bytes: readonly number[]): number {
  let hash = 0x811c9dc5;
  for (const byte of bytes) {
    hash = Number((BigInt((hash ^ byte) >>> 0) * 0x01000193n) % 0x1_0000_0000n);
  }
  return hash;
}

/** Deterministic uuid-shaped ids (a seeded xorshift), so the distribution test cannot flake. */
function uuidLike(i: number): string {
  let x = (i + 1) * 0x9e3779b1;
  const hex = Array.from({ length: 4 }, () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0).toString(16).padStart(8, "0");
  }).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

describe("fnv1a32", () => {
  it.for([
    ["", 0x811c9dc5],
    ["a", 0xe40c292c],
    ["foobar", 0xbf9cf968],
  ] as const)("matches the published vector for %j", ([input, expected], { expect }) => {
    expect(fnv1a32(input)).toBe(expected);
  });

  it("hashes the UTF-8 bytes of a key, not its UTF-16 code units", ({ expect }) => {
    expect(fnv1a32("€")).toBe(referenceFnv1a32([0xe2, 0x82, 0xac]));
    expect(fnv1a32("é-🚀")).toBe(referenceFnv1a32([...new TextEncoder().encode("é-🚀")]));
  });

  it("is an unsigned 32-bit integer and agrees with the reference on many keys", ({ expect }) => {
    for (let i = 0; i < 500; i++) {
      const key = `evt-${i}-${"k".repeat(i % 17)}`;
      const hash = fnv1a32(key);
      expect(Number.isInteger(hash) && hash >= 0 && hash <= 0xffff_ffff).toBe(true);
      expect(hash).toBe(referenceFnv1a32([...new TextEncoder().encode(key)]));
    }
  });
});

describe("hashToShard", () => {
  it("is stable and in [0, shardCount)", ({ expect }) => {
    for (const count of [1, 7, 32, 64]) {
      for (let i = 0; i < 200; i++) {
        const shard = hashToShard(`id-${i}`, count);
        expect(shard).toBeGreaterThanOrEqual(0);
        expect(shard).toBeLessThan(count);
        expect(hashToShard(`id-${i}`, count)).toBe(shard);
      }
    }
    expect(hashToShard("foobar", 32)).toBe(0xbf9cf968 % 32);
  });

  it.for([
    ["sequential ids", (i: number) => `event-${i}`],
    ["uuid-shaped ids", uuidLike],
  ] as const)("spreads %s evenly over 32 shards", ([, key], { expect }) => {
    const shards = 32;
    const keys = 32_000;
    const counts = Array.from({ length: shards }, () => 0);
    for (let i = 0; i < keys; i++) {
      const shard = hashToShard(key(i), shards);
      counts[shard] = (counts[shard] ?? 0) + 1;
    }
    const mean = keys / shards;
    // Chi-square with 31 degrees of freedom: 61.1 is the p = 0.001 critical value.
    const chiSquare = counts.reduce((sum, n) => sum + (n - mean) ** 2 / mean, 0);
    expect(chiSquare).toBeLessThan(61.1);
    for (const n of counts) {
      expect(n).toBeGreaterThan(mean * 0.85);
      expect(n).toBeLessThan(mean * 1.15);
    }
  });
});
