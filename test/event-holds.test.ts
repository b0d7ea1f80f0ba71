import { randomUUID } from 'node:crypto';
import t from 'tap';
import { ADMIN_TOKEN, adminAuth, assertSeatInvariant, serviceAuth, startEventApp } from './helpers/event-app.js';
import {
  assertProblem,
  createHold,
  followNext,
  getEvent,
  getHold,
  holdAction,
  holdRequest,
  isoFromNow,
  linkTarget,
  postEvent,
  requestHold,
  sleep,
  type ApiHold,
} from './helpers/event-api.js';
import { testStores } from './helpers/postgres.js';

t.test('hold endpoints refuse a missing or wrong token with 401 and the admin token with 403', async (t) => {
  const app = await startEventApp(t, { ADMIN_TOKEN });
  const anonymous = await app.inject({ method: 'POST', url: '/events', payload: { name: 'Locked', event_date: '2027-01-01T20:00:00Z', total_tickets: 10 } });
  assertProblem(t, anonymous, 401, 'unauthorized');
  const created = await app.inject({ method: 'POST', url: '/events', headers: adminAuth, payload: { name: 'Locked', event_date: '2027-01-01T20:00:00Z', total_tickets: 10 } });
  t.equal(created.statusCode, 201);
  const eventId = created.json<{ id: number }>().id;
  const hold = await createHold(app, eventId, 1);
  const wrong = { authorization: 'Bearer not-the-right-token-123456' };
  const calls: Array<{ method: 'GET' | 'POST'; url: string; payload?: object }> = [
    { method: 'POST', url: '/holds', payload: holdRequest(eventId, 1) },
    { method: 'GET', url: '/holds' },
    { method: 'GET', url: `/holds/${hold.hold_id}` },
    { method: 'POST', url: `/holds/${hold.hold_id}/commit` },
    { method: 'POST', url: `/holds/${hold.hold_id}/release` },
  ];
  for (const call of calls) {
    assertProblem(t, await app.inject({ ...call }), 401, 'unauthorized');
    assertProblem(t, await app.inject({ ...call, headers: wrong }), 401, 'unauthorized');
  }
  for (const call of calls.filter((c) => c.method === 'POST')) assertProblem(t, await app.inject({ ...call, headers: adminAuth }), 403, 'forbidden');

  const list = await app.inject({ method: 'GET', url: '/holds', headers: adminAuth });
  t.equal(list.statusCode, 200, 'the admin token may list holds');
  t.same(list.json<ApiHold[]>().map((h) => h.hold_id), [hold.hold_id]);
  const one = await app.inject({ method: 'GET', url: `/holds/${hold.hold_id}`, headers: adminAuth });
  t.equal(one.statusCode, 200, 'and read one');
  t.match(await getHold(app, hold.hold_id), { state: 'HELD', quantity: 1 }, 'the refused calls changed nothing');
  t.equal((await app.inject({ method: 'GET', url: `/events/${eventId}` })).json<{ available_tickets: number }>().available_tickets, 9);
  await assertSeatInvariant(t, app, eventId);
});

t.test('with a public write rate limit, hold and seat-adjustment calls from ticket-service are never rate limited', async (t) => {
  const app = await startEventApp(t, { RATE_LIMIT_WRITES_PER_MINUTE: '2' });
  const event = await postEvent(app, { total_tickets: 50 });
  const statuses: number[] = [];
  for (let i = 0; i < 5; i += 1) {
    const hold = await requestHold(app, holdRequest(event.id, 1));
    statuses.push(hold.statusCode);
    if (hold.statusCode === 201) statuses.push((await holdAction(app, hold.json<ApiHold>().hold_id, i % 2 === 0 ? 'commit' : 'release')).statusCode);
    statuses.push((await app.inject({ method: 'PUT', url: `/events/${event.id}/tickets`, headers: serviceAuth, payload: { operation: 'reserve', ticket_count: 1 } })).statusCode);
  }
  t.same(statuses, [201, 200, 200, 201, 200, 200, 201, 200, 200, 201, 200, 200, 201, 200, 200], 'no service call was refused');
  await assertSeatInvariant(t, app, event.id);
});

