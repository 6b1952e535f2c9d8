// Test helper: every token of a prepared split, shard after shard, in index order.
import { join } from 'node:path';
import { ShardReader, type DataIndex } from '../../src/data/shards.js';

export function splitTokens(dir: string, index: DataIndex, split: 'train' | 'val'): Int32Array {
  const s = index.splits[split]!;
  const out = new Int32Array(s.tokens);
  let at = 0;
  for (const e of s.shards) {
    const r = new ShardReader(join(dir, e.file));
    r.read(0, e.tokens, out, at);
    r.close();
    at += e.tokens;
  }
  return out;
}
