/**
 * DESIGN.md, Observability, with WORKERS above 1 (PostgreSQL): one scrape answers for every worker,
 * through the primary. Counters are summed over the workers that served the traffic; figures from
 * the database (read by each worker at start-up) are not multiplied by the number of workers.
 */
import t from 'tap';
import { Agent } from 'undici';
import { eventually, startSystem, type TestSystem } from './helpers/system.js';
import { createEvent, logsOf, raw, ticketBody } from './helpers/system-api.js';
import { testStores } from './helpers/postgres.js';
import { metricValue, parseMetrics, type Sample } from '../platform/metrics-text.js';

async function scrape(url: string): Promise<Sample[]> {
  const answer = await raw(`${url}/metrics`);
  if (answer.status !== 200) throw new Error(`GET ${url}/metrics answered ${answer.status}: ${JSON.stringify(answer.json)}`);
  return parseMetrics(String(answer.json));
}

/** The process ids that logged a completed POST /tickets: which workers sold. */
function sellingPids(system: TestSystem): Set<number> {
  const pids = new Set<number>();
  for (const line of logsOf(system, 'ticket-service').split('\n')) {
    const match = /"pid":(\d+).*"msg":"request completed"/.exec(line);
    if (match && line.includes('"statusCode":201')) pids.add(Number(match[1]));
  }
  return pids;
}

if (!(await testStores()).includes('postgres')) {
  t.pass('PostgreSQL is not reachable here: the 2-worker metrics test is skipped (see the line above)');
} else {
  t.test('one scrape of a 2-worker service sums the counters of both workers, and its database figures are not doubled', async (t) => {
    const system = await startSystem(t, { store: 'postgres', env: { WORKERS: '2', EVENT_SERVICE_TIMEOUT_SECONDS: '30', RECONCILE_SETTLE_SECONDS: '60' } });
    // startSystem returns once one worker listens; the test needs both of each service.
    const listening = (name: 'event-service' | 'ticket-service') => (logsOf(system, name).match(/Server listening at/g) ?? []).length;
    t.ok(await eventually(async () => listening('event-service') >= 2 && listening('ticket-service') >= 2, 30_000), 'both workers of each service listen');
    const event = await createEvent(system, { total_tickets: 20 });
    // One connection per request, so that the shared socket hands purchases to both workers.
    const agent = new Agent({ connections: 12, pipelining: 0 });
    t.teardown(() => agent.close());
    const answers = await Promise.all(
      Array.from({ length: 12 }, () => raw(`${system.ticket.url}/tickets`, { method: 'POST', body: ticketBody(event.id, 1), headers: { connection: 'close' }, dispatcher: agent, timeoutMs: 60_000 })),
    );
    t.same(answers.map((answer) => answer.status), Array(12).fill(201), '12 purchases reserved');
    t.equal(sellingPids(system).size, 2, 'both ticket-service workers sold some');

    for (let i = 0; i < 3; i += 1) {
      // Each scrape reaches whichever worker the socket hands it to; every one answers for both.
      const [tickets, events] = [await scrape(system.ticket.url), await scrape(system.event.url)];
      t.equal(metricValue(tickets, 'eventsync_purchases_total', { outcome: 'reserved' }), 12, `scrape ${i + 1}: the 12 purchases of both workers, summed`);
      t.equal(metricValue(tickets, 'eventsync_tickets', { status: 'RESERVED' }), 12, 'tickets by status: 12, not twice as many');
      t.equal(metricValue(events, 'eventsync_hold_transitions_total', { from: 'none', to: 'HELD' }), 12, "event-service's workers' holds, summed");
      t.same([metricValue(events, 'eventsync_events'), metricValue(events, 'eventsync_seats', { state: 'held' }), metricValue(events, 'eventsync_seats', { state: 'available' })], [1, 12, 8], 'one event, 12 seats held, 8 available');
      t.equal(metricValue(tickets, 'eventsync_pg_pool_connections', { state: 'total' }) > 0, true, 'the pools of both workers are reported');
    }

    // Both workers read the figures at start-up; the primary keeps one read.
    await system.restart('ticket-service');
    t.ok(await eventually(async () => listening('ticket-service') >= 2, 30_000), 'both new workers listen');
    const again = await scrape(system.ticket.url);
    t.equal(metricValue(again, 'eventsync_tickets', { status: 'RESERVED' }), 12, 'after a restart of both workers: 12 reserved, not 24');
    t.equal(metricValue(again, 'eventsync_purchases_total', { outcome: 'reserved' }), 0, 'counters start again from 0');
  });
}