for (const store of await testStores()) {
  t.test(`on ${store}`, async (t) => {
    t.test('100 concurrent holds of one seat against 30 seats: exactly 30 get 201 and 70 get 409 sold-out', async (t) => {
      const app = await startEventApp(t, {}, { store });
      const event = await postEvent(app, { total_tickets: 30 });
      const answers = await Promise.all(Array.from({ length: 100 }, () => requestHold(app, holdRequest(event.id, 1))));
      const created = answers.filter((a) => a.statusCode === 201);
      const refused = answers.filter((a) => a.statusCode === 409);
      t.equal(created.length, 30, 'exactly 30 holds were created');
      t.equal(refused.length, 70, 'the other 70 were refused');
      t.ok(refused.every((a) => a.json<{ type: string }>().type === 'urn:eventsync:problem:sold-out'), 'every refusal is sold-out');
      t.equal(new Set(created.map((a) => a.json<ApiHold>().hold_id)).size, 30, 'the created holds are distinct');
      const after = await getEvent(app, event.id);
      t.match(after, { available_tickets: 0, held_tickets: 30, sold_ratio: 1 });
      const listed = await followNext<ApiHold>(app, `/holds?event_id=${event.id}`, serviceAuth);
      t.equal(listed.items.length, 30, 'only the 30 successful holds were written');
      await assertSeatInvariant(t, app, event.id);
    });

    t.test('repeating a create with the same hold_id, event and quantity answers 200 with the same hold and takes no more seats', async (t) => {
      const app = await startEventApp(t, {}, { store });
      const event = await postEvent(app, { total_tickets: 10 });
      const request = holdRequest(event.id, 3);
      const first = await requestHold(app, request);
      t.equal(first.statusCode, 201);
      const again = await requestHold(app, request);
      t.equal(again.statusCode, 200, 'a retry is answered 200');
      t.same(again.json<ApiHold>(), first.json<ApiHold>(), 'with the same hold');
      const concurrent = await Promise.all([requestHold(app, request), requestHold(app, request), requestHold(app, request)]);
      t.same(concurrent.map((a) => a.statusCode), [200, 200, 200], 'concurrent retries are answered 200 too');
      t.equal((await getEvent(app, event.id)).available_tickets, 7, 'only the first create took seats');

      t.equal((await holdAction(app, request.hold_id, 'commit')).statusCode, 200);
      const afterCommit = await requestHold(app, request);
      t.equal(afterCommit.statusCode, 200, 'a retry after commit still answers the hold');
      t.equal(afterCommit.json<ApiHold>().state, 'COMMITTED');
      t.match(await getEvent(app, event.id), { available_tickets: 7, held_tickets: 0, sold_tickets: 3 });
      await assertSeatInvariant(t, app, event.id);
    });

    t.test('a retried create is answered with its hold even once the event is sold out or its sales have closed, and a retry among other creates takes nothing', async (t) => {
      const app = await startEventApp(t, {}, { store });
      const event = await postEvent(app, { total_tickets: 3 });
      const request = holdRequest(event.id, 3);
      t.equal((await requestHold(app, request)).statusCode, 201);
      t.equal((await getEvent(app, event.id)).available_tickets, 0, 'sold out');
      const retry = await requestHold(app, request);
      t.equal(retry.statusCode, 200, 'the retry is still answered 200 with its hold, not sold-out');
      t.equal(retry.json<ApiHold>().hold_id, request.hold_id);
      assertProblem(t, await requestHold(app, holdRequest(event.id, 1)), 409, 'sold-out');
      const closed = await app.inject({ method: 'PUT', url: `/events/${event.id}`, payload: { sales_start: '2020-01-01T00:00:00Z', sales_end: isoFromNow(-60_000) } });
      t.equal(closed.statusCode, 200, 'its sales close');
      t.equal((await requestHold(app, request)).statusCode, 200, 'the retry is still answered 200 with its hold, not sales-closed');

      const later = await postEvent(app, { total_tickets: 10 });
      const first = holdRequest(later.id, 2);
      t.equal((await requestHold(app, first)).statusCode, 201);
      // The retry arrives among new creates (one group commit): its seats are taken, then given back.
      const mixed = await Promise.all([requestHold(app, holdRequest(later.id, 1)), requestHold(app, first), requestHold(app, holdRequest(later.id, 1))]);
      t.same(mixed.map((a) => a.statusCode), [201, 200, 201]);
      t.match(await getEvent(app, later.id), { available_tickets: 6, held_tickets: 4 }, 'only the two new holds took seats');
      await assertSeatInvariant(t, app, event.id);
      await assertSeatInvariant(t, app, later.id);
    });

    t.test('the same hold_id with another quantity or another event is 409 hold-state and takes nothing', async (t) => {
      const app = await startEventApp(t, {}, { store });
      const event = await postEvent(app, { total_tickets: 10 });
      const other = await postEvent(app, { total_tickets: 10 });
      const hold = await createHold(app, event.id, 2);
      const base = { hold_id: hold.hold_id, event_id: event.id, quantity: 2, expires_at: isoFromNow(60_000) };
      assertProblem(t, await requestHold(app, { ...base, quantity: 3 }), 409, 'hold-state');
      assertProblem(t, await requestHold(app, { ...base, event_id: other.id }), 409, 'hold-state');
      t.equal((await getHold(app, hold.hold_id)).quantity, 2, 'the hold is unchanged');
      t.equal((await getEvent(app, event.id)).available_tickets, 8);
      t.equal((await getEvent(app, other.id)).available_tickets, 10, 'the other event lost no seats');
      await assertSeatInvariant(t, app, event.id);
      await assertSeatInvariant(t, app, other.id);
    });

    t.test('committing twice is idempotent: the second answers 200 and sold_tickets stays', async (t) => {
      const app = await startEventApp(t, {}, { store });
      const event = await postEvent(app, { total_tickets: 10 });
      const hold = await createHold(app, event.id, 4);
      const first = await holdAction(app, hold.hold_id, 'commit');
      t.equal(first.statusCode, 200);
      t.equal(first.json<ApiHold>().state, 'COMMITTED');
      t.match(await getEvent(app, event.id), { available_tickets: 6, held_tickets: 0, sold_tickets: 4 });
      const second = await holdAction(app, hold.hold_id, 'commit');
      t.equal(second.statusCode, 200);
      t.match(second.json<ApiHold>(), { hold_id: hold.hold_id, state: 'COMMITTED', quantity: 4 });
      t.match(await getEvent(app, event.id), { available_tickets: 6, held_tickets: 0, sold_tickets: 4 }, 'sold_tickets is unchanged');
      await assertSeatInvariant(t, app, event.id);
    });

    t.test('releasing twice is idempotent and returns the seats once', async (t) => {
      const app = await startEventApp(t, {}, { store });
      const event = await postEvent(app, { total_tickets: 10 });
      const hold = await createHold(app, event.id, 4);
      await createHold(app, event.id, 1);
      const first = await holdAction(app, hold.hold_id, 'release');
      t.equal(first.statusCode, 200);
      t.equal(first.json<ApiHold>().state, 'RELEASED');
      t.equal((await getEvent(app, event.id)).available_tickets, 9);
      const second = await holdAction(app, hold.hold_id, 'release');
      t.equal(second.statusCode, 200);
      t.equal(second.json<ApiHold>().state, 'RELEASED');
      t.match(await getEvent(app, event.id), { available_tickets: 9, held_tickets: 1 }, 'the seats came back only once');
      await assertSeatInvariant(t, app, event.id);
    });

    t.test('releasing a HELD or a COMMITTED hold returns its seats', async (t) => {
      const app = await startEventApp(t, {}, { store });
      const event = await postEvent(app, { total_tickets: 10 });
      const held = await createHold(app, event.id, 2);
      const sold = await createHold(app, event.id, 3);
      t.equal((await holdAction(app, sold.hold_id, 'commit')).statusCode, 200);
      t.match(await getEvent(app, event.id), { available_tickets: 5, held_tickets: 2, sold_tickets: 3 });

      t.equal((await holdAction(app, held.hold_id, 'release')).statusCode, 200);
      t.match(await getEvent(app, event.id), { available_tickets: 7, held_tickets: 0, sold_tickets: 3 }, 'a HELD release returns its seats');
      await assertSeatInvariant(t, app, event.id);

      const released = await holdAction(app, sold.hold_id, 'release');
      t.equal(released.statusCode, 200);
      t.equal(released.json<ApiHold>().state, 'RELEASED');
      t.match(await getEvent(app, event.id), { available_tickets: 10, held_tickets: 0, sold_tickets: 0 }, 'a COMMITTED release returns its seats');
      t.equal((await getHold(app, sold.hold_id)).state, 'RELEASED');
      await assertSeatInvariant(t, app, event.id);
    });

    t.test('releasing an unknown hold id answers 200 with a RELEASED tombstone and a later create of that id is 409', async (t) => {
      const app = await startEventApp(t, {}, { store });
      const event = await postEvent(app, { total_tickets: 10 });
      const id = randomUUID();
      const release = await holdAction(app, id, 'release');
      t.equal(release.statusCode, 200);
      t.match(release.json<ApiHold>(), { hold_id: id, state: 'RELEASED', quantity: 0, event_id: null });
      t.equal((await getHold(app, id)).state, 'RELEASED', 'the tombstone is stored');
      const late = await requestHold(app, holdRequest(event.id, 2, { hold_id: id }));
      assertProblem(t, late, 409, 'hold-state');
      t.equal((await getEvent(app, event.id)).available_tickets, 10, 'the late create took no seats');
      t.equal((await holdAction(app, id, 'release')).statusCode, 200, 'releasing the tombstone again is fine');
      await assertSeatInvariant(t, app, event.id);
    });

    t.test('a released hold never comes back: create again and commit are both 409 hold-state', async (t) => {
      const app = await startEventApp(t, {}, { store });
      const event = await postEvent(app, { total_tickets: 10 });
      const request = holdRequest(event.id, 2);
      t.equal((await requestHold(app, request)).statusCode, 201);
      t.equal((await holdAction(app, request.hold_id, 'release')).statusCode, 200);
      assertProblem(t, await holdAction(app, request.hold_id, 'commit'), 409, 'hold-state');
      assertProblem(t, await requestHold(app, request), 409, 'hold-state');
      t.equal((await getHold(app, request.hold_id)).state, 'RELEASED');
      t.match(await getEvent(app, event.id), { available_tickets: 10, held_tickets: 0, sold_tickets: 0 });
      await assertSeatInvariant(t, app, event.id);
    });

    t.test('a hold keeps the price of its creation when the event price changes later', async (t) => {
      const app = await startEventApp(t, {}, { store });
      const event = await postEvent(app, { total_tickets: 10, ticket_price: 4500, currency: 'EUR' });
      const request = holdRequest(event.id, 2);
      const created = await requestHold(app, request);
      t.match(created.json<ApiHold>(), { unit_price: 4500, currency: 'EUR' });
      t.equal((await app.inject({ method: 'PUT', url: `/events/${event.id}`, payload: { ticket_price: 9900, currency: 'USD' } })).statusCode, 200);
      t.match(await getHold(app, request.hold_id), { unit_price: 4500, currency: 'EUR' }, 'the stored hold keeps its price');
      t.match((await requestHold(app, request)).json<ApiHold>(), { unit_price: 4500, currency: 'EUR' }, 'and a retry answers it');
      t.match((await holdAction(app, request.hold_id, 'commit')).json<ApiHold>(), { unit_price: 4500, currency: 'EUR' }, 'and so does the commit');
      t.match(await createHold(app, event.id, 1), { unit_price: 9900, currency: 'USD' }, 'a new hold takes the new price');
      await assertSeatInvariant(t, app, event.id);
    });

    t.test('committing or fetching an unknown hold is 404', async (t) => {
      const app = await startEventApp(t, {}, { store });
      assertProblem(t, await holdAction(app, randomUUID(), 'commit'), 404, 'not-found');
      assertProblem(t, await app.inject({ method: 'GET', url: `/holds/${randomUUID()}`, headers: serviceAuth }), 404, 'not-found');
      assertProblem(t, await requestHold(app, holdRequest(4242, 1)), 404, 'not-found');
    });

    t.test('an expired hold returns its seats through the sweeper', async (t) => {
      const app = await startEventApp(t, { HOLD_GRACE_SECONDS: '0', SWEEP_INTERVAL_SECONDS: '0.05' }, { store });
      const event = await postEvent(app, { total_tickets: 10 });
      const lapsing = await createHold(app, event.id, 3, { expires_at: isoFromNow(300) });
      const lasting = await createHold(app, event.id, 2);
      t.equal(lapsing.state, 'HELD', 'the hold took its seats');
      const deadline = Date.now() + 5000;
      let state = lapsing.state;
      while (state !== 'EXPIRED' && Date.now() < deadline) {
        await sleep(50);
        state = (await getHold(app, lapsing.hold_id)).state;
      }
      t.equal(state, 'EXPIRED', 'the lapsed hold expired within 5 s');
      t.match(await getEvent(app, event.id), { available_tickets: 8, held_tickets: 2 }, 'its seats are back, the other hold keeps its seats');
      t.equal((await getHold(app, lasting.hold_id)).state, 'HELD');
      assertProblem(t, await holdAction(app, lapsing.hold_id, 'commit'), 409, 'hold-state');
      assertProblem(t, await requestHold(app, holdRequest(event.id, 3, { hold_id: lapsing.hold_id })), 409, 'hold-state');
      const release = await holdAction(app, lapsing.hold_id, 'release');
      t.equal(release.statusCode, 200, 'releasing an expired hold is a no-op 200');
      t.equal(release.json<ApiHold>().state, 'EXPIRED');
      t.equal((await getEvent(app, event.id)).available_tickets, 8, 'and gives nothing back twice');
      await assertSeatInvariant(t, app, event.id);
    });

    t.test('committing an expired hold is 409 and returns its seats, without the sweeper', async (t) => {
      const app = await startEventApp(t, { HOLD_GRACE_SECONDS: '0' }, { store });
      const event = await postEvent(app, { total_tickets: 10 });
      const hold = await createHold(app, event.id, 4, { expires_at: isoFromNow(-60_000) });
      t.equal((await getEvent(app, event.id)).available_tickets, 6, 'the hold took its seats');
      const commit = await holdAction(app, hold.hold_id, 'commit');
      assertProblem(t, commit, 409, 'hold-state');
      t.equal((await getHold(app, hold.hold_id)).state, 'EXPIRED', 'the commit expired the hold');
      t.match(await getEvent(app, event.id), { available_tickets: 10, held_tickets: 0, sold_tickets: 0 }, 'and returned its seats');
      assertProblem(t, await holdAction(app, hold.hold_id, 'commit'), 409, 'hold-state');
      t.equal((await getEvent(app, event.id)).available_tickets, 10, 'a second commit gives nothing back twice');
      await assertSeatInvariant(t, app, event.id);
    });

    t.test('a hold within the grace period can still be committed', async (t) => {
      const app = await startEventApp(t, { HOLD_GRACE_SECONDS: '60' }, { store });
      const event = await postEvent(app, { total_tickets: 10 });
      const hold = await createHold(app, event.id, 1, { expires_at: isoFromNow(-5_000) });
      const commit = await holdAction(app, hold.hold_id, 'commit');
      t.equal(commit.statusCode, 200);
      t.equal(commit.json<ApiHold>().state, 'COMMITTED');
      await assertSeatInvariant(t, app, event.id);
    });

    t.test('a hold outside the sales window is 409 sales-closed and takes nothing', async (t) => {
      const app = await startEventApp(t, {}, { store });
      const closed = await postEvent(app, { total_tickets: 10, sales_start: '2020-01-01T00:00:00Z', sales_end: isoFromNow(-60_000) });
      assertProblem(t, await requestHold(app, holdRequest(closed.id, 1)), 409, 'sales-closed');
      t.equal((await getEvent(app, closed.id)).available_tickets, 10);
      const notYet = await postEvent(app, { total_tickets: 10, sales_start: isoFromNow(3_600_000) });
      assertProblem(t, await requestHold(app, holdRequest(notYet.id, 1)), 409, 'sales-closed');
      const open = await postEvent(app, { total_tickets: 10, sales_start: isoFromNow(-60_000), sales_end: isoFromNow(3_600_000) });
      t.equal((await requestHold(app, holdRequest(open.id, 1))).statusCode, 201, 'inside the window a hold is created');
      for (const event of [closed, notYet, open]) await assertSeatInvariant(t, app, event.id);
    });

    t.test('GET /holds filters by event_id, state and older_than', async (t) => {
      const app = await startEventApp(t, {}, { store });
      const first = await postEvent(app, { total_tickets: 20 });
      const second = await postEvent(app, { total_tickets: 20 });
      const old = await createHold(app, first.id, 1);
      const committed = await createHold(app, first.id, 2);
      await holdAction(app, committed.hold_id, 'commit');
      const released = await createHold(app, second.id, 3);
      await holdAction(app, released.hold_id, 'release');
      // The cut-off of older_than lies in the middle of this pause, however slow the machine is.
      const pauseStart = Date.now();
      await sleep(400);
      const fresh = await createHold(app, first.id, 4);
      const olderThan = (): string => ((Date.now() - (pauseStart + 200)) / 1000).toFixed(3);

      const ids = async (url: string) => (await followNext<ApiHold>(app, url, serviceAuth)).items.map((h) => h.hold_id).sort();
      t.same(await ids(`/holds?event_id=${first.id}`), [old.hold_id, committed.hold_id, fresh.hold_id].sort(), 'event_id');
      t.same(await ids(`/holds?event_id=${second.id}`), [released.hold_id], 'event_id of the other event');
      t.same(await ids('/holds?state=HELD'), [old.hold_id, fresh.hold_id].sort(), 'one state');
      t.same(await ids('/holds?state=COMMITTED,RELEASED'), [committed.hold_id, released.hold_id].sort(), 'a list of states');
      t.same(await ids(`/holds?older_than=${olderThan()}`), [old.hold_id, committed.hold_id, released.hold_id].sort(), 'older_than leaves out the fresh hold');
      t.same(await ids(`/holds?older_than=${olderThan()}&state=HELD&event_id=${first.id}`), [old.hold_id], 'filters combine');
      t.same(await ids('/holds?older_than=3600'), [], 'nothing is an hour old');
      t.same(await ids('/holds?state=EXPIRED'), []);
      await assertSeatInvariant(t, app, first.id);
      await assertSeatInvariant(t, app, second.id);
    });

    t.test('GET /holds pages with Link rel="next": 5 holds at limit=2 are visited exactly once, in creation order', async (t) => {
      const app = await startEventApp(t, {}, { store });
      const event = await postEvent(app, { total_tickets: 20 });
      const created: string[] = [];
      for (let i = 0; i < 5; i += 1) created.push((await createHold(app, event.id, 1)).hold_id);
      const first = await app.inject({ method: 'GET', url: '/holds?limit=2', headers: serviceAuth });
      t.equal(first.json<ApiHold[]>().length, 2);
      t.ok(linkTarget(first, 'next'), 'the first page links to the next');
      t.equal(linkTarget(first, 'prev'), undefined, 'the first page has no prev link');
      const all = await followNext<ApiHold>(app, '/holds?limit=2', serviceAuth);
      t.equal(all.pages, 3, 'three pages of at most two');
      t.same(all.items.map((h) => h.hold_id).sort(), [...created].sort(), 'every hold exactly once');
      // The holds were created one after another, so creation order is the order they were made in.
      t.same(all.items.map((h) => h.hold_id), created, 'in creation order');
      await assertSeatInvariant(t, app, event.id);
    });
  });
}
