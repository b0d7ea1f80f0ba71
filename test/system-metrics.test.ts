/**
 * DESIGN.md, Observability: `GET /metrics` of both services as real processes. Counters are exact
 * (known traffic, exact deltas), figures from the database follow every committed change and are
 * read again at start-up, routes are labelled by their template, and access needs the admin token
 * or METRICS_TOKEN when ADMIN_TOKEN is set. SQLite only: the store adds nothing here (the 2-worker
 * aggregation on PostgreSQL is test/system-metrics-workers.test.ts).
 */
import { randomUUID } from 'node:crypto';
import t from 'tap';
import { ADMIN_TOKEN, SERVICE_TOKEN, eventually, startSystem, type TestSystem } from './helpers/system.js';
import { asProblem, asTicket, createEvent, raw, ticketBody } from './helpers/system-api.js';
import { eventServiceClient } from '../openapi/client.js';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { InjectOptions } from 'fastify';
import { createEvent as createEventIn, startEventApp, tempDir } from './helpers/event-app.js';
import { ContractChecker } from './helpers/contract.js';
import { buildTicketApp } from '../ticket-service/app.js';
import { TicketServiceConfigSchema, loadConfig } from '../platform/config.js';
import { metricValue, parseMetrics, type Sample } from '../platform/metrics-text.js';

const METRICS_TOKEN = 'metrics-token-for-tests-0123456789';

