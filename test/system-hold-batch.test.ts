/**
 * Issue 16, coalescing the second hop: the holds of concurrent purchases go to event-service together
 * (`POST /holds/batch`, openapi/hold-batcher.ts), each purchase still getting its own answer, and the
 * seats stay exact. Both services as real processes, SQLite (the store adds nothing here: the
 * per-item outcomes on both stores are test/event-hold-batch.test.ts).
 */
import t from 'tap';
import { metricValue, parseMetrics } from '../platform/metrics-text.js';
import { startDelayingProxy } from './helpers/delaying-proxy.js';
import { startSystem, type TestSystem } from './helpers/system.js';
import { asProblem, asTicket, createEvent, logsOf, raw, ticketBody, uuid, type RawAnswer } from './helpers/system-api.js';

/** How many requests event-service has answered on the single and the batch hold routes. */
async function holdRequests(system: TestSystem): Promise<{ single: number; batch: number }> {
  const answer = await raw(`${system.event.url}/metrics`);
  const samples = parseMetrics(String(answer.json));
  const count = (route: string) => metricValue(samples, 'eventsync_http_request_duration_seconds_count', { method: 'POST', route });
  return { single: count('/holds'), batch: count('/holds/batch') };
}

/** Purchases sent at once, each with its own Idempotency-Key when `keyed`. */
function purchaseAll(system: TestSystem, orders: Array<{ eventId: number; quantity: number; keyed: boolean }>): Promise<RawAnswer[]> {
  return Promise.all(
    orders.map(({ eventId, quantity, keyed }, i) =>
      raw(`${system.ticket.url}/tickets`, { method: 'POST', body: ticketBody(eventId, quantity, { customer_email: `buyer${i}@example.com` }), headers: keyed ? { 'idempotency-key': uuid() } : {} }),
    ),
  );
}

const batchedHoldLines = (system: TestSystem): number => logsOf(system, 'event-service').split('\n').filter((line) => line.includes('"msg":"batched hold completed"')).length;

t.test('holds of concurrent purchases in batches', async (t) => {
  const system = await startSystem(t);

  t.test('concurrent purchases share hold requests and each gets its own answer: 8 purchases of 1 for 5 seats are exactly 5 × 201 and 3 × 409 sold-out', async (t) => {
    const roomy = await createEvent(system, { total_tickets: 100 });
    const scarce = await createEvent(system, { total_tickets: 5 });
    const before = await holdRequests(system);

    const orders = [
      ...Array.from({ length: 20 }, (_, i) => ({ eventId: roomy.id, quantity: 1 + (i % 3), keyed: i % 2 === 0 })),
      ...Array.from({ length: 8 }, () => ({ eventId: scarce.id, quantity: 1, keyed: true })),
    ];
    const answers = await purchaseAll(system, orders);
    const after = await holdRequests(system);
    const requests = after.single - before.single + (after.batch - before.batch);
    t.comment(`${orders.length} purchases: ${after.single - before.single} single hold requests, ${after.batch - before.batch} batches`);
    t.ok(after.batch - before.batch >= 1, 'holds went to event-service in batches');
    t.ok(requests < orders.length, `fewer hold requests (${requests}) than purchases (${orders.length})`);

    const roomyAnswers = answers.slice(0, 20);
    t.same(roomyAnswers.map((a) => a.status), Array(20).fill(201), 'every purchase of the roomy event is reserved');
    t.same(
      roomyAnswers.map((a) => [asTicket(a.json).event_id, asTicket(a.json).quantity, asTicket(a.json).status]),
      orders.slice(0, 20).map((o) => [roomy.id, o.quantity, 'RESERVED']),
      'each with its own event and quantity',
    );
    t.equal(new Set(roomyAnswers.map((a) => asTicket(a.json).reference)).size, 20, 'and its own reference');

    const scarceAnswers = answers.slice(20);
    t.equal(scarceAnswers.filter((a) => a.status === 201).length, 5, 'exactly 5 purchases of the scarce event are reserved');
    t.same(
      scarceAnswers.filter((a) => a.status !== 201).map((a) => [a.status, asProblem(a.json).type]),
      Array(3).fill([409, 'urn:eventsync:problem:sold-out']),
      'and 3 are sold out',
    );
    t.ok(batchedHoldLines(system) >= 2, 'event-service logs each batched hold on a line of its own');
    t.same(await system.audit(), [], 'the audit finds every seat where it should be');
  });

  t.test('when event-service cannot be reached, every purchase whose hold was in a batch answers 503 as a single call would', async (t) => {
    const event = await createEvent(system, { total_tickets: 100 });
    await system.stop('event-service');
    const answers = await purchaseAll(system, Array.from({ length: 6 }, (_, i) => ({ eventId: event.id, quantity: 1, keyed: i % 2 === 0 })));
    t.same(
      answers.map((a) => [a.status, asProblem(a.json).type, /event-service is unreachable/.test(String(asProblem(a.json).detail))]),
      Array(6).fill([503, 'urn:eventsync:problem:unavailable', true]),
      'each purchase answers 503: event-service is unreachable',
    );
  });
});

