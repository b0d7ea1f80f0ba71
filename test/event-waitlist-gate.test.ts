/**
 * DESIGN.md "Waiting list", the gate in event-service: a public hold takes seats only while
 * available_tickets − waitlist_reserved_tickets ≥ quantity, an offer hold (`waitlist: true`) may take
 * any available seat, ticket-service sets the gate with a sequence that only grows, and a release may
 * carry the gate in its own transaction. The gate is not a hold: the seat invariant is unchanged.
 */
import t from 'tap';
import type { LightMyRequestResponse } from 'fastify';
import { adminAuth, ADMIN_TOKEN, assertSeatInvariant, serviceAuth, startEventApp, type TestEventApp } from './helpers/event-app.js';
import { assertProblem, getEvent, holdRequest, pointers, postEvent, requestHold, type ApiHold } from './helpers/event-api.js';
import type { components } from '../openapi/generated/event-service.js';
import { testStores } from './helpers/postgres.js';
import { metricValue, parseMetrics } from '../platform/metrics-text.js';

type WaitlistGate = components['schemas']['WaitlistGate'];
type SeatLedger = components['schemas']['SeatLedger'];

const setGate = (app: TestEventApp, eventId: number, reserved: number, sequence: number, headers: Record<string, string> = serviceAuth): Promise<LightMyRequestResponse> =>
  app.inject({ method: 'PUT', url: `/events/${eventId}/waitlist-gate`, headers, payload: { waitlist_reserved_tickets: reserved, sequence } });

const publicHold = (app: TestEventApp, eventId: number, quantity: number): Promise<LightMyRequestResponse> => requestHold(app, holdRequest(eventId, quantity));

const offerHold = (app: TestEventApp, eventId: number, quantity: number): Promise<LightMyRequestResponse> =>
  app.inject({ method: 'POST', url: '/holds', headers: serviceAuth, payload: { ...holdRequest(eventId, quantity), waitlist: true } });

const release = (app: TestEventApp, holdId: string, gate?: { waitlist_reserved_tickets: number; sequence: number }): Promise<LightMyRequestResponse> =>
  app.inject({ method: 'POST', url: `/holds/${holdId}/release`, headers: serviceAuth, ...(gate ? { payload: gate } : {}) });

/** Holds created and seats held so far, as GET /metrics counts them (open in development mode). */
async function holdFigures(app: TestEventApp): Promise<{ created: number; held: number }> {
  const samples = parseMetrics((await app.inject({ method: 'GET', url: '/metrics' })).body);
  return { created: metricValue(samples, 'eventsync_hold_transitions_total', { from: 'none', to: 'HELD' }), held: metricValue(samples, 'eventsync_seats', { state: 'held' }) };
}

async function ledger(app: TestEventApp, eventId: number): Promise<SeatLedger> {
  const [row] = (await app.inject({ method: 'GET', url: `/seat-ledgers?event_id=${eventId}`, headers: serviceAuth })).json<SeatLedger[]>();
  if (!row) throw new Error(`no seat ledger for event ${eventId}`);
  return row;
}

t.test('an event has waitlist_enabled (default true, writable) and a read-only waitlist_reserved_tickets: refused on create like available_tickets, ignored on update', async (t) => {
  const app = await startEventApp(t);
  const event = await postEvent(app, { total_tickets: 10 });
  t.match(event, { waitlist_enabled: true, waitlist_reserved_tickets: 0, available_tickets: 10 }, 'a new event has a waiting list and no gate');
  t.equal((await postEvent(app, { waitlist_enabled: false })).waitlist_enabled, false, 'waitlist_enabled may be false on create');

  for (const field of ['waitlist_reserved_tickets', 'available_tickets']) {
    const refused = assertProblem(t, await app.inject({ method: 'POST', url: '/events', payload: { name: 'X', event_date: '2027-01-01T20:00:00Z', total_tickets: 5, [field]: 3 } }), 400, 'validation');
    t.same(pointers(refused), [`#/${field}`], `${field} on create is 400, as an unknown field`);
  }

  t.equal((await setGate(app, event.id, 4, 1)).statusCode, 200);
  const gotten = (await app.inject({ method: 'GET', url: `/events/${event.id}` })).json<Record<string, unknown>>();
  const updated = await app.inject({ method: 'PUT', url: `/events/${event.id}`, payload: { ...gotten, name: 'Renamed', waitlist_reserved_tickets: 0, waitlist_enabled: false } });
  t.equal(updated.statusCode, 200, 'GET-modify-PUT with the read-only field works');
  t.match(updated.json(), { name: 'Renamed', waitlist_reserved_tickets: 4, waitlist_enabled: false }, 'the gate sent on update is ignored; waitlist_enabled changed');
  t.match(await getEvent(app, event.id), { waitlist_reserved_tickets: 4, waitlist_enabled: false }, 'and stays so');
  const enabled = await app.inject({ method: 'PUT', url: `/events/${event.id}`, payload: { waitlist_enabled: true } });
  t.equal(enabled.json<{ waitlist_enabled: boolean }>().waitlist_enabled, true, 'waitlist_enabled may be switched back on');

  const wrong = assertProblem(t, await app.inject({ method: 'PUT', url: `/events/${event.id}`, payload: { waitlist_enabled: 'yes' } }), 400, 'validation');
  t.same(pointers(wrong), ['#/waitlist_enabled'], 'waitlist_enabled must be a boolean (no coercion)');
  assertProblem(t, await app.inject({ method: 'POST', url: '/events', payload: { name: 'X', event_date: '2027-01-01T20:00:00Z', total_tickets: 5, waitlist_enabled: 1 } }), 400, 'validation');
});

