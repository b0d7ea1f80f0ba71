import t from 'tap';
import { ADMIN_TOKEN, adminAuth, assertSeatInvariant, originalEvent, serviceAuth, startEventApp, type TestEventApp } from './helpers/event-app.js';
import { assertProblem, createHold, getEvent, postEvent, type ApiEvent } from './helpers/event-api.js';
import { testStores } from './helpers/postgres.js';

const adjust = (app: TestEventApp, id: number, operation: 'reserve' | 'release', ticketCount: number, headers: Record<string, string> = serviceAuth) =>
  app.inject({ method: 'PUT', url: `/events/${id}/tickets`, headers, payload: { operation, ticket_count: ticketCount } });

/** Σ of the recorded manual adjustments of an event, summed from their rows by GET /seat-ledgers. */
async function manualAdjustmentLedger(app: TestEventApp, eventId: number): Promise<number> {
  const response = await app.inject({ method: 'GET', url: `/seat-ledgers?event_id=${eventId}`, headers: serviceAuth });
  const [ledger] = response.json<Array<{ sums: { manual: number } }>>();
  if (!ledger) throw new Error(`no seat ledger for event ${eventId}`);
  return ledger.sums.manual;
}

t.test('the seat adjustment without the service token is 401, with a wrong token 401 and with the admin token 403', async (t) => {
  const app = await startEventApp(t, { ADMIN_TOKEN });
  const created = await app.inject({ method: 'POST', url: '/events', headers: adminAuth, payload: originalEvent });
  const id = created.json<ApiEvent>().id;
  assertProblem(t, await adjust(app, id, 'reserve', 1, {}), 401, 'unauthorized');
  assertProblem(t, await adjust(app, id, 'reserve', 1, { authorization: 'Bearer not-the-service-token-42' }), 401, 'unauthorized');
  assertProblem(t, await adjust(app, id, 'reserve', 1, adminAuth), 403, 'forbidden');
  t.match(await getEvent(app, id), { available_tickets: 200, manual_reserved_tickets: 0 }, 'nothing changed');
  await assertSeatInvariant(t, app, id);
});

t.test('the seat adjustment is service-only even in development mode (no ADMIN_TOKEN)', async (t) => {
  const app = await startEventApp(t);
  const event = await postEvent(app, originalEvent);
  assertProblem(t, await adjust(app, event.id, 'reserve', 1, {}), 401, 'unauthorized');
  t.equal((await getEvent(app, event.id)).available_tickets, 200);
  await assertSeatInvariant(t, app, event.id);
});

