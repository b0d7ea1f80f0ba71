import t from 'tap';
import type { Test } from 'tap';
import { ADMIN_TOKEN, originalEvent, serviceAuth, startEventApp, type TestEventApp } from './helpers/event-app.js';
import { assertNoInternals, assertProblem, pointers, postEvent, type ApiEvent, type Problem } from './helpers/event-api.js';
import { testStores } from './helpers/postgres.js';

/** POST /events with `body` must be a 400 validation problem naming exactly `expected`. */
async function rejectsCreate(t: Test, app: TestEventApp, body: Record<string, unknown>, expected: string[]): Promise<Problem> {
  const problem = assertProblem(t, await app.inject({ method: 'POST', url: '/events', payload: body }), 400, 'validation');
  t.same(pointers(problem), [...expected].sort(), `errors name ${expected.join(', ')}`);
  for (const error of problem.errors ?? []) t.ok(error.detail.length > 0, `${error.pointer} has a detail`);
  return problem;
}

async function assertNothingWritten(t: Test, app: TestEventApp): Promise<void> {
  const list = await app.inject({ method: 'GET', url: '/events' });
  t.same(list.json<ApiEvent[]>(), [], 'GET /events shows nothing was written');
  t.equal(list.headers['x-total-count'], '0');
}

t.test('a missing required field is 400 naming #/name', async (t) => {
  const app = await startEventApp(t);
  const { name: _name, ...withoutName } = originalEvent;
  const problem = await rejectsCreate(t, app, withoutName, ['#/name']);
  t.match(problem.errors?.[0]?.detail, /required/);
  await rejectsCreate(t, app, { name: 'x' }, ['#/event_date', '#/total_tickets']);
  await assertNothingWritten(t, app);
});

t.test('a number sent as a string ("total_tickets": "200") is 400: bodies are not coerced', async (t) => {
  const app = await startEventApp(t);
  await rejectsCreate(t, app, { ...originalEvent, total_tickets: '200' }, ['#/total_tickets']);
  await rejectsCreate(t, app, { ...originalEvent, name: 42 }, ['#/name']);
  await rejectsCreate(t, app, { ...originalEvent, total_tickets: 20.5 }, ['#/total_tickets']);
  const event = await postEvent(app);
  const update = assertProblem(t, await app.inject({ method: 'PUT', url: `/events/${event.id}`, payload: { total_tickets: '300' } }), 400, 'validation');
  t.same(pointers(update), ['#/total_tickets']);
  t.equal((await app.inject({ method: 'GET', url: `/events/${event.id}` })).json<ApiEvent>().total_tickets, 200, 'the update was not applied');
});

t.test('negative and huge total_tickets (-1 and 1e12) are 400', async (t) => {
  const app = await startEventApp(t);
  await rejectsCreate(t, app, { ...originalEvent, total_tickets: -1 }, ['#/total_tickets']);
  await rejectsCreate(t, app, { ...originalEvent, total_tickets: 1e12 }, ['#/total_tickets']);
  await rejectsCreate(t, app, { ...originalEvent, total_tickets: 0 }, ['#/total_tickets']);
  await rejectsCreate(t, app, { ...originalEvent, ticket_price: -1 }, ['#/ticket_price']);
  await assertNothingWritten(t, app);
});

t.test("an impossible date ('2025-13-45T00:00:00') and a non-date ('tomorrow') are 400 naming #/event_date", async (t) => {
  const app = await startEventApp(t);
  await rejectsCreate(t, app, { ...originalEvent, event_date: '2025-13-45T00:00:00' }, ['#/event_date']);
  await rejectsCreate(t, app, { ...originalEvent, event_date: 'tomorrow' }, ['#/event_date']);
  await rejectsCreate(t, app, { ...originalEvent, event_date: '2025-02-30T10:00:00Z' }, ['#/event_date']);
  await rejectsCreate(t, app, { ...originalEvent, event_date: '2025-06-15T25:00:00Z' }, ['#/event_date']);
  await assertNothingWritten(t, app);
});

