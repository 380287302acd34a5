/** A run of items packed together: items `[from, to)`, `bytes` = overhead + their JSON array. */
export interface PackRange {
  from: number;
  to: number;
  bytes: number;
}

/**
 * Greedy in-order packing by size, shared by everything that fills a byte budget (queue messages,
 * D1 json_each statements, shard chunks): item `i` is `sizes[i]` bytes of JSON, a group is a JSON
 * array of its items (brackets and commas counted) plus `overhead`, and a group never passes
 * `budget` unless it holds a single item larger than that. `bytes` is the group's exact size.
 */
export function packRanges(sizes: readonly number[], budget: number, overhead = 0): PackRange[] {
  const ranges: PackRange[] = [];
  let from = 0;
  let bytes = overhead + 1; // "[" and "]", less the comma the first item does not need
  sizes.forEach((size, index) => {
    if (index > from && bytes + size + 1 > budget) {
      ranges.push({ from, to: index, bytes });
      from = index;
      bytes = overhead + 1;
    }
    bytes += size + 1; // the item and its comma (or the closing bracket)
  });
  if (sizes.length > from) ranges.push({ from, to: sizes.length, bytes });
  return ranges;
}