t.test('batches event-service does not take are sent again: in halves when over its body limit, one by one without the route', async (t) => {
  const proxy = await startDelayingProxy(t);
  // A body limit of 1 KiB takes about four holds per batch.
  const system = await startSystem(t, { eventServiceUrlForTickets: () => proxy.url, env: { BODY_LIMIT_BYTES: '1024' } });
  proxy.target = system.event.url;
  const event = await createEvent(system, { total_tickets: 200 });
  const buyAll = (count: number) => purchaseAll(system, Array.from({ length: count }, () => ({ eventId: event.id, quantity: 1, keyed: true })));

  t.test('a batch over the body limit (413) is sent again in halves until each is taken', async (t) => {
    const batchAnswers = async () => {
      const samples = parseMetrics(String((await raw(`${system.event.url}/metrics`)).json));
      const count = (status_class: string) => metricValue(samples, 'eventsync_http_request_duration_seconds_count', { method: 'POST', route: '/holds/batch', status_class });
      return { refused: count('4xx'), taken: count('2xx') };
    };
    // Until purchases arrive together in numbers a batch of them is over the limit, at most 5 rounds.
    for (let round = 1; round <= 5 && (await batchAnswers()).refused === 0; round += 1) {
      const answers = await buyAll(12);
      t.same(answers.map((a) => a.status), Array(12).fill(201), `round ${round}: every purchase is reserved`);
    }
    const { refused, taken } = await batchAnswers();
    t.ok(refused >= 1, `event-service refused ${refused} batches as too large`);
    t.ok(taken >= 2, `and took ${taken} smaller ones`);
    t.same(await system.audit(), [], 'the audit is exact');
  });

  t.test('an event-service without the batch route (404, an older version) gets single calls, and no batch for a while', async (t) => {
    // Every hold call ticket-service makes; the batch route is answered as an event-service without it answers.
    const calls: string[] = [];
    proxy.answerInstead = (method, path) => {
      if (method !== 'POST' || (path !== '/holds' && path !== '/holds/batch')) return undefined;
      calls.push(path);
      return path === '/holds/batch' ? { status: 404, json: { type: 'urn:eventsync:problem:not-found', title: 'Not found', status: 404, detail: 'No route for POST /holds/batch.' } } : undefined;
    };
    const batches = () => calls.filter((path) => path === '/holds/batch').length;
    let rounds = 0;
    // Until ticket-service sends a batch (purchases that arrive together), at most 5 rounds.
    while (batches() === 0 && rounds < 5) {
      rounds += 1;
      const answers = await buyAll(4);
      t.same(answers.map((a) => a.status), Array(4).fill(201), `round ${rounds}: every purchase is reserved`);
    }
    t.equal(batches(), 1, 'a batch was sent and refused with 404');
    t.equal(calls.filter((path) => path === '/holds').length, 4 * rounds, 'every hold then went as a single call');
    const again = await buyAll(4);
    t.same(again.map((a) => a.status), Array(4).fill(201), 'the next purchases are reserved too');
    t.equal(batches(), 1, 'with single calls only: no batch is tried again at once');
    t.same(await system.audit(), [], 'the audit is exact');
  });
});
