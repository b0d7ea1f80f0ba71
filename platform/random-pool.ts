/**
 * Random bytes from the CSPRNG, drawn from a refilled pool: one `randomFillSync` (a system call) per
 * 4 KiB instead of one per id. Every byte is handed out once. What `take` returns is a view of the
 * pool: read it before the next call (the pool is refilled in place).
 */
import { randomFillSync } from 'node:crypto';

const pool = Buffer.allocUnsafe(4096);
let offset = pool.length;

export function takeRandom(bytes: number): Buffer {
  if (bytes > pool.length) throw new RangeError(`at most ${pool.length} random bytes at a time, not ${bytes}`);
  if (offset + bytes > pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  const taken = pool.subarray(offset, offset + bytes);
  offset += bytes;
  return taken;
}
