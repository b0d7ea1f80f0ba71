/** Background batches (platform/bounded.ts): a few items at a time, and a halt or a shutdown stops new ones. */
import t from 'tap';
import { forEachBounded } from '../platform/bounded.js';

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

t.test('items run at most `limit` at a time, and all of them run', async (t) => {
  let running = 0;
  let most = 0;
  const seen: number[] = [];
  const result = await forEachBounded([...Array(20).keys()], 3, new AbortController().signal, async (item) => {
    running += 1;
    most = Math.max(most, running);
    await tick();
    seen.push(item);
    running -= 1;
    return 'done';
  });
  t.equal(most, 3, 'never more than three at once');
  t.same([...seen].sort((a, b) => a - b), [...Array(20).keys()], 'every item ran once');
  t.same(result, { started: 20, halted: false });
});

t.test('an item that halts (its dependency is unreachable) stops new items from starting; those started finish', async (t) => {
  const seen: number[] = [];
  const result = await forEachBounded([...Array(20).keys()], 2, new AbortController().signal, async (item) => {
    await tick();
    seen.push(item);
    return item === 3 ? 'halt' : 'done';
  });
  t.ok(result.halted, 'the batch reports the halt');
  t.ok(result.started <= 5, `no new item starts after the halt (started ${result.started})`);
  t.equal(seen.length, result.started, 'every started item finished');
});

t.test('a shutdown (the signal aborts) stops new items from starting', async (t) => {
  const stopping = new AbortController();
  const result = await forEachBounded([...Array(20).keys()], 2, stopping.signal, async (item) => {
    if (item === 1) stopping.abort();
    await tick();
    return 'done';
  });
  t.equal(result.started, 2, 'only the two items already started ran');
});

t.test('a failing item halts the batch and its error is thrown once the started items have ended', async (t) => {
  let finished = 0;
  const batch = forEachBounded([...Array(10).keys()], 2, new AbortController().signal, async (item) => {
    await tick();
    if (item === 0) throw new Error('boom');
    await tick();
    finished += 1;
    return 'done';
  });
  await t.rejects(batch, /boom/, 'the first error is thrown');
  t.equal(finished, 1, 'the item running beside it finished first; nothing new started');
});
