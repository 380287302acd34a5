/**
 * Shard placement. FNV-1a (32-bit) over the UTF-8 bytes of the key: stable across runtimes and
 * releases (it is fully specified, no seed), cheap, and well spread for short ids. The shard of a
 * key is `fnv1a32(key) % shardCount`; changing `SHARD_COUNT` moves keys between shards, which is
 * safe because every stage downstream of the shards dedupes by id (docs/sharding.md).
 */
const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
const encoder = new TextEncoder();

export function fnv1a32(key: string): number {
  let hash = FNV_OFFSET;
  for (const byte of encoder.encode(key)) {
    hash ^= byte;
    hash = Math.imul(hash, FNV_PRIME);
  }
  return hash >>> 0;
}

/** The shard index, in `[0, shardCount)`, that owns `key`. */
export function hashToShard(key: string, shardCount: number): number {
  return fnv1a32(key) % shardCount;
}
