/**
 * Text searches are cached beside the domain's search (event-service/domain/events.ts, over
 * platform/read-cache.ts): whole pages until the next write, and each page's ids and total until an
 * event is created, changed or deleted. A cached answer must never be stale once a change has been
 * answered: each test searches, changes something, and searches again.
 */
import t from 'tap';
import { ReadCache } from '../platform/read-cache.js';
import { serviceAuth, startEventApp, type TestEventApp } from './helpers/event-app.js';
import { createHold, holdAction, postEvent, type ApiEvent } from './helpers/event-api.js';

const FAST = { SQLITE_SYNCHRONOUS: 'NORMAL' };

async function search(app: TestEventApp, query: string): Promise<{ events: ApiEvent[]; total: number; link: string | undefined }> {
  const response = await app.inject({ method: 'GET', url: `/events?${query}` });
  if (response.statusCode !== 200) throw new Error(`search answered ${response.statusCode}: ${response.body}`);
  return { events: response.json<ApiEvent[]>(), total: Number(response.headers['x-total-count']), link: response.headers.link as string | undefined };
}

t.test('a repeated search sees every change answered before it: new, changed, deleted events and moved seats', async (t) => {
  const app = await startEventApp(t, FAST);
  const first = await postEvent(app, { name: 'Quasar Night', total_tickets: 10 });
  await postEvent(app, { name: 'Other Evening', total_tickets: 10 });
  const q = 'q=quasar&limit=5';

  let found = await search(app, q);
  t.same(found.events.map((e) => e.id), [first.id], 'one match');
  t.same(await search(app, q), found, 'the same answer again (from the cache)');

  const second = await postEvent(app, { name: 'Quasar Morning', total_tickets: 10 });
  found = await search(app, q);
  t.equal(found.total, 2, 'a new matching event is counted at once');
  t.ok(found.events.some((e) => e.id === second.id), 'and listed');

  const hold = await createHold(app, first.id, 3);
  found = await search(app, q);
  t.equal(found.events.find((e) => e.id === first.id)?.available_tickets, 7, 'seats held are shown at once');
  t.equal((await holdAction(app, hold.hold_id, 'release')).statusCode, 200);
  found = await search(app, q);
  t.equal(found.events.find((e) => e.id === first.id)?.available_tickets, 10, 'and seats released');

  const adjusted = await app.inject({ method: 'PUT', url: `/events/${first.id}/tickets`, headers: serviceAuth, payload: { operation: 'reserve', ticket_count: 2 } });
  t.equal(adjusted.statusCode, 200);
  t.equal((await search(app, q)).events.find((e) => e.id === first.id)?.available_tickets, 8, 'a manual adjustment too');

  const renamed = await app.inject({ method: 'PUT', url: `/events/${second.id}`, payload: { name: 'Nebula Morning' } });
  t.equal(renamed.statusCode, 200);
  found = await search(app, q);
  t.same(found.events.map((e) => e.id), [first.id], 'an event renamed away from the word leaves the results');
  t.equal(found.total, 1, 'and the count');
  t.same((await search(app, 'q=nebula')).events.map((e) => e.id), [second.id], 'and is found by its new name');

  t.equal((await app.inject({ method: 'DELETE', url: `/events/${first.id}` })).statusCode, 204);
  found = await search(app, q);
  t.same(found.events, [], 'a deleted event leaves the results');
  t.equal(found.total, 0);
});

t.test('a search answered while seats move is not kept: the next search after the change was answered shows it', async (t) => {
  const app = await startEventApp(t, FAST);
  const event = await postEvent(app, { name: 'Comet Parade', total_tickets: 50 });
  const q = 'q=comet&limit=5';
  await search(app, q);
  for (let seats = 1; seats <= 5; seats += 1) {
    const [held] = await Promise.all([createHold(app, event.id, seats), search(app, q), search(app, q)]);
    t.equal(held.state, 'HELD');
    const after = await search(app, q);
    t.equal(after.events[0]?.available_tickets, 50 - (seats * (seats + 1)) / 2, `after hold ${seats}, every seat held so far is shown`);
  }
  const many = await search(app, 'q=comet&limit=200');
  await createHold(app, event.id, 1);
  t.equal((await search(app, 'q=comet&limit=200')).events[0]?.available_tickets, (many.events[0]?.available_tickets ?? 0) - 1, 'a page above 100 events (not kept whole) is fresh too');
});

t.test('cached pages keep their paging: the Link of a repeated search still leads to the same next page', async (t) => {
  const app = await startEventApp(t, FAST);
  for (let i = 0; i < 7; i += 1) await postEvent(app, { name: `Pulsar ${i}`, event_date: `2027-0${1 + (i % 9)}-10T20:00:00Z` });
  const firstTime = await search(app, 'q=pulsar&limit=3');
  const again = await search(app, 'q=pulsar&limit=3');
  t.same(again, firstTime, 'the same page, total and Link');
  t.match(again.link, /rel="next"/, 'with a next link');
  t.equal(again.total, 7);
});

t.test('ReadCache keeps nothing computed while a change ran, and empties when a change starts', async (t) => {
  const cache = new ReadCache<number>(2);
  let computed = 0;
  const compute = (value: number) => async () => {
    computed += 1;
    return value;
  };
  t.equal(await cache.through('a', compute(1)), 1);
  t.equal(await cache.through('a', compute(2)), 1, 'a hit');
  t.equal(computed, 1);

  let finishChange!: () => void;
  const change = cache.change(() => new Promise<void>((resolve) => (finishChange = resolve)));
  t.equal(cache.size, 0, 'a change empties the cache when it starts');
  t.equal(await cache.through('a', compute(3)), 3, 'during a change a read computes');
  t.equal(await cache.through('a', compute(4)), 4, 'and its result was not kept');
  finishChange();
  await change;

  let release!: () => void;
  const slow = cache.through('b', async () => {
    await new Promise<void>((resolve) => (release = resolve));
    return 5;
  });
  await cache.change(async () => undefined);
  release();
  t.equal(await slow, 5);
  t.equal(await cache.through('b', compute(6)), 6, 'a result whose computation overlapped a change is not kept');

  await cache.through('c', compute(7));
  await cache.through('d', compute(8));
  t.equal(cache.size, 2, 'bounded');
  t.equal(await cache.through('c', compute(9)), 7, 'c is still there (and now the most recently used)');
  await cache.through('e', compute(10));
  t.equal(await cache.through('c', compute(11)), 7, 'so a new entry pushes out d, not c');
  t.equal(await cache.through('d', compute(12)), 12, 'd went first');

  await t.rejects(
    cache.change(async () => {
      throw new Error('failed change');
    }),
    /failed change/,
  );
  t.equal(await cache.through('z', compute(13)), 13);
  t.equal(await cache.through('z', compute(14)), 13, 'a failed change leaves the cache usable');
});