t.test('a date in years 0000-0099 is kept as written or refused, never moved into the 1900s', async (t) => {
  const app = await startEventApp(t);
  const response = await app.inject({ method: 'POST', url: '/events', payload: { ...originalEvent, event_date: '0050-06-15T09:00:00' } });
  if (response.statusCode === 201) t.equal(response.json<ApiEvent>().event_date, '0050-06-15T09:00:00Z', 'the year is kept');
  else assertProblem(t, response, 400, 'validation');
});

t.test('an unknown field is 400 naming #/colour', async (t) => {
  const app = await startEventApp(t);
  await rejectsCreate(t, app, { ...originalEvent, colour: 'red' }, ['#/colour']);
  const event = await postEvent(app);
  const update = assertProblem(t, await app.inject({ method: 'PUT', url: `/events/${event.id}`, payload: { colour: 'red' } }), 400, 'validation');
  t.same(pointers(update), ['#/colour'], 'unknown fields are refused on update too');
});

t.test('several invalid fields at once are all listed in errors', async (t) => {
  const app = await startEventApp(t);
  const problem = await rejectsCreate(t, app, { name: '', event_date: 'tomorrow', total_tickets: -1, currency: 'usd', colour: 'red', image_url: 7 }, [
    '#/name',
    '#/event_date',
    '#/total_tickets',
    '#/currency',
    '#/colour',
    '#/image_url',
  ]);
  t.match(problem.detail, /6 fields/);
  await assertNothingWritten(t, app);
});

t.test('value errors (impossible date, unknown currency or venue) are listed together with schema errors', async (t) => {
  const app = await startEventApp(t);
  // Impossible dates, unknown currencies and time zones are formats, checked in the same pass as the schema.
  await rejectsCreate(t, app, { name: 'Both kinds', event_date: '2025-13-45T00:00:00', total_tickets: -1, currency: 'ABC', timezone: 'Mars/Olympus' }, [
    '#/event_date',
    '#/total_tickets',
    '#/currency',
    '#/timezone',
  ]);
  // Whether a venue exists is a fact about stored data, checked once the input itself is valid.
  await rejectsCreate(t, app, { name: 'No such venue', event_date: '2025-06-15T09:00:00', total_tickets: 10, venue_id: 42 }, ['#/venue_id']);
});

t.test('a 100 kB description is 413 and nothing is written', async (t) => {
  const app = await startEventApp(t);
  const response = await app.inject({ method: 'POST', url: '/events', payload: { ...originalEvent, description: 'x'.repeat(100 * 1024) } });
  assertProblem(t, response, 413, 'payload-too-large');
  await assertNothingWritten(t, app);
});

t.test('a text/plain body is 415 and invalid JSON sent as application/json is 400', async (t) => {
  const app = await startEventApp(t);
  const text = await app.inject({ method: 'POST', url: '/events', headers: { 'content-type': 'text/plain' }, payload: JSON.stringify(originalEvent) });
  assertProblem(t, text, 415, 'unsupported-media-type');
  const form = await app.inject({ method: 'POST', url: '/events', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'name=x' });
  assertProblem(t, form, 415, 'unsupported-media-type');
  const broken = await app.inject({ method: 'POST', url: '/events', headers: { 'content-type': 'application/json' }, payload: '{"name": "Tech Conference", "total_tickets": 200' });
  assertProblem(t, broken, 400, 'malformed-body');
  const empty = await app.inject({ method: 'POST', url: '/events', headers: { 'content-type': 'application/json' }, payload: '' });
  assertProblem(t, empty, 400);
  const array = await app.inject({ method: 'POST', url: '/events', headers: { 'content-type': 'application/json' }, payload: '[1, 2]' });
  assertProblem(t, array, 400, 'validation');
  await assertNothingWritten(t, app);
});