t.test('the gate and the offer flag are for services: bad values are 400 listing every field, an unknown event 404, a missing token 401 and the admin token 403', async (t) => {
  const app = await startEventApp(t, { ADMIN_TOKEN });
  const event = (await app.inject({ method: 'POST', url: '/events', headers: adminAuth, payload: { name: 'Gated', event_date: '2027-01-01T20:00:00Z', total_tickets: 5 } })).json<{ id: number }>();
  const put = (payload: unknown, headers: Record<string, string> = serviceAuth) => app.inject({ method: 'PUT', url: `/events/${event.id}/waitlist-gate`, headers, payload: payload as object });

  t.same(pointers(assertProblem(t, await put({}), 400, 'validation')), ['#/sequence', '#/waitlist_reserved_tickets'], 'both fields are required');
  t.same(pointers(assertProblem(t, await put({ waitlist_reserved_tickets: -1, sequence: 0 }), 400, 'validation')), ['#/sequence', '#/waitlist_reserved_tickets'], 'a negative gate and sequence 0 are refused');
  t.same(pointers(assertProblem(t, await put({ waitlist_reserved_tickets: '2', sequence: 1.5 }), 400, 'validation')), ['#/sequence', '#/waitlist_reserved_tickets'], 'no coercion, integers only');
  t.same(pointers(assertProblem(t, await put({ waitlist_reserved_tickets: 2, sequence: 1, event_id: event.id }), 400, 'validation')), ['#/event_id'], 'unknown fields are refused');
  assertProblem(t, await app.inject({ method: 'PUT', url: '/events/999999/waitlist-gate', headers: serviceAuth, payload: { waitlist_reserved_tickets: 1, sequence: 1 } }), 404, 'not-found');
  assertProblem(t, await app.inject({ method: 'PUT', url: '/events/0x10/waitlist-gate', headers: serviceAuth, payload: { waitlist_reserved_tickets: 1, sequence: 1 } }), 400, 'validation');
  assertProblem(t, await put({ waitlist_reserved_tickets: 1, sequence: 1 }, {}), 401, 'unauthorized');
  assertProblem(t, await put({ waitlist_reserved_tickets: 1, sequence: 1 }, adminAuth), 403, 'forbidden');

  const hold = (await requestHold(app, holdRequest(event.id, 1))).json<ApiHold>();
  const releaseWith = (payload: unknown) => app.inject({ method: 'POST', url: `/holds/${hold.hold_id}/release`, headers: serviceAuth, payload: payload as object });
  t.same(pointers(assertProblem(t, await releaseWith({ waitlist_reserved_tickets: 2 }), 400, 'validation')), ['#/sequence'], 'a release with half the pair is 400');
  t.same(pointers(assertProblem(t, await releaseWith({ sequence: 'x', reason: 'y' }), 400, 'validation')), ['#/reason', '#/sequence', '#/waitlist_reserved_tickets'], 'every invalid field of a release body is listed');
  t.equal((await getEvent(app, event.id)).held_tickets, 1, 'a refused release changed nothing');
  const offer = assertProblem(t, await app.inject({ method: 'POST', url: '/holds', headers: serviceAuth, payload: { ...holdRequest(event.id, 1), waitlist: 'true' } }), 400, 'validation');
  t.same(pointers(offer), ['#/waitlist'], 'waitlist on a hold must be a boolean');
  t.equal((await getEvent(app, event.id)).waitlist_reserved_tickets, 0, 'no refused call moved the gate');
});

