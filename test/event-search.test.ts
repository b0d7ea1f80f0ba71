import t from 'tap';
import { assertSeatInvariant, serviceAuth, startEventApp, type TestEventApp } from './helpers/event-app.js';
import { assertProblem, followNext, linkTarget, pointers, postEvent, postVenue, type ApiEvent } from './helpers/event-api.js';
import { testStores } from './helpers/postgres.js';

const KINDS = ['Conference', 'Concert', 'Workshop', 'Meetup', 'Festival'];
const ADJECTIVES = ['Annual', 'Summer', 'Winter', 'Open', 'Grand', 'Little'];
const VENUES = ['Convention Center', 'Jazz Club', 'City Hall', 'Riverside Park'];
const DESCRIPTIONS = ['Technology talks and demos', 'Live music all night', 'Hands-on sessions for beginners'];
const DAY = 86_400_000;
/** Seeding 150 events per test: durability per commit is not what these tests are about. */
const FAST = { SQLITE_SYNCHRONOUS: 'NORMAL' };
const FIRST_DAY = Date.parse('2026-01-01T19:00:00Z');

interface Seed {
  name: string;
  description: string;
  venue: string;
  event_date: string;
  total_tickets: number;
}

/** 150 events whose dates are a permutation of 150 consecutive days, so date order differs from id order. */
const SEEDS: Seed[] = Array.from({ length: 150 }, (_, i) => ({
  name: `${ADJECTIVES[i % ADJECTIVES.length]} ${KINDS[i % KINDS.length]} ${i}`,
  description: DESCRIPTIONS[i % DESCRIPTIONS.length] ?? '',
  venue: VENUES[i % VENUES.length] ?? '',
  event_date: dayIso((i * 37) % 150),
  total_tickets: 100,
}));

function dayIso(day: number): string {
  return new Date(FIRST_DAY + day * DAY).toISOString().replace('.000Z', 'Z');
}

async function seed(app: TestEventApp): Promise<ApiEvent[]> {
  const events: ApiEvent[] = [];
  for (const body of SEEDS) events.push(await postEvent(app, { ...body }));
  return events;
}

const words = (text: string): string[] => text.normalize('NFKC').toLowerCase().match(/[\p{L}\p{N}_]+/gu) ?? [];

/** The contract of q: every word of the query is a prefix of some word of name, description or venue. */
function matchesQuery(event: ApiEvent, q: string): boolean {
  const text = words(`${event.name} ${event.description} ${event.venue}`);
  return words(q).every((w) => text.some((word) => word.startsWith(w)));
}

const byDate = (a: ApiEvent, b: ApiEvent): number => (a.event_date === b.event_date ? a.id - b.id : a.event_date < b.event_date ? -1 : 1);
const ids = (events: ApiEvent[]): number[] => events.map((e) => e.id);

async function list(app: TestEventApp, query: string): Promise<{ events: ApiEvent[]; total: number }> {
  const response = await app.inject({ method: 'GET', url: `/events?${query}` });
  if (response.statusCode !== 200) throw new Error(`GET /events?${query} answered ${response.statusCode}: ${response.body}`);
  return { events: response.json<ApiEvent[]>(), total: Number(response.headers['x-total-count']) };
}

t.test('an invalid cursor is 400 naming cursor', async (t) => {
  const app = await startEventApp(t, FAST);
  await postEvent(app);
  for (const cursor of ['abc', 'not-a-cursor!!', Buffer.from('{"d":"x","k":1,"id":1}').toString('base64url'), Buffer.from('[1,2,3]').toString('base64url')]) {
    const problem = assertProblem(t, await app.inject({ method: 'GET', url: `/events?cursor=${encodeURIComponent(cursor)}` }), 400, 'validation');
    t.same(pointers(problem), ['cursor'], `cursor ${cursor} is refused`);
  }
});

