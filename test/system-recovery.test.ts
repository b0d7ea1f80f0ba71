import t from 'tap';
import { Agent } from 'undici';
import { eventually, startSystem } from './helpers/system.js';
import { asTicket, createEvent, getEvent, getHold, logsOf, raw, reserve, sleep, stopWithin, ticketBody, ticketsOf, uuid, whileFrozen, type ApiTicket } from './helpers/system-api.js';

const TIMEOUT_SECONDS = 1;

// Confirms, cancels and deletes while event-service is slow or down, and a graceful restart; tests use their own events.
const system = await startSystem(t, { env: { EVENT_SERVICE_TIMEOUT_SECONDS: String(TIMEOUT_SECONDS) } });

t.test('a confirm that times out answers 503 and leaves the ticket RESERVED; a retry confirms it and the hold is committed once', async (t) => {
  const event = await createEvent(system, { total_tickets: 10 });
  const ticket = await reserve(system, event.id, 2);
  const started = performance.now();
  const answer = await whileFrozen(system, 'event-service', () => system.tickets.call('updateTicketStatus', { path: { id: ticket.id }, body: { status: 'CONFIRMED' } }));
  t.equal(answer.status, 503, 'the confirm answers 503');
  t.ok(performance.now() - started < (TIMEOUT_SECONDS + 2) * 1000, 'within the client timeout plus 2 s');
  const during = await system.tickets.call('getTicket', { path: { id: ticket.id } });
  t.equal(during.ok && during.body.status, 'RESERVED', 'the ticket is still RESERVED');

  const retried = await system.tickets.call('updateTicketStatus', { path: { id: ticket.id }, body: { status: 'CONFIRMED' } });
  t.equal(retried.status, 200, 'the retry answers 200');
  t.equal(retried.ok && retried.body.status, 'CONFIRMED', 'and the ticket is CONFIRMED');
  t.equal((await getHold(system, ticket.reference))?.state, 'COMMITTED', 'its hold is COMMITTED');
  const current = await getEvent(system, event.id);
  t.equal(current.sold_tickets, 2, 'two seats are sold');
  t.equal(current.held_tickets, 0, 'none is held');
  t.equal(current.available_tickets, 8, 'eight remain');
  t.ok(await eventually(async () => (await system.audit()).length === 0, 10_000), 'the audit settles');
  t.same(await system.audit(), [], 'the invariant holds across both services');
});

t.test('a cancel while event-service is down answers CANCELLED at once and the outbox returns the seats once it is back', async (t) => {
  const event = await createEvent(system, { total_tickets: 10 });
  const ticket = await reserve(system, event.id, 3);
  await system.stop('event-service');
  const cancelled = await system.tickets.call('updateTicketStatus', { path: { id: ticket.id }, body: { status: 'CANCELLED' } });
  t.equal(cancelled.status, 200, 'the cancel answers 200');
  t.equal(cancelled.ok && cancelled.body.status, 'CANCELLED');
  t.equal(cancelled.ok && cancelled.body.cancellation_reason, 'customer');
  await system.restart('event-service');
  const back = await eventually(async () => (await getEvent(system, event.id)).available_tickets === 10, 20_000);
  t.ok(back, 'the seats come back once event-service is reachable again');
  t.equal((await getHold(system, ticket.reference))?.state, 'RELEASED', 'the hold is RELEASED');
  t.same(await system.audit(), [], 'the invariant holds across both services');
});

t.test('a DELETE while event-service is down deletes the ticket, and the outbox brings its seats back once event-service is back', async (t) => {
  const event = await createEvent(system, { total_tickets: 10 });
  const ticket = await reserve(system, event.id, 4);
  await system.stop('event-service');
  const deleted = await raw(`${system.ticket.url}/tickets/${ticket.id}`, { method: 'DELETE' });
  await system.restart('event-service');
  t.equal(deleted.status, 204, 'the DELETE answers 204: the deletion and its pending release are recorded together');
  const back = await eventually(async () => (await getEvent(system, event.id)).available_tickets === 10, 20_000);
  t.ok(back, 'the release is retried in the background until the seats are back');
  const repeated = await system.tickets.call('deleteTicket', { path: { id: ticket.id } });
  t.equal(repeated.status, 404, 'repeating the DELETE answers 404: the ticket is gone, and nothing is released twice');
  t.equal((await system.tickets.call('getTicket', { path: { id: ticket.id } })).status, 404, 'the ticket is gone');
  t.same(await system.audit(), [], 'the invariant holds across both services');
});

t.test('SIGTERM lets ticket-service finish the purchases in flight: each gets an answer, it exits, and every 201 survives the restart', async (t) => {
  const event = await createEvent(system, { total_tickets: 40 });
  const agent = new Agent({ connections: 100 });
  t.teardown(() => agent.close());
  const answered: ApiTicket[] = [];
  const requestIds = Array.from({ length: 60 }, (_, i) => `term-${i}-${uuid()}`);
  const inFlight = Promise.allSettled(
    requestIds.map((requestId, i) =>
      raw(`${system.ticket.url}/tickets`, {
        method: 'POST',
        body: ticketBody(event.id, 1, { customer_email: `term${i}@example.com` }),
        headers: { 'x-request-id': requestId },
        dispatcher: agent,
        timeoutMs: 20_000,
      }).then((answer) => {
        if (answer.status === 201) answered.push(asTicket(answer.json));
        return answer;
      }),
    ),
  );
  for (let waited = 0; answered.length < 1 && waited < 10_000; waited += 10) await sleep(10);
  // The client keeps its keep-alive connections open, as browsers and the CLI's pool do.
  const stopping = stopWithin(system, 'ticket-service', 'SIGTERM', 8_000);
  const outcomes = await inFlight;
  const exited = await stopping;
  const log = logsOf(system, 'ticket-service');
  // Connections still in the listen backlog when the server stops listening are reset by the kernel; only requests
  // ticket-service received (and logged) were in flight.
  const received = requestIds.map((id, i) => ({ id, outcome: outcomes[i] })).filter(({ id }) => log.includes(id));
  const statuses = received.map(({ outcome }) => (outcome?.status === 'fulfilled' ? outcome.value.status : 'no answer'));
  t.comment(`${received.length} of 60 purchases reached ticket-service; answers: ${JSON.stringify(Object.fromEntries([...new Set(statuses)].map((s) => [s, statuses.filter((x) => x === s).length])))}`);
  t.ok(received.length > 0, 'purchases were in flight at the SIGTERM');
  t.same(
    statuses.filter((s) => s !== 201 && s !== 409 && s !== 503),
    [],
    'every purchase ticket-service received got an HTTP answer (201, 409, or 503 once closing)',
  );
  t.ok(exited, 'ticket-service exits within 8 s of SIGTERM once the requests in flight are answered');
  await system.restart('ticket-service');
  const settled = await eventually(async () => (await system.audit()).length === 0, 15_000);
  t.ok(settled, 'the system settles after the restart');
  const { tickets } = await ticketsOf(system, event.id);
  const byId = new Map(tickets.map((x) => [x.id, x]));
  t.ok(
    answered.every((x) => byId.get(x.id)?.status === 'RESERVED'),
    'every purchase answered 201 is RESERVED after the restart',
  );
  const current = await getEvent(system, event.id);
  t.equal(current.held_tickets, tickets.filter((x) => x.status === 'RESERVED').length, 'held seats are exactly the RESERVED tickets');
  t.same(await system.audit(), [], 'the invariant holds across both services');
});