for (const store of await testStores()) {
  t.test(`on ${store}`, async (t) => {
    // One app (one database) for every case of this store; each case has its own events.
    const app = await startEventApp(t, {}, { store });

    t.test('a public hold is refused by the gate with the same 409 sold-out while an offer hold (waitlist: true) takes the same seats', async (t) => {
      const event = await postEvent(app, { total_tickets: 10 });
      const gate = await setGate(app, event.id, 4, 1);
      t.same(gate.json<WaitlistGate>(), { event_id: event.id, waitlist_reserved_tickets: 4, sequence: 1, applied: true });
      const tooMany = assertProblem(t, await publicHold(app, event.id, 7), 409, 'sold-out');
      t.equal((tooMany as { available_tickets?: number }).available_tickets, 6, 'the refusal counts only the seats the public may take');
      t.equal((await publicHold(app, event.id, 6)).statusCode, 201, 'the public takes the seats outside the gate');
      const event1 = await getEvent(app, event.id);
      t.match(event1, { available_tickets: 4, waitlist_reserved_tickets: 4, held_tickets: 6 }, 'available_tickets still counts the seats behind the gate');
      const refused = assertProblem(t, await publicHold(app, event.id, 1), 409, 'sold-out');
      t.match(refused, { detail: `Event ${event.id} has 0 seats left; 1 was asked for.`, available_tickets: 0 }, 'to the public the event is sold out');
      const listed = (await app.inject({ method: 'GET', url: `/events?ids=${event.id}&available=true` })).json<unknown[]>();
      t.same(listed, [], 'and ?available=true leaves it out');

      const offer = await offerHold(app, event.id, 4);
      t.equal(offer.statusCode, 201, 'an offer hold takes the same seats');
      t.match(await getEvent(app, event.id), { available_tickets: 0, held_tickets: 10, waitlist_reserved_tickets: 4 });
      assertProblem(t, await offerHold(app, event.id, 1), 409, 'sold-out');
      await assertSeatInvariant(t, app, event.id);
    });

    t.test('seats freed by a raised total_tickets or a release without the gate stay behind the gate; the public gets only what lies beyond it', async (t) => {
      const event = await postEvent(app, { total_tickets: 10 });
      const all = (await publicHold(app, event.id, 10)).json<ApiHold>();
      t.equal((await setGate(app, event.id, 3, 1)).statusCode, 200, 'three people wait');
      const raised = await app.inject({ method: 'PUT', url: `/events/${event.id}`, payload: { total_tickets: 12 } });
      t.match(raised.json(), { total_tickets: 12, available_tickets: 2, waitlist_reserved_tickets: 3 });
      assertProblem(t, await publicHold(app, event.id, 1), 409, 'sold-out');
      t.equal((await offerHold(app, event.id, 2)).statusCode, 201, 'the raised seats go to an offer');
      t.equal((await release(app, all.hold_id)).statusCode, 200);
      t.match(await getEvent(app, event.id), { available_tickets: 10, waitlist_reserved_tickets: 3 });
      assertProblem(t, await publicHold(app, event.id, 8), 409, 'sold-out');
      t.equal((await publicHold(app, event.id, 7)).statusCode, 201, 'the public takes the 7 seats beyond the gate');
      await assertSeatInvariant(t, app, event.id);
    });

    t.test('a gate with an older or equal sequence is ignored and answered 200 with the current gate; the seat ledger shows it', async (t) => {
      const event = await postEvent(app, { total_tickets: 10 });
      t.same((await setGate(app, event.id, 3, 5)).json<WaitlistGate>(), { event_id: event.id, waitlist_reserved_tickets: 3, sequence: 5, applied: true });
      const older = await setGate(app, event.id, 0, 4);
      t.equal(older.statusCode, 200);
      t.same(older.json<WaitlistGate>(), { event_id: event.id, waitlist_reserved_tickets: 3, sequence: 5, applied: false }, 'an older sequence changes nothing');
      t.same((await setGate(app, event.id, 1, 5)).json<WaitlistGate>(), { event_id: event.id, waitlist_reserved_tickets: 3, sequence: 5, applied: false }, 'nor does the same one again');
      t.match(await ledger(app, event.id), { waitlist_reserved_tickets: 3, waitlist_sequence: 5 });
      t.same((await setGate(app, event.id, 0, 2 ** 40)).json<WaitlistGate>(), { event_id: event.id, waitlist_reserved_tickets: 0, sequence: 2 ** 40, applied: true }, 'a newer one applies (sequences past 32 bits too)');
      t.match(await ledger(app, event.id), { waitlist_reserved_tickets: 0, waitlist_sequence: 2 ** 40, available_tickets: 10 });
      t.equal((await publicHold(app, event.id, 10)).statusCode, 201, 'with the gate at 0 the public may take every seat');
    });

    t.test('a release carrying the gate returns the seats and sets the gate in the same transaction; an older sequence is ignored and the release still happens', async (t) => {
      const event = await postEvent(app, { total_tickets: 4 });
      const hold = (await publicHold(app, event.id, 4)).json<ApiHold>();
      const released = await release(app, hold.hold_id, { waitlist_reserved_tickets: 4, sequence: 2 });
      t.equal(released.statusCode, 200);
      t.equal(released.json<ApiHold>().state, 'RELEASED');
      t.match(await getEvent(app, event.id), { available_tickets: 4, held_tickets: 0, waitlist_reserved_tickets: 4 });
      assertProblem(t, await publicHold(app, event.id, 1), 409, 'sold-out');

      const offer = (await offerHold(app, event.id, 2)).json<ApiHold>();
      const late = await release(app, offer.hold_id, { waitlist_reserved_tickets: 0, sequence: 1 });
      t.equal(late.json<ApiHold>().state, 'RELEASED', 'a release with an older gate still releases');
      t.match(await ledger(app, event.id), { available_tickets: 4, waitlist_reserved_tickets: 4, waitlist_sequence: 2 }, 'and leaves the gate alone');

      const again = await release(app, offer.hold_id, { waitlist_reserved_tickets: 1, sequence: 3 });
      t.equal(again.statusCode, 200, 'releasing a released hold again is 200');
      t.match(await ledger(app, event.id), { available_tickets: 4, waitlist_reserved_tickets: 1, waitlist_sequence: 3 }, 'and still applies a newer gate to its event');
      const tombstone = await release(app, holdRequest(event.id).hold_id, { waitlist_reserved_tickets: 0, sequence: 9 });
      t.match(tombstone.json<ApiHold>(), { state: 'RELEASED', event_id: null }, 'a tombstone has no event');
      t.match(await ledger(app, event.id), { waitlist_reserved_tickets: 1, waitlist_sequence: 3 }, 'so no gate changes');
      await assertSeatInvariant(t, app, event.id);
    });

    t.test('20 public holds racing the release that carries the gate never take the returned seats', async (t) => {
      const event = await postEvent(app, { total_tickets: 10 });
      const hold = (await publicHold(app, event.id, 10)).json<ApiHold>();
      const [released, ...holds] = await Promise.all([release(app, hold.hold_id, { waitlist_reserved_tickets: 10, sequence: 1 }), ...Array.from({ length: 20 }, () => publicHold(app, event.id, 1))]);
      t.equal(released?.statusCode, 200);
      t.same(holds.map((h) => h.statusCode).filter((s) => s !== 409), [], 'every public hold is refused, before or after the release');
      t.match(await getEvent(app, event.id), { available_tickets: 10, held_tickets: 0, waitlist_reserved_tickets: 10 });
      await assertSeatInvariant(t, app, event.id);
    });

    t.test('20 public and 10 offer holds racing over a gate of 6 on 10 seats: the public takes at most the 4 seats beyond it, offers take the rest', async (t) => {
      const event = await postEvent(app, { total_tickets: 10 });
      t.equal((await setGate(app, event.id, 6, 1)).statusCode, 200);
      const before = await holdFigures(app);
      const requests = Array.from({ length: 30 }, (_, i) => (i < 20 ? { who: 'public', answer: publicHold(app, event.id, 1) } : { who: 'offer', answer: offerHold(app, event.id, 1) }));
      const answers = await Promise.all(requests.map(async ({ who, answer }) => ({ who, status: (await answer).statusCode })));
      const taken = (who: string) => answers.filter((a) => a.who === who && a.status === 201).length;
      t.ok(taken('public') <= 4, `the public took ${taken('public')} seat(s), at most the 4 beyond the gate`);
      t.equal(taken('public') + taken('offer'), 10, `offers took the other ${taken('offer')}: every seat is held`);
      t.same(answers.filter((a) => a.status !== 201 && a.status !== 409), [], 'every other answer is a 409');
      t.match(await getEvent(app, event.id), { available_tickets: 0, held_tickets: 10 });
      const after = await holdFigures(app);
      t.same({ created: after.created - before.created, held: after.held - before.held }, { created: 10, held: 10 }, 'metrics count the 10 holds taken (offers too) and nothing for the 20 refused by the gate or the race');
      await assertSeatInvariant(t, app, event.id);
    });
  });
}