for (const store of await testStores()) {
  t.test(`on ${store}`, async (t) => {
    t.test('reserve 5 then release 3 moves available 200 → 195 → 198 and manual_reserved_tickets 5 → 2', async (t) => {
      const app = await startEventApp(t, {}, { store });
      const event = await postEvent(app, originalEvent);
      const reserved = await adjust(app, event.id, 'reserve', 5);
      t.equal(reserved.statusCode, 200);
      t.match(reserved.json<ApiEvent>(), { id: event.id, available_tickets: 195, manual_reserved_tickets: 5, held_tickets: 0, sold_tickets: 0 }, 'the answer is the adjusted event');
      t.match(await getEvent(app, event.id), { available_tickets: 195, manual_reserved_tickets: 5 });
      await assertSeatInvariant(t, app, event.id);

      const released = await adjust(app, event.id, 'release', 3);
      t.equal(released.statusCode, 200);
      t.match(released.json<ApiEvent>(), { available_tickets: 198, manual_reserved_tickets: 2 });
      t.match(await getEvent(app, event.id), { total_tickets: 200, available_tickets: 198, manual_reserved_tickets: 2 });
      t.equal(await manualAdjustmentLedger(app, event.id), 2, 'each adjustment is recorded: +5 and -3');
      await assertSeatInvariant(t, app, event.id);
    });

    t.test('a reserve beyond the available seats is 409 sold-out and changes nothing', async (t) => {
      const app = await startEventApp(t, {}, { store });
      const event = await postEvent(app, { total_tickets: 10 });
      await createHold(app, event.id, 4);
      assertProblem(t, await adjust(app, event.id, 'reserve', 7), 409, 'sold-out');
      t.match(await getEvent(app, event.id), { available_tickets: 6, manual_reserved_tickets: 0 }, 'nothing was taken');
      t.equal(await manualAdjustmentLedger(app, event.id), 0, 'and nothing was recorded');
      const exact = await adjust(app, event.id, 'reserve', 6);
      t.equal(exact.statusCode, 200, 'reserving exactly the available seats works');
      t.match(exact.json<ApiEvent>(), { available_tickets: 0, manual_reserved_tickets: 6 });
      assertProblem(t, await adjust(app, event.id, 'reserve', 1), 409, 'sold-out');
      await assertSeatInvariant(t, app, event.id);
    });

    t.test('a release beyond what manual reserves took is 409 and changes nothing, even when holds took seats', async (t) => {
      const app = await startEventApp(t, {}, { store });
      const event = await postEvent(app, { total_tickets: 10 });
      await createHold(app, event.id, 3);
      assertProblem(t, await adjust(app, event.id, 'release', 1), 409, 'conflict');
      t.match(await getEvent(app, event.id), { available_tickets: 7, held_tickets: 3, manual_reserved_tickets: 0 }, 'seats held by a hold cannot be released manually');
      t.equal((await adjust(app, event.id, 'reserve', 2)).statusCode, 200);
      assertProblem(t, await adjust(app, event.id, 'release', 3), 409, 'conflict');
      t.match(await getEvent(app, event.id), { available_tickets: 5, held_tickets: 3, manual_reserved_tickets: 2 });
      t.equal((await adjust(app, event.id, 'release', 2)).statusCode, 200, 'releasing exactly what was reserved works');
      t.match(await getEvent(app, event.id), { available_tickets: 7, manual_reserved_tickets: 0 });
      await assertSeatInvariant(t, app, event.id);
    });

    t.test('an adjustment of an unknown event is 404 and a bad body is 400', async (t) => {
      const app = await startEventApp(t, {}, { store });
      assertProblem(t, await adjust(app, 4242, 'reserve', 1), 404, 'not-found');
      const event = await postEvent(app, { total_tickets: 10 });
      const zero = assertProblem(t, await adjust(app, event.id, 'reserve', 0), 400, 'validation');
      t.same(zero.errors?.map((e) => e.pointer), ['#/ticket_count']);
      const bogus = assertProblem(t, await app.inject({ method: 'PUT', url: `/events/${event.id}/tickets`, headers: serviceAuth, payload: { operation: 'steal', ticket_count: 1 } }), 400, 'validation');
      t.same(bogus.errors?.map((e) => e.pointer), ['#/operation']);
      t.equal((await getEvent(app, event.id)).available_tickets, 10);
      await assertSeatInvariant(t, app, event.id);
    });

    t.test('the refusals count seats in words that agree: "1 seat available; 2 were asked for", "0 seats available; 1 was asked for", "1 manually reserved seat"', async (t) => {
      const app = await startEventApp(t, {}, { store });
      const event = await postEvent(app, { total_tickets: 1 });
      const detail = async (operation: 'reserve' | 'release', ticketCount: number) => (await adjust(app, event.id, operation, ticketCount)).json<{ detail: string }>().detail;
      t.equal(await detail('reserve', 2), `Event ${event.id} has 1 seat available; 2 were asked for.`);
      t.equal((await adjust(app, event.id, 'reserve', 1)).statusCode, 200);
      t.equal(await detail('reserve', 1), `Event ${event.id} has 0 seats available; 1 was asked for.`);
      t.equal(await detail('release', 2), `Only 1 manually reserved seat of event ${event.id} can be released; 2 were asked for.`);
    });
  });
}
