/**
 * Purchases without an Idempotency-Key write no PENDING ticket: the hold comes first and the ticket is
 * written once, RESERVED. These tests pin down what keeps that safe (DESIGN.md, purchase saga).
 */
import t from 'tap';
import { startDelayingProxy } from './helpers/delaying-proxy.js';
import { eventually, startSystem } from './helpers/system.js';
import { asTicket, createEvent, getEvent, getHold, holdsOf, raw, ticketBody, ticketsOf, uuid } from './helpers/system-api.js';

const HOLD_ANSWER_DELAY_MS = 1500;

t.test('the reconciler (settle window 0, every 50 ms) never releases the hold of a keyless purchase in flight, however slow its answer', async (t) => {
  const proxy = await startDelayingProxy(t);
  let slowHolds = false;
  proxy.delayFor = (method, path) => (slowHolds && method === 'POST' && path === '/holds' ? HOLD_ANSWER_DELAY_MS : 0);
  const system = await startSystem(t, {
    env: { SWEEP_INTERVAL_SECONDS: '0.05', RECONCILE_SETTLE_SECONDS: '0' },
    eventServiceUrlForTickets: (url) => {
      proxy.target = url;
      return proxy.url;
    },
  });
  const event = await createEvent(system, { total_tickets: 10 });

  slowHolds = true;
  const purchase = raw(`${system.ticket.url}/tickets`, { method: 'POST', body: ticketBody(event.id, 2) });
  // While the answer is held back the hold is HELD with no ticket behind it, for ~30 reconciler rounds.
  const heldWhileInFlight = await eventually(async () => (await holdsOf(system, event.id, 'HELD')).length === 1, HOLD_ANSWER_DELAY_MS - 500);
  t.ok(heldWhileInFlight, 'the hold exists at event-service while its answer is on the way');
  const answer = await purchase;
  slowHolds = false;

  t.equal(answer.status, 201, 'the purchase succeeds');
  const ticket = asTicket(answer.json);
  t.equal(ticket.status, 'RESERVED');
  t.equal((await getHold(system, ticket.reference))?.state, 'HELD', 'its hold was not released under it');
  await new Promise((resolve) => setTimeout(resolve, 300));
  t.equal((await getHold(system, ticket.reference))?.state, 'HELD', 'nor by the rounds after the ticket was written');
  t.equal((await getEvent(system, event.id)).held_tickets, 2, 'its two seats are held');
  t.same(await system.audit(), [], 'the invariant holds across both services');
});

t.test('a hold that no keyless purchase owns any more (created, then its ticket never written) is still released by the reconciler', async (t) => {
  const system = await startSystem(t, { env: { SWEEP_INTERVAL_SECONDS: '0.05', RECONCILE_SETTLE_SECONDS: '0' } });
  const event = await createEvent(system, { total_tickets: 10 });
  // What a crash between the hold and the ticket write leaves behind: a hold with no ticket.
  const orphan = uuid();
  const created = await system.events.call('createHold', { body: { hold_id: orphan, event_id: event.id, quantity: 3, expires_at: new Date(Date.now() + 600_000).toISOString() } });
  t.equal(created.status, 201);
  const released = await eventually(async () => (await getHold(system, orphan))?.state === 'RELEASED', 10_000);
  t.ok(released, 'the orphan hold is released');
  t.equal((await getEvent(system, event.id)).available_tickets, 10, 'its seats are back');
  t.equal((await ticketsOf(system, event.id)).total, 0, 'no ticket was made up for it');
  t.same(await system.audit(), [], 'the invariant holds across both services');
});