for (const store of await testStores()) {
  t.test(`on ${store}`, async (t) => {
    t.test("q matches words in name, description and venue as prefixes ('conf' finds 'Conference'), and all words must match", async (t) => {
      const app = await startEventApp(t, FAST, { store });
      const events = await seed(app);
      for (const q of ['conference', 'conf', 'CONFERENCE', 'music', 'jazz', 'jazz conference', 'Jazz CONF', 'riverside music summer', 'beginners workshop']) {
        const expected = events.filter((e) => matchesQuery(e, q)).sort(byDate);
        t.ok(expected.length > 0, `the seed has events for '${q}'`);
        const found = await list(app, `q=${encodeURIComponent(q)}&limit=1000`);
        t.same(ids(found.events), ids(expected), `q='${q}' finds exactly the ${expected.length} matching events, by date`);
        t.equal(found.total, expected.length, `X-Total-Count for '${q}'`);
      }
      const conference = events.filter((e) => e.name.includes('Conference')).map((e) => e.id).sort((a, b) => a - b);
      t.same(ids((await list(app, 'q=conf&limit=1000')).events).sort((a, b) => a - b), conference, "'conf' finds every 'Conference' and nothing else");
      t.same((await list(app, 'q=jazz%20nonexistentword')).events, [], 'a word that matches nothing empties the result');
      t.same((await list(app, 'q=onference')).events, [], 'words match as prefixes, not infixes');
    });

    t.test('FTS syntax characters in q (", *, OR, (, NEAR, column:) are plain text and never cause errors', async (t) => {
      const app = await startEventApp(t, FAST, { store });
      const events = await seed(app);
      const cases = ['"conference', '"conference"', 'conf*', '(jazz)', '-jazz', '^jazz', 'jazz OR conference', 'jazz AND', 'NEAR(jazz conference)', 'venue:jazz', "jazz' --", 'conference"'];
      for (const q of cases) {
        const response = await app.inject({ method: 'GET', url: `/events?q=${encodeURIComponent(q)}&limit=1000` });
        t.equal(response.statusCode, 200, `q='${q}' answers 200`);
        const expected = events.filter((e) => matchesQuery(e, q)).sort(byDate);
        t.same(ids(response.json<ApiEvent[]>()), ids(expected), `q='${q}' is read as the words ${JSON.stringify(words(q))}`);
      }
      for (const q of ['"', '*', '(', ')', '"*"', 'OR', '-', ':']) {
        const response = await app.inject({ method: 'GET', url: `/events?q=${encodeURIComponent(q)}` });
        t.equal(response.statusCode, 200, `q='${q}' answers 200`);
        t.ok(Array.isArray(response.json<unknown>()), 'with a JSON array');
      }
    });

    t.test('the venue filter is a case-insensitive exact match', async (t) => {
      const app = await startEventApp(t, FAST, { store });
      const events = await seed(app);
      const jazz = ids(events.filter((e) => e.venue === 'Jazz Club').sort(byDate));
      t.same(ids((await list(app, 'venue=Jazz%20Club&limit=1000')).events), jazz);
      t.same(ids((await list(app, 'venue=jazz%20club&limit=1000')).events), jazz, 'lower case');
      t.same(ids((await list(app, 'venue=JAZZ%20CLUB&limit=1000')).events), jazz, 'upper case');
      t.equal((await list(app, 'venue=jazz%20club')).total, jazz.length);
      t.same((await list(app, 'venue=Jazz')).events, [], 'a part of the name is not a match');
    });

    t.test('venue_id filters on the linked venue', async (t) => {
      const app = await startEventApp(t, FAST, { store });
      const hall = await postVenue(app, { name: 'Hall', capacity: 1000 });
      const club = await postVenue(app, { name: 'Club', capacity: 1000 });
      const inHall = [await postEvent(app, { venue_id: hall.id }), await postEvent(app, { venue_id: hall.id, event_date: '2027-01-01T00:00:00Z' })];
      await postEvent(app, { venue_id: club.id });
      await postEvent(app);
      t.same(ids((await list(app, `venue_id=${hall.id}`)).events), ids([...inHall].sort(byDate)));
    });

    t.test('from and to filter on event_date, both inclusive, offsets read as UTC', async (t) => {
      const app = await startEventApp(t, FAST, { store });
      const events = await seed(app);
      const within = (from: string, to: string) => ids(events.filter((e) => e.event_date >= from && e.event_date <= to).sort(byDate));
      const from = dayIso(10);
      const to = dayIso(20);
      const expected = within(from, to);
      t.equal(expected.length, 11, 'days 10 to 20 inclusive');
      const found = await list(app, `from=${from}&to=${to}`);
      t.same(ids(found.events), expected, 'both ends are included');
      t.equal(found.total, 11);
      const withOffsets = await list(app, `from=${encodeURIComponent(dayIso(10).replace('19:00:00Z', '21:00:00+02:00'))}&to=${encodeURIComponent(dayIso(20).replace('19:00:00Z', '14:00:00-05:00'))}`);
      t.same(ids(withOffsets.events), expected, 'offsets are converted before comparing');
      const noOffset = await list(app, `from=${dayIso(10).replace('Z', '')}&to=${dayIso(20).replace('Z', '')}`);
      t.same(ids(noOffset.events), expected, 'no offset means UTC');
      t.same(ids((await list(app, `from=${dayIso(145)}`)).events), within(dayIso(145), dayIso(1000)), 'from alone');
      t.same(ids((await list(app, `to=${dayIso(3)}`)).events), within(dayIso(-1), dayIso(3)), 'to alone');
      t.same((await list(app, `from=${dayIso(20)}&to=${dayIso(10)}`)).events, [], 'an empty window finds nothing');
      const justAfter = new Date(Date.parse(dayIso(10)) + 1000).toISOString();
      t.same(ids((await list(app, `from=${justAfter}&to=${to}`)).events), within(justAfter, to), 'one second later leaves the first day out');
    });

    t.test('available=true leaves out sold-out events', async (t) => {
      const app = await startEventApp(t, FAST, { store });
      const events = await seed(app);
      const soldOut = events[17];
      t.ok(soldOut);
      if (!soldOut) return;
      const reserve = await app.inject({ method: 'PUT', url: `/events/${soldOut.id}/tickets`, headers: serviceAuth, payload: { operation: 'reserve', ticket_count: 100 } });
      t.equal(reserve.statusCode, 200);
      t.equal(reserve.json<ApiEvent>().available_tickets, 0);
      const available = await list(app, 'available=true&limit=1000');
      t.equal(available.events.length, 149);
      t.equal(available.total, 149);
      t.notOk(ids(available.events).includes(soldOut.id), 'the sold-out event is left out');
      t.ok(available.events.every((e) => e.available_tickets > 0));
      t.equal((await list(app, 'limit=1000')).total, 150, 'without the filter it is listed');
      t.equal((await list(app, 'available=false&limit=1000')).total, 150, 'available=false does not filter');
      await assertSeatInvariant(t, app, soldOut.id);
    });

    t.test('sort=name, -event_date and -created_at order the events; the default is event_date', async (t) => {
      const app = await startEventApp(t, FAST, { store });
      const events = await seed(app);
      const byName = [...events].sort((a, b) => (a.name === b.name ? a.id - b.id : a.name < b.name ? -1 : 1));
      t.same(ids((await list(app, 'sort=name&limit=1000')).events), ids(byName), 'sort=name');
      t.same(ids((await list(app, 'sort=-event_date&limit=1000')).events), ids([...events].sort(byDate).reverse()), 'sort=-event_date');
      t.same(ids((await list(app, 'sort=event_date&limit=1000')).events), ids([...events].sort(byDate)), 'sort=event_date');
      t.same(ids((await list(app, 'limit=1000')).events), ids([...events].sort(byDate)), 'the default sort is event_date');
      const newest = (await list(app, 'sort=-created_at&limit=1000')).events;
      t.same(ids(newest), ids(events).reverse(), 'sort=-created_at: the newest first');
      t.ok(newest.every((e, i) => i === 0 || Date.parse(newest[i - 1]?.created_at ?? '') >= Date.parse(e.created_at)), 'created_at never increases');
    });

    t.test('the default limit is 100; Link rel="next" visits every event once in order and rel="prev" from the second page returns the first', async (t) => {
      const app = await startEventApp(t, FAST, { store });
      const events = await seed(app);
      const ordered = ids([...events].sort(byDate));
      const first = await app.inject({ method: 'GET', url: '/events' });
      const firstPage = first.json<ApiEvent[]>();
      t.equal(firstPage.length, 100, 'the default limit is 100');
      t.equal(first.headers['x-total-count'], '150', 'X-Total-Count gives the total');
      t.equal(linkTarget(first, 'prev'), undefined, 'the first page has no prev link');
      const next = linkTarget(first, 'next');
      t.ok(next, 'the first page links to the next');

      const second = await app.inject({ method: 'GET', url: next ?? '/events' });
      t.same(ids(second.json<ApiEvent[]>()), ordered.slice(100), 'the second page has the other 50');
      t.equal(second.headers['x-total-count'], '150');
      t.equal(linkTarget(second, 'next'), undefined, 'the last page has no next link');
      const prev = linkTarget(second, 'prev');
      t.ok(prev, 'the second page links back');
      const back = await app.inject({ method: 'GET', url: prev ?? '/events' });
      t.same(ids(back.json<ApiEvent[]>()), ids(firstPage), 'rel="prev" returns the first page');
      t.equal(linkTarget(back, 'prev'), undefined, 'which has no prev link');
      t.ok(linkTarget(back, 'next'), 'and a next link');

      const walked = await followNext<ApiEvent>(app, '/events');
      t.equal(walked.pages, 2);
      t.same(ids(walked.items), ordered, 'every event exactly once, in order');

      for (const query of ['limit=7&sort=-event_date', 'limit=13&sort=name', 'limit=9&sort=-created_at', 'limit=4&q=jazz&sort=-event_date', 'limit=5&venue=city%20hall&available=true']) {
        const all = (await list(app, `${query.replace(/limit=\d+/, 'limit=1000')}`)).events;
        const paged = await followNext<ApiEvent>(app, `/events?${query}`);
        t.same(ids(paged.items), ids(all), `paging ${query} keeps the filters and order and visits each event once`);
      }
    });

    t.test('offset skips events and links to the previous offset', async (t) => {
      const app = await startEventApp(t, FAST, { store });
      const events = await seed(app);
      const ordered = ids([...events].sort(byDate));
      const page = await app.inject({ method: 'GET', url: '/events?offset=10&limit=5' });
      t.same(ids(page.json<ApiEvent[]>()), ordered.slice(10, 15));
      t.equal(page.headers['x-total-count'], '150', 'the total ignores the offset');
      const prev = linkTarget(page, 'prev');
      t.ok(prev);
      t.same(ids((await list(app, (prev ?? '').split('?')[1] ?? '')).events), ordered.slice(5, 10), 'rel="prev" is the page before');
      const next = linkTarget(page, 'next');
      t.same(ids((await list(app, (next ?? '').split('?')[1] ?? '')).events), ordered.slice(15, 20), 'rel="next" is the page after');
      t.same((await list(app, 'offset=150')).events, [], 'an offset past the end is an empty page');
    });

    t.test('paging by name follows Link rel="next" even when the names are 200 non-ASCII characters long', async (t) => {
      const app = await startEventApp(t, FAST, { store });
      for (const letter of ['à', 'é', 'ü']) await postEvent(app, { name: letter.repeat(200) });
      const walked = await followNext<ApiEvent>(app, '/events?sort=name&limit=1');
      t.equal(walked.items.length, 3, 'all three pages are reachable');
    });

    t.test('q with more than 16 words still requires every word to match', async (t) => {
      const app = await startEventApp(t, FAST, { store });
      await postEvent(app, { name: 'Alpha Beta Gamma', description: '', venue: '' });
      const q = `${'alpha '.repeat(16)}nomatch`;
      const response = await app.inject({ method: 'GET', url: `/events?q=${encodeURIComponent(q)}` });
      if (response.statusCode === 200) t.same(response.json<ApiEvent[]>(), [], "'nomatch' matches nothing, so nothing is found");
      else assertProblem(t, response, 400, 'validation');
    });
  });
}