async function scrape(url: string, token = METRICS_TOKEN): Promise<Sample[]> {
  const answer = await raw(`${url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
  if (answer.status !== 200) throw new Error(`GET ${url}/metrics answered ${answer.status}: ${JSON.stringify(answer.json)}`);
  if (!answer.contentType.startsWith('text/plain')) throw new Error(`GET /metrics answered ${answer.contentType}`);
  return parseMetrics(String(answer.json));
}

/** Both services' samples now. */
const scrapeBoth = async (system: TestSystem) => ({ ticket: await scrape(system.ticket.url), event: await scrape(system.event.url) });

t.test('known traffic moves every counter by exactly its amount, on both services; the figures follow every change and are read again at start-up', async (t) => {
  const system = await startSystem(t, { env: { ADMIN_TOKEN, METRICS_TOKEN }, ticketToken: ADMIN_TOKEN });
  const admin = eventServiceClient({ baseUrl: system.event.url, token: ADMIN_TOKEN });
  t.teardown(() => admin.close());
  const event = await createEvent(system, { total_tickets: 8 }, admin);
  const pastSales = await createEvent(system, { total_tickets: 5, sales_start: '2020-01-01T00:00:00Z', sales_end: '2020-02-01T00:00:00Z' }, admin);
  const before = await scrapeBoth(system);
  const delta = (side: 'ticket' | 'event', after: Sample[], name: string, labels: Record<string, string> = {}) => metricValue(after, name, labels) - metricValue(before[side], name, labels);

  // 7 reservations (4 without a key, 3 with one), 1 replay, 2 sold out, 1 no such event, 1 invalid,
  // 1 sales closed (and, once event-service is stopped below, 1 unavailable).
  const keys = [randomUUID(), randomUUID(), randomUUID()];
  const tickets = [];
  for (let i = 0; i < 7; i += 1) {
    const headers: Record<string, string> = i < 3 ? { 'idempotency-key': keys[i] ?? '' } : {};
    const answer = await raw(`${system.ticket.url}/tickets`, { method: 'POST', body: ticketBody(event.id, 1), headers });
    t.equal(answer.status, 201, `purchase ${i + 1} is reserved`);
    tickets.push(asTicket(answer.json));
  }
  const replay = await raw(`${system.ticket.url}/tickets`, { method: 'POST', body: ticketBody(event.id, 1), headers: { 'idempotency-key': keys[0] ?? '' } });
  t.equal(replay.headers['idempotent-replayed'], 'true', 'the same key and body replay the first answer');
  for (let i = 0; i < 2; i += 1) {
    const soldOut = await raw(`${system.ticket.url}/tickets`, { method: 'POST', body: ticketBody(event.id, 2) });
    t.equal(asProblem(soldOut.json).type, 'urn:eventsync:problem:sold-out', 'two seats when one is left: sold out');
  }
  t.equal((await raw(`${system.ticket.url}/tickets`, { method: 'POST', body: ticketBody(999_999, 1) })).status, 404, 'no such event');
  t.equal((await raw(`${system.ticket.url}/tickets`, { method: 'POST', body: ticketBody(event.id, 0) })).status, 400, 'quantity 0 is invalid');
  const closed = await raw(`${system.ticket.url}/tickets`, { method: 'POST', body: ticketBody(pastSales.id, 1) });
  t.equal(asProblem(closed.json).type, 'urn:eventsync:problem:sales-closed', 'an event whose sales window is over: sales closed');
  t.equal((await admin.call('deleteEvent', { path: { id: pastSales.id } })).status, 204, 'that event goes again: the figures below are of the one event');
  // 3 confirms, 1 cancel by the customer, 1 manual adjustment, 1 path that matches no route.
  for (const ticket of tickets.slice(0, 3)) {
    const confirmed = await system.tickets.call('updateTicketStatus', { path: { id: ticket.id }, body: { status: 'CONFIRMED' } });
    t.equal(confirmed.status, 200, `ticket ${ticket.id} is confirmed`);
  }
  const cancelled = await raw(`${system.ticket.url}/tickets/${tickets[3]?.id}/status`, {
    method: 'PUT',
    body: { status: 'CANCELLED' },
    headers: { 'x-ticket-reference': tickets[3]?.reference ?? '' },
  });
  t.equal(cancelled.status, 200, 'the customer cancels one reservation with its reference');
  t.equal((await system.events.call('adjustEventTickets', { path: { id: event.id }, body: { operation: 'reserve', ticket_count: 1 } })).status, 200, 'one seat is reserved manually');
  t.equal((await raw(`${system.ticket.url}/no/such/route/42`)).status, 404);

  const after = await scrapeBoth(system);
  const purchases = (outcome: string) => delta('ticket', after.ticket, 'eventsync_purchases_total', { outcome });
  t.same(
    Object.fromEntries(['reserved', 'replayed', 'sold_out', 'not_found', 'invalid', 'sales_closed', 'unavailable'].map((outcome) => [outcome, purchases(outcome)])),
    { reserved: 7, replayed: 1, sold_out: 2, not_found: 1, invalid: 1, sales_closed: 1, unavailable: 0 },
    'purchases by outcome',
  );
  t.equal(delta('ticket', after.ticket, 'eventsync_ticket_confirms_total'), 3, '3 confirms');
  t.equal(delta('ticket', after.ticket, 'eventsync_ticket_cancellations_total', { reason: 'customer' }), 1, '1 cancellation by the customer');
  t.equal(delta('ticket', after.ticket, 'eventsync_ticket_cancellations_total'), 1, 'and no other');
  t.same(
    ['RESERVED', 'CONFIRMED', 'CANCELLED'].map((status) => metricValue(after.ticket, 'eventsync_tickets', { status })),
    [3, 3, 1],
    'tickets by status: 3 reserved, 3 confirmed, 1 cancelled',
  );
  t.equal(metricValue(after.ticket, 'eventsync_outbox_pending'), 0, 'the cancellation released its seats at once: the outbox is empty');
  t.equal(
    delta('ticket', after.ticket, 'eventsync_http_request_duration_seconds_count', { method: 'PUT', route: '/tickets/{id}/status', status_class: '2xx' }),
    4,
    'status changes are timed under their route template',
  );
  t.equal(delta('ticket', after.ticket, 'eventsync_http_request_duration_seconds_count', { route: 'unmatched', status_class: '4xx' }), 1, 'a path no route matches is one label');
  t.notOk(
    after.ticket.some((sample) => /\/tickets\/\d|\/no\/such/.test(sample.labels.route ?? '')),
    'no label carries a URL as asked for',
  );

  const holds = (from: string, to: string) => delta('event', after.event, 'eventsync_hold_transitions_total', { from, to });
  t.same([holds('none', 'HELD'), holds('HELD', 'COMMITTED'), holds('HELD', 'RELEASED'), holds('COMMITTED', 'RELEASED')], [7, 3, 1, 0], 'hold transitions: 7 held, 3 committed, 1 released');
  t.equal(delta('event', after.event, 'eventsync_manual_adjustments_total', { operation: 'reserve' }), 1, '1 manual adjustment');
  const seats = Object.fromEntries(['total', 'available', 'held', 'sold', 'manual'].map((state) => [state, metricValue(after.event, 'eventsync_seats', { state })]));
  t.same(seats, { total: 8, available: 1, held: 3, sold: 3, manual: 1 }, 'seats by state follow every hold and the adjustment');
  t.equal(metricValue(after.event, 'eventsync_events'), 1, 'one event');
  t.ok(metricValue(after.event, 'eventsync_sqlite_group_commit_batch_size_count') > 0, 'SQLite group commits are measured');
  t.ok(metricValue(after.event, 'eventsync_sqlite_wal_flush_duration_seconds_count') > 0, 'and the WAL flushes');
  t.ok(after.event.some((sample) => sample.name === 'nodejs_eventloop_lag_seconds'), "Node's process metrics are there");

  // A release event-service cannot take waits in the outbox: how many, and since when.
  await system.stop('event-service');
  t.equal((await system.tickets.call('updateTicketStatus', { path: { id: tickets[4]?.id ?? 0 }, body: { status: 'CANCELLED' } })).status, 200, 'a cancellation commits without event-service');
  const waiting = await scrape(system.ticket.url);
  t.equal(metricValue(waiting, 'eventsync_outbox_pending'), 1, 'one release waits in the outbox');
  t.ok(metricValue(waiting, 'eventsync_outbox_oldest_pending_age_seconds') >= 0, 'with its age');
  t.equal(metricValue(waiting, 'eventsync_ticket_cancellations_total', { reason: 'admin' }), 1, 'the admin cancelled it');
  // (Its hold, if any, is released through the outbox too: after the figure above.)
  t.equal((await raw(`${system.ticket.url}/tickets`, { method: 'POST', body: ticketBody(event.id, 1) })).status, 503, 'a purchase without event-service is unavailable');
  const unavailable = (samples: Sample[]) => metricValue(samples, 'eventsync_purchases_total', { outcome: 'unavailable' });
  t.equal(unavailable(await scrape(system.ticket.url)) - unavailable(waiting), 1, 'and counted so');

  // Read again from the database at start-up; the outbox drains once event-service is back.
  await system.restart('event-service');
  await system.restart('ticket-service');
  t.ok(await eventually(async () => metricValue(await scrape(system.ticket.url), 'eventsync_outbox_pending') === 0), 'the outbox drains and its figure returns to 0');
  const again = await scrapeBoth(system);
  t.same(['RESERVED', 'CONFIRMED', 'CANCELLED'].map((status) => metricValue(again.ticket, 'eventsync_tickets', { status })), [2, 3, 2], 'ticket-service reads its figures at start-up');
  t.same(
    Object.fromEntries(['total', 'available', 'held', 'sold', 'manual'].map((state) => [state, metricValue(again.event, 'eventsync_seats', { state })])),
    { total: 8, available: 2, held: 2, sold: 3, manual: 1 },
    'event-service reads its seats at start-up, and the drained release moved them',
  );
  t.equal(metricValue(again.event, 'eventsync_events'), 1);

  // Background work moves the figures too: the sweeper's expiry (a cancel conditional on the row as
  // read) and the reconciler's completion of a confirm that committed its hold and crashed.
  const [lapsing, interrupted] = [tickets[5], tickets[6]];
  if (!lapsing || !interrupted) throw new Error('the reservations are missing');
  t.ok((await system.events.call('commitHold', { path: { hold_id: interrupted.reference } })).ok, 'a confirm commits its hold, then "crashes"');
  await system.sql('ticket-service', 'UPDATE tickets SET confirming_at = ? WHERE id = ?', '2000-01-01T00:00:00.000Z', interrupted.id);
  await system.sql('ticket-service', 'UPDATE tickets SET expires_at = ? WHERE id = ?', '2000-01-01T00:00:00.000Z', lapsing.id);
  const settled = async () => {
    const samples = await scrape(system.ticket.url);
    return metricValue(samples, 'eventsync_tickets', { status: 'RESERVED' }) === 0 && metricValue(samples, 'eventsync_outbox_pending') === 0;
  };
  t.ok(await eventually(settled, 10_000), 'the sweeper and the reconciler took both reservations');
  const background = await scrapeBoth(system);
  const moved = (side: 'ticket' | 'event', name: string, labels: Record<string, string> = {}) => metricValue(background[side], name, labels) - metricValue(again[side], name, labels);
  t.same(['RESERVED', 'CONFIRMED', 'CANCELLED'].map((status) => metricValue(background.ticket, 'eventsync_tickets', { status })), [0, 4, 3], 'tickets by status after an expiry and a completed confirm');
  t.same(
    [moved('ticket', 'eventsync_ticket_cancellations_total', { reason: 'expired' }), moved('ticket', 'eventsync_sweeper_cancellations_total'), moved('ticket', 'eventsync_ticket_confirms_total')],
    [1, 1, 1],
    'one expiry by the sweeper, one confirm',
  );
  t.equal(moved('ticket', 'eventsync_reconciler_actions_total', { action: 'completed_confirm' }), 1, 'completed by the reconciler');
  t.same(
    Object.fromEntries(['total', 'available', 'held', 'sold', 'manual'].map((state) => [state, metricValue(background.event, 'eventsync_seats', { state })])),
    { total: 8, available: 3, held: 0, sold: 4, manual: 1 },
    "event-service's seats: the expired hold released, the interrupted one sold",
  );
});

t.test('with ADMIN_TOKEN set, /metrics needs the admin token or METRICS_TOKEN; other tokens are refused', async (t) => {
  const env = { ADMIN_TOKEN, METRICS_TOKEN };
  const eventApp = await startEventApp(t, env);
  const ticketApp = await buildTicketApp(loadConfig(TicketServiceConfigSchema, { SERVICE_TOKEN, ...env, TICKET_DB_PATH: join(tempDir(t), 'tickets.db'), LOG_LEVEL: 'silent' }), { background: false });
  t.teardown(() => ticketApp.close());
  for (const [service, inject] of [['event-service', eventApp.inject], ['ticket-service', ticketApp.inject.bind(ticketApp)]] as const) {
    const get = async (url: string, token?: string) => {
      const answer = await inject({ method: 'GET', url, headers: token === undefined ? {} : { authorization: `Bearer ${token}` } });
      return { status: answer.statusCode, type: answer.statusCode >= 400 ? asProblem(answer.json()).type : undefined, body: answer.body, contentType: String(answer.headers['content-type']) };
    };
    const anonymous = await get('/metrics');
    t.same([anonymous.status, anonymous.type], [401, 'urn:eventsync:problem:unauthorized'], `${service}: no token is 401`);
    t.match(anonymous.contentType, /^application\/problem\+json/, 'as problem+json');
    t.match(anonymous.body, /admin token or METRICS_TOKEN/, 'saying what is needed');
    const wrong = await get('/metrics', 'not-a-token-of-this-system');
    t.same([wrong.status, wrong.type], [401, 'urn:eventsync:problem:unauthorized'], 'a wrong token is 401');
    t.match(wrong.contentType, /^application\/problem\+json/, 'as problem+json');
    const forbidden = await get('/metrics', SERVICE_TOKEN);
    t.same([forbidden.status, forbidden.type], [403, 'urn:eventsync:problem:forbidden'], 'the service token is 403');
    t.match(forbidden.contentType, /^application\/problem\+json/, 'as problem+json');
    t.equal((await get('/metrics', ADMIN_TOKEN)).status, 200, 'the admin token reads it');
    t.equal((await get('/metrics', METRICS_TOKEN)).status, 200, 'METRICS_TOKEN reads it');
    t.equal((await get('/metrics?format=json', METRICS_TOKEN)).status, 400, 'an unknown query parameter is 400');
  }
  t.equal((await ticketApp.inject({ method: 'GET', url: '/tickets', headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).statusCode, 403, 'METRICS_TOKEN grants nothing else');
});

t.test('without ADMIN_TOKEN (development mode) /metrics is open', async (t) => {
  const { inject } = await startEventApp(t);
  const answer = await inject({ method: 'GET', url: '/metrics' });
  t.equal(answer.statusCode, 200, 'open without a token');
  t.match(answer.headers['content-type'], /^text\/plain/);
  t.match(answer.body, /# TYPE eventsync_hold_transitions_total counter/);
});

t.test('with METRICS=off neither service keeps metrics: /metrics answers 404 problem+json, and purchases are served as before', async (t) => {
  const eventApp = await startEventApp(t, { METRICS: 'off' });
  await eventApp.app.listen({ host: '127.0.0.1', port: 0 });
  const eventServiceUrl = `http://127.0.0.1:${(eventApp.app.server.address() as AddressInfo).port}`;
  const ticketApp = await buildTicketApp(
    loadConfig(TicketServiceConfigSchema, { SERVICE_TOKEN, METRICS: 'off', EVENT_SERVICE_URL: eventServiceUrl, TICKET_DB_PATH: join(tempDir(t), 'tickets.db'), LOG_LEVEL: 'silent' }),
    { background: false },
  );
  t.teardown(() => ticketApp.close());
  const ticketContract = new ContractChecker('ticket-service');
  const injectTickets = async (options: InjectOptions) => {
    const answer = await ticketApp.inject(options);
    const contentType = answer.headers['content-type'];
    t.same(ticketContract.check(String(options.method), String(options.url), answer.statusCode, typeof contentType === 'string' ? contentType : undefined, answer.body), [], `ticket-service's answer to ${options.method} ${options.url} conforms to the spec`);
    return answer;
  };
  for (const [service, answer] of [
    ['event-service', await eventApp.inject({ method: 'GET', url: '/metrics' })],
    ['ticket-service', await injectTickets({ method: 'GET', url: '/metrics' })],
  ] as const) {
    t.equal(answer.statusCode, 404, `${service}: /metrics is 404`);
    t.match(answer.headers['content-type'], /^application\/problem\+json/, 'as problem+json');
    t.match(asProblem(answer.json()), { type: 'urn:eventsync:problem:not-found', detail: /METRICS=off/ }, 'saying metrics are off');
  }
  const event = await createEventIn(eventApp, { name: 'Metrics Off', description: 'Two seats', event_date: '2030-06-15T09:00:00Z', venue: 'Test Hall', total_tickets: 2 });
  const bought = await injectTickets({ method: 'POST', url: '/tickets', payload: ticketBody(event.id, 2) });
  t.equal(bought.statusCode, 201, 'a purchase is reserved');
  const soldOut = await injectTickets({ method: 'POST', url: '/tickets', payload: ticketBody(event.id, 1) });
  t.equal(asProblem(soldOut.json()).type, 'urn:eventsync:problem:sold-out', 'and the next one finds the event sold out');
});
