/**
 * A hung event-service must cost ticket-service little (DESIGN.md, Operations): reads skip the optional
 * event summary instead of each waiting for it, background work runs a few items at a time and stops
 * at once on SIGTERM, leaving what it had not done in its table for the next start.
 */
import t from 'tap';
import { startDelayingProxy } from './helpers/delaying-proxy.js';
import { eventually, startSystem } from './helpers/system.js';
import { createEvent, getEvent, raw, reserve, sleep, stopWithin } from './helpers/system-api.js';

t.test('with event-service hung, ticket reads answer without the event summary and at most one look-up is tried, not one per read', async (t) => {
  const proxy = await startDelayingProxy(t);
  const system = await startSystem(t, {
    eventServiceUrlForTickets: (url) => {
      proxy.target = url;
      return proxy.url;
    },
  });
  const event = await createEvent(system, { total_tickets: 10 });
  const isLookup = (method: string, path: string) => method === 'GET' && path.startsWith('/events?');
  // Every summary look-up hangs past its budget from now on; holds still answer.
  let lookups = 0;
  proxy.onForward = (method, path) => {
    if (isLookup(method, path)) lookups += 1;
  };
  proxy.delayFor = (method, path) => (isLookup(method, path) ? 3000 : 0);
  const ticket = await reserve(system, event.id, 1);
  t.equal(ticket.event, undefined, 'the purchase answers without the summary it could not look up');

  const lookupsBefore = lookups;
  const started = performance.now();
  for (let read = 0; read < 10; read += 1) {
    const answer = await system.tickets.call('getTicket', { path: { id: ticket.id } });
    t.equal(answer.ok && answer.body.status, 'RESERVED', `read ${read + 1} answers 200`);
    t.equal(answer.ok && answer.body.event, undefined, `read ${read + 1} leaves the summary out`);
  }
  const elapsedMs = performance.now() - started;
  t.ok(lookups - lookupsBefore <= 1, `the ten reads tried at most one look-up (tried ${lookups - lookupsBefore})`);
  t.comment(`ten ticket reads with event-service's look-ups hung took ${elapsedMs.toFixed(0)} ms in all`);

  proxy.delayFor = () => 0;
  const recovered = await eventually(async () => {
    const answer = await system.tickets.call('getTicket', { path: { id: ticket.id } });
    return answer.ok && answer.body.event?.name === event.name;
  }, 15_000);
  t.ok(recovered, 'once event-service answers again the summary is back within seconds');
});

t.test('SIGTERM with 50 releases pending and event-service frozen ends gracefully within seconds, and the releases are applied after a restart', async (t) => {
  const system = await startSystem(t);
  const event = await createEvent(system, { total_tickets: 100 });
  const tickets = [];
  for (let i = 0; i < 50; i += 1) tickets.push(await reserve(system, event.id, 1));
  t.equal((await getEvent(system, event.id)).available_tickets, 50, '50 seats are held');

  system.event.process.kill('SIGSTOP');
  let elapsedMs: number;
  let exited: boolean;
  try {
    // Each cancellation commits locally and answers once its release call has timed out; the outbox keeps the 50 releases.
    const cancels = await Promise.all(tickets.map((ticket) => raw(`${system.ticket.url}/tickets/${ticket.id}/status`, { method: 'PUT', body: { status: 'CANCELLED' } })));
    t.same(new Set(cancels.map((answer) => answer.status)), new Set([200]), 'every cancellation answers 200');
    // Let a background round pick up the due releases and hang on them.
    await sleep(1500);
    const started = performance.now();
    exited = await stopWithin(system, 'ticket-service', 'SIGTERM', 30_000);
    elapsedMs = performance.now() - started;
  } finally {
    system.event.process.kill('SIGCONT');
  }
  t.ok(exited, 'ticket-service exits on SIGTERM although event-service is frozen');
  t.equal(system.ticket.process.exitCode, 0, 'gracefully (exit 0), not by the shutdown deadline');
  t.ok(elapsedMs < 10_000, `within the shutdown budget of about 10 s (took ${elapsedMs.toFixed(0)} ms)`);
  t.comment(`SIGTERM with 50 pending releases and event-service frozen took ${elapsedMs.toFixed(0)} ms`);

  await system.restart('ticket-service');
  const settled = await eventually(async () => (await getEvent(system, event.id)).available_tickets === 100, 30_000);
  t.ok(settled, 'after the restart the outbox applies every release: all 100 seats are available');
  t.same(await system.audit(), [], 'the invariant holds across both services');
});
