/** New references (platform/references.ts): UUIDv7, ordered by time, and random after the time (they are bearer secrets); the random pool under them (platform/random-pool.ts). */
import t from 'tap';
import { takeRandom } from '../platform/random-pool.js';
import { newReference } from '../platform/references.js';

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
/** The 48-bit millisecond time at the front of a UUIDv7. */
const millisecondOf = (reference: string): number => parseInt(reference.replace(/-/g, '').slice(0, 12), 16);

t.test('a reference is a UUIDv7 whose time is now', async (t) => {
  const before = Date.now();
  const reference = newReference();
  const after = Date.now();
  t.match(reference, UUID_V7);
  t.ok(millisecondOf(reference) >= before && millisecondOf(reference) <= after, 'the time at its front is when it was made');
});

t.test('references of later milliseconds sort after earlier ones (B-tree inserts land at the right-hand edge)', async (t) => {
  const first = newReference();
  const start = Date.now();
  while (Date.now() <= start + 1) {
    // wait for a later millisecond
  }
  const second = newReference();
  t.ok(second > first, `${second} sorts after ${first}`);
});

t.test('within one millisecond the bits after the time are random, not a counter (a neighbour cannot be guessed)', async (t) => {
  // Pairs made one after the other in the same millisecond: with the uuid library's default
  // monotonic counter every pair ascends; with random bits about half do.
  let pairs = 0;
  let ascending = 0;
  const seen = new Set<string>();
  for (let i = 0; i < 4000; i += 1) {
    const a = newReference();
    const b = newReference();
    seen.add(a).add(b);
    if (millisecondOf(a) !== millisecondOf(b)) continue;
    pairs += 1;
    if (b > a) ascending += 1;
  }
  t.ok(pairs >= 100, `enough pairs shared a millisecond (${pairs})`);
  t.ok(ascending / pairs < 0.7, `${ascending} of ${pairs} same-millisecond pairs ascend: not a counter`);
  t.equal(seen.size, 8000, 'all different');
});

t.test('the random pool hands every byte out once, across refills', async (t) => {
  // 4 KiB per refill: 1,000 takes of 16 bytes cross three refills.
  const seen = new Set<string>();
  for (let i = 0; i < 1000; i += 1) seen.add(takeRandom(16).toString('hex'));
  t.equal(seen.size, 1000, 'no two takes alike');
  const odd = takeRandom(4000);
  t.equal(odd.length, 4000, 'a take that does not fit what is left comes whole from a refill');
  t.throws(() => takeRandom(4097), RangeError, 'more than the pool at once is refused');
});