t.test('bad query parameters (limit=0, limit=abc, sort=bogus) are 400 naming the parameter', async (t) => {
  const app = await startEventApp(t);
  const cases: Array<[string, string]> = [
    ['/events?limit=0', 'limit'],
    ['/events?limit=abc', 'limit'],
    ['/events?limit=1001', 'limit'],
    ['/events?offset=-1', 'offset'],
    ['/events?sort=bogus', 'sort'],
    ['/events?from=tomorrow', 'from'],
    ['/events?to=2025-13-45T00:00:00', 'to'],
    ['/events?available=perhaps', 'available'],
  ];
  for (const [url, parameter] of cases) {
    const problem = assertProblem(t, await app.inject({ method: 'GET', url }), 400, 'validation');
    t.same(pointers(problem), [parameter], `${url} names ${parameter}`);
  }
});

t.test('several bad query parameters at once are all listed', async (t) => {
  const app = await startEventApp(t);
  const problem = assertProblem(t, await app.inject({ method: 'GET', url: '/events?limit=0&sort=bogus&offset=-1' }), 400, 'validation');
  t.same(pointers(problem), ['limit', 'offset', 'sort']);
});

t.test('a bad path id (/events/abc) is 400 naming id', async (t) => {
  const app = await startEventApp(t);
  for (const url of ['/events/abc', '/events/0', '/events/1.5', '/venues/abc']) {
    const problem = assertProblem(t, await app.inject({ method: 'GET', url }), 400, 'validation');
    t.same(pointers(problem), ['id'], `${url} names id`);
  }
  const put = assertProblem(t, await app.inject({ method: 'PUT', url: '/events/abc/tickets', headers: serviceAuth, payload: { operation: 'reserve', ticket_count: 1 } }), 400, 'validation');
  t.same(pointers(put), ['id']);
});

t.test('bad hold list parameters are 400, never 500', async (t) => {
  const app = await startEventApp(t);
  for (const [url, parameter] of [
    ['/holds?state=SOLD', 'state'],
    ['/holds?older_than=-1', 'older_than'],
    ['/holds?event_id=abc', 'event_id'],
  ] as const) {
    const problem = assertProblem(t, await app.inject({ method: 'GET', url, headers: serviceAuth }), 400, 'validation');
    t.same(pointers(problem), [parameter], `${url} names ${parameter}`);
  }
});

t.test('an older_than beyond any representable date is 400 naming older_than, never 500', async (t) => {
  const app = await startEventApp(t);
  for (const url of ['/holds?older_than=1e20', '/holds?older_than=Infinity', '/holds?older_than=-Infinity', '/holds?older_than=1e400']) {
    const problem = assertProblem(t, await app.inject({ method: 'GET', url, headers: serviceAuth }), 400, 'validation');
    t.same(pointers(problem), ['older_than'], `${url} names older_than`);
  }
});

for (const store of await testStores()) {
  t.test(`on ${store}`, async (t) => {
    t.test('with an admin token configured, refused writes are 401 without stack traces and SQL in q is only text', async (t) => {
      const app = await startEventApp(t, { ADMIN_TOKEN }, { store });
      const answers = [
        await app.inject({ method: 'POST', url: '/events', payload: { ...originalEvent, total_tickets: 'lots' } }),
        await app.inject({ method: 'POST', url: '/events', headers: { authorization: 'Bearer wrong-token-0123456789' }, payload: originalEvent }),
        await app.inject({ method: 'POST', url: '/events', headers: { authorization: 'Basic abc' }, payload: originalEvent }),
        await app.inject({ method: 'GET', url: "/events?q=' OR 1=1; DROP TABLE events; --" }),
        await app.inject({ method: 'GET', url: '/events/999999' }),
        await app.inject({ method: 'GET', url: '/no/such/route' }),
      ];
      t.same(answers.map((a) => a.statusCode), [401, 401, 401, 200, 404, 404]);
      for (const answer of answers) assertNoInternals(t, answer);
      t.same((await app.inject({ method: 'GET', url: '/events' })).json<ApiEvent[]>(), [], 'nothing was written and the table is still there');
    });
  });
}
