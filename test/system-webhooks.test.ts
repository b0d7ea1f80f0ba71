/**
 * Webhooks (DESIGN.md "Webhooks") with both services really running on SQLite and receivers on
 * ephemeral ports: every ticket change a customer could see arrives once, signed; what rolled back or
 * was never visible sends nothing; retries keep the webhook-id; a redirect is a failed attempt; a
 * hanging receiver slows nothing else; rotation (no secret in the log), the delivery log, and a
 * SIGKILL right after a purchase. (The replica case, on PostgreSQL,
 * is test/system-webhooks-replicas.test.ts.)
 */
import t from 'tap';
import { Webhook } from 'standardwebhooks';
import type { components } from '../openapi/generated/ticket-service.js';
import { eventually, startSystem } from './helpers/system.js';
import { createEvent, logsOf, raw, reserve, sleep, uuid } from './helpers/system-api.js';
import { cliFor, describeRun } from './helpers/cli.js';
import { startReceiver, verifies, type Receiver, type ReceivedDelivery } from './helpers/webhook-receiver.js';
import { metricValue, parseMetrics } from '../platform/metrics-text.js';

type Hook = components['schemas']['WebhookWithSecret'];

const system = await startSystem(t, {
  // Attempts per endpoint below the default (16), so the limit is seen to hold with few purchases.
  env: { WEBHOOK_RETRY_BASE_SECONDS: '0.1', WEBHOOK_TIMEOUT_SECONDS: '1', WEBHOOK_CONCURRENCY: '4' },
});

async function subscribe(receiver: Receiver, events: components['schemas']['WebhookCreate']['events'] = ['*']): Promise<Hook> {
  const created = await system.tickets.call('createWebhook', { body: { url: receiver.url, events } });
  if (!created.ok) throw new Error(`could not subscribe: ${JSON.stringify(created.problem)}`);
  return created.body;
}

async function ping(hook: Hook): Promise<components['schemas']['WebhookDelivery']> {
  const answer = await system.tickets.call('pingWebhook', { path: { webhook_id: hook.id } });
  if (!answer.ok) throw new Error(`ping answered ${answer.status}`);
  return answer.body;
}

/** ticket-service's webhook attempts by outcome, from GET /metrics (open: no ADMIN_TOKEN here). */
async function attemptCounts(): Promise<Record<string, number>> {
  const samples = parseMetrics(await (await fetch(`${system.ticket.url}/metrics`)).text());
  return Object.fromEntries(['delivered', 'retrying', 'failed', 'aborted'].map((outcome) => [outcome, metricValue(samples, 'eventsync_webhook_attempts_total', { outcome })]));
}

/** The webhook queue and endpoint figures from GET /metrics, and the pending deliveries the database has. */
async function queueFigures(): Promise<{ pending: number; failing: number; disabled: number; inDatabase: number }> {
  const samples = parseMetrics(await (await fetch(`${system.ticket.url}/metrics`)).text());
  return {
    pending: metricValue(samples, 'eventsync_webhook_deliveries_pending'),
    failing: metricValue(samples, 'eventsync_webhook_failing_endpoints', { state: 'failing' }),
    disabled: metricValue(samples, 'eventsync_webhook_failing_endpoints', { state: 'disabled' }),
    inDatabase: await system.sql('ticket-service', "UPDATE webhook_deliveries SET status = status WHERE status = 'pending'"),
  };
}

/** Waits until the figures are `expected` (they move once a change commits, after the receiver answered). */
async function figuresBecome(expected: Awaited<ReturnType<typeof queueFigures>>): Promise<Awaited<ReturnType<typeof queueFigures>>> {
  let last = await queueFigures();
  await eventually(async () => {
    last = await queueFigures();
    return JSON.stringify(last) === JSON.stringify(expected);
  });
  return last;
}

const ofTicket = (receiver: Receiver, id: number): ReceivedDelivery[] => receiver.deliveries.filter((d) => d.message.data.id === id);
const typesOf = (deliveries: ReceivedDelivery[]): string[] => deliveries.map((d) => `${d.message.type}${d.message.data.cancellation_reason ? `:${String(d.message.data.cancellation_reason)}` : ''}`);
const pings = (receiver: Receiver): ReceivedDelivery[] => receiver.deliveries.filter((d) => d.message.type === 'webhook.ping');

/** Waits for a ping sent now: every change committed before it has been fanned out and attempted by then. */
async function flush(receiver: Receiver, hook: Hook): Promise<void> {
  const before = pings(receiver).length;
  await ping(hook);
  await eventually(async () => pings(receiver).length > before);
  await sleep(300);
}

const main = await startReceiver(t);
const mainHook = await subscribe(main);
const event = await createEvent(system, { total_tickets: 100 });

t.test('every ticket change a customer could see arrives once, signed, and verifies with the standardwebhooks verifier', async (t) => {
  const keyed = await reserve(system, event.id, 1, { 'idempotency-key': uuid() });
  t.equal((await system.tickets.call('updateTicketStatus', { path: { id: keyed.id }, body: { status: 'CONFIRMED' } })).status, 200);
  t.equal((await system.tickets.call('updateTicketStatus', { path: { id: keyed.id }, body: { status: 'CANCELLED' } })).status, 200);
  const keyless = await reserve(system, event.id, 1);
  t.equal((await system.tickets.call('deleteTicket', { path: { id: keyless.id } })).status, 204);
  // The sweeper's expiry, once the reservation is past its expiry.
  const lapsing = await reserve(system, event.id, 1);
  await system.sql('ticket-service', 'UPDATE tickets SET expires_at = ? WHERE id = ?', '2000-01-01T00:00:00.000Z', lapsing.id);
  // Event deletion's cancellations, as `eventsync events delete --cancel-tickets` makes them.
  const doomed = await createEvent(system, { total_tickets: 5 });
  const doomedReserved = await reserve(system, doomed.id, 1);
  const doomedConfirmed = await reserve(system, doomed.id, 1);
  t.equal((await system.tickets.call('updateTicketStatus', { path: { id: doomedConfirmed.id }, body: { status: 'CONFIRMED' } })).status, 200);
  const deleted = await cliFor(system)('events', 'delete', String(doomed.id), '--cancel-tickets');
  t.equal(deleted.code, 0, describeRun(deleted));
  // The reconciler completes a confirm that committed its hold and crashed before CONFIRMED.
  const interrupted = await reserve(system, event.id, 1);
  t.ok((await system.events.call('commitHold', { path: { hold_id: interrupted.reference } })).ok);
  await system.sql('ticket-service', 'UPDATE tickets SET confirming_at = ? WHERE id = ?', '2000-01-01T00:00:00.000Z', interrupted.id);

  const expected: Array<[number, string[]]> = [
    [keyed.id, ['ticket.reserved', 'ticket.confirmed', 'ticket.cancelled:customer']],
    [keyless.id, ['ticket.reserved', 'ticket.deleted']],
    [lapsing.id, ['ticket.reserved', 'ticket.cancelled:expired']],
    [doomedReserved.id, ['ticket.reserved', 'ticket.cancelled:event_deleted']],
    [doomedConfirmed.id, ['ticket.reserved', 'ticket.confirmed', 'ticket.cancelled:event_deleted']],
    [interrupted.id, ['ticket.reserved', 'ticket.confirmed']],
  ];
  const arrived = () => expected.every(([id, types]) => ofTicket(main, id).length >= types.length);
  t.ok(await eventually(async () => arrived(), 15_000), 'every change was delivered');
  await flush(main, mainHook);
  for (const [id, types] of expected) {
    // Each ticket's changes happened one after another; deliveries may overtake each other, so compare as sets.
    t.same(typesOf(ofTicket(main, id)).sort(), [...types].sort(), `ticket ${id}: ${types.join(', ')}, each once`);
  }
  const all = main.deliveries;
  t.equal(new Set(all.map((d) => d.headers['webhook-id'])).size, all.length, 'every delivery has its own webhook-id, and none came twice');
  t.ok(all.every((d) => verifies(mainHook.secret, d)), 'every delivery verifies with the subscription secret');
  const reserved = ofTicket(main, keyed.id).find((d) => d.message.type === 'ticket.reserved');
  t.equal(reserved?.message.data.status, 'RESERVED', 'the snapshot is the ticket as it was at that change');
  t.equal(reserved?.message.data.reference, keyed.reference);
  t.notOk(reserved && 'event' in reserved.message.data, 'the snapshot leaves the remote event summary out');
  t.equal(ofTicket(main, keyless.id).find((d) => d.message.type === 'ticket.deleted')?.message.data.status, 'RESERVED', 'a deletion sends the ticket as it was when deleted');

  const sample = all[0];
  if (!sample) throw new Error('no delivery');
  t.notOk(verifies(mainHook.secret, { ...sample, body: sample.body.replace('"ticket.', '"ticket.x') }), 'a tampered body fails verification');
  const old = new Date(Date.now() - 10 * 60_000);
  const oldHeaders = { ...sample.headers, 'webhook-timestamp': String(Math.floor(old.getTime() / 1000)), 'webhook-signature': new Webhook(mainHook.secret).sign(String(sample.headers['webhook-id']), old, sample.body) };
  t.notOk(verifies(mainHook.secret, { body: sample.body, headers: oldHeaders }), 'a correctly signed delivery with a 10-minute-old timestamp fails verification');
});

t.test('a purchase that fails (sold out, event-service down) and a PENDING ticket abandoned by the reconciler send nothing', async (t) => {
  const small = await createEvent(system, { total_tickets: 1 });
  await reserve(system, small.id, 1);
  const soldOut = await system.tickets.call('createTicket', { body: { event_id: small.id, customer_name: 'Late', customer_email: 'late@example.com', quantity: 1 } });
  t.equal(soldOut.status, 409, 'sold out');
  const soldOutKeyed = await system.tickets.call('createTicket', { body: { event_id: small.id, customer_name: 'Late', customer_email: 'late@example.com', quantity: 1 }, headers: { 'idempotency-key': uuid() } });
  t.equal(soldOutKeyed.status, 409, 'sold out with a key');
  await system.stop('event-service');
  const down = await system.tickets.call('createTicket', { body: { event_id: event.id, customer_name: 'Down', customer_email: 'down@example.com', quantity: 1 } });
  t.equal(down.status, 503, 'event-service down: 503 without a key');
  const downKeyed = await system.tickets.call('createTicket', { body: { event_id: event.id, customer_name: 'Down', customer_email: 'down@example.com', quantity: 1 }, headers: { 'idempotency-key': uuid() } });
  t.equal(downKeyed.status, 503, 'and with a key (its PENDING ticket is left for the reconciler)');
  await system.restart('event-service');
  // Old enough for the reconciler to abandon it.
  t.equal(await system.sql('ticket-service', "UPDATE tickets SET created_at = ? WHERE status = 'PENDING'", '2000-01-01T00:00:00.000Z'), 1, 'one PENDING ticket was left');
  t.ok(await eventually(async () => (await system.sql('ticket-service', "UPDATE tickets SET status = 'ABANDONED' WHERE status = 'ABANDONED'")) === 1), 'the reconciler abandoned it');
  await flush(main, mainHook);
  const theirs = main.deliveries.filter((d) => d.message.data.customer_name === 'Late' || d.message.data.customer_name === 'Down');
  t.same(typesOf(theirs), [], 'no delivery of any type for a refused, failed or abandoned purchase');
});

/** How many webhook event rows ticket-service has for a ticket (counted by an update that changes nothing). */
const eventRowsOf = (ticketId: number): Promise<number> => system.sql('ticket-service', 'UPDATE webhook_events SET type = type WHERE ticket_id = ?', ticketId);

t.test('a change that rolled back sends nothing: a keyed purchase and a cancellation whose transactions fail after their event row answer 500 and send nothing; the keyed retry revives the PENDING ticket and sends ticket.reserved once', async (t) => {
  // A keyed purchase's last transaction makes the ticket RESERVED, writes ticket.reserved, then stores
  // the key's answer: the last write fails.
  const key = uuid();
  await system.sql('ticket-service', `CREATE TRIGGER refuse_stored_answer BEFORE UPDATE ON idempotency_keys WHEN NEW.key = '${key}' AND NEW.status_code = 201 BEGIN SELECT RAISE(ABORT, 'refused by the test'); END`);
  const body = { event_id: event.id, customer_name: 'Rolled Back', customer_email: 'rolled@example.com', quantity: 1 };
  const failed = await raw(`${system.ticket.url}/tickets`, { method: 'POST', headers: { 'idempotency-key': key }, body });
  t.equal(failed.status, 500, 'the purchase answers 500');
  t.match(failed.contentType, /application\/problem\+json/);
  t.match(failed.json, { type: 'urn:eventsync:problem:internal' }, 'a problem, not a crash');
  await system.sql('ticket-service', 'DROP TRIGGER refuse_stored_answer');
  // A 500 keeps the key locked for the abandonment window; as if that had passed:
  await system.sql('ticket-service', 'UPDATE idempotency_keys SET locked_until = ? WHERE key = ?', '2000-01-01T00:00:00.000Z', key);
  const retried = await system.tickets.call('createTicket', { body, headers: { 'idempotency-key': key } });
  if (!retried.ok) throw new Error(`the retry answered ${retried.status}`);
  t.equal(retried.status, 201, 'the retry with the same key revives the PENDING ticket');
  t.equal(await eventRowsOf(retried.body.id), 1, "one event row for the ticket: the failed attempt's rolled back with it");

  // A cancellation's transaction writes CANCELLED and ticket.cancelled, then queues the release: that write fails.
  const ticket = await reserve(system, event.id, 1);
  await system.sql('ticket-service', `CREATE TRIGGER refuse_release BEFORE INSERT ON release_outbox WHEN NEW.hold_id = '${ticket.reference}' BEGIN SELECT RAISE(ABORT, 'refused by the test'); END`);
  const refused = await raw(`${system.ticket.url}/tickets/${ticket.id}/status`, { method: 'PUT', body: { status: 'CANCELLED' } });
  t.equal(refused.status, 500, 'the cancellation answers 500');
  t.match(refused.json, { type: 'urn:eventsync:problem:internal' });
  await system.sql('ticket-service', 'DROP TRIGGER refuse_release');
  const still = await system.tickets.call('getTicket', { path: { id: ticket.id } });
  t.equal(still.ok && still.body.status, 'RESERVED', 'the ticket is still RESERVED');
  t.equal(await eventRowsOf(ticket.id), 1, 'and has only its ticket.reserved event row');
  t.equal((await system.tickets.call('updateTicketStatus', { path: { id: ticket.id }, body: { status: 'CANCELLED' } })).status, 200, 'cancelled again, it commits');

  t.ok(await eventually(async () => ofTicket(main, ticket.id).length >= 2), 'the committed changes were delivered');
  await flush(main, mainHook);
  t.same(typesOf(ofTicket(main, retried.body.id)), ['ticket.reserved'], 'the revived ticket: ticket.reserved, once');
  t.same(typesOf(ofTicket(main, ticket.id)).sort(), ['ticket.cancelled:customer', 'ticket.reserved'], 'the cancelled ticket: one ticket.cancelled, from the cancellation that committed');
  t.ok(system.ticket.process.exitCode === null && system.ticket.process.signalCode === null, 'ticket-service kept running');
});

t.test('a receiver that answers 500 three times, then 200: one delivery, four attempts, the same webhook-id, each signed, with growing backoff', async (t) => {
  const flaky = await startReceiver(t);
  flaky.answer = (_delivery, index) => (index < 3 ? 500 : 200);
  const attemptsBefore = await attemptCounts();
  const hook = await subscribe(flaky, ['ticket.confirmed']);
  const queued = await ping(hook);
  t.ok(await eventually(async () => flaky.deliveries.length >= 4, 15_000), 'four attempts arrived');
  await sleep(300);
  t.equal(flaky.deliveries.length, 4, 'and no fifth');
  t.same(new Set(flaky.deliveries.map((d) => d.headers['webhook-id'])), new Set([queued.message_id]), 'every attempt carries the same webhook-id');
  t.ok(flaky.deliveries.every((d) => verifies(hook.secret, d)), 'every attempt is signed and verifies');
  const times = flaky.deliveries.map((d) => d.receivedAt);
  const gaps = times.slice(1).map((time, i) => time - (times[i] ?? time));
  t.ok((gaps[2] ?? 0) > (gaps[0] ?? 0) * 2, `the backoff grows between attempts (gaps ${gaps.join(', ')} ms)`);
  t.ok(Number(flaky.deliveries[3]?.headers['webhook-timestamp']) > Number(flaky.deliveries[0]?.headers['webhook-timestamp']), 'the last attempt is signed with a later timestamp than the first');
  const log = await system.tickets.call('listWebhookDeliveries', { path: { webhook_id: hook.id } });
  if (!log.ok) throw new Error('no delivery log');
  t.match(log.body, [{ id: queued.id, status: 'delivered', attempts: 4, last_status_code: 200, next_attempt_at: null }], 'the log shows one delivery, delivered after four attempts');
  const attemptsAfter = await attemptCounts();
  t.same(
    Object.fromEntries(Object.entries(attemptsAfter).map(([outcome, n]) => [outcome, n - (attemptsBefore[outcome] ?? 0)])),
    { delivered: 1, retrying: 3, failed: 0, aborted: 0 },
    'GET /metrics counts the attempts by outcome: 3 retried, 1 delivered',
  );
  await system.tickets.call('deleteWebhook', { path: { webhook_id: hook.id } });
});

t.test('a receiver that answers a redirect has failed that attempt: the redirect is not followed', async (t) => {
  const target = await startReceiver(t);
  const redirecting = await startReceiver(t);
  redirecting.answer = () => 307;
  redirecting.answerHeaders = { location: target.url };
  const hook = await subscribe(redirecting, ['ticket.confirmed']);
  const queued = await ping(hook);
  const logged = async () => {
    const log = await system.tickets.call('listWebhookDeliveries', { path: { webhook_id: hook.id } });
    return log.ok ? log.body.find((d) => d.id === queued.id) : undefined;
  };
  t.ok(await eventually(async () => ((await logged())?.attempts ?? 0) >= 2), 'the delivery is retried');
  t.match(await logged(), { status: 'pending', last_status_code: 307 }, 'the 307 counted as a failed attempt');
  t.equal(target.deliveries.length, 0, 'the redirect target got nothing');
  await system.tickets.call('deleteWebhook', { path: { webhook_id: hook.id } });
});

t.test('a receiver that hangs does not slow purchases or another endpoint', async (t) => {
  const hanging = await startReceiver(t);
  hanging.answer = () => 'hang';
  const hook = await subscribe(hanging);
  const latencies: number[] = [];
  const before = main.deliveries.length;
  for (let i = 0; i < 20; i += 1) {
    const started = performance.now();
    await reserve(system, event.id, 1);
    latencies.push(performance.now() - started);
  }
  const sorted = [...latencies].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)] ?? Infinity;
  const slowest = sorted[sorted.length - 1] ?? Infinity;
  // A purchase that waited for its deliveries would take as long as an attempt to the hanging receiver: its timeout.
  const attemptMs = Number(system.env.WEBHOOK_TIMEOUT_SECONDS) * 1000;
  t.ok(median < attemptMs / 2, `half of 20 purchases took at most ${median.toFixed(0)} ms, well under the ${attemptMs} ms an attempt to the hanging receiver lasts`);
  t.ok(slowest < Number(system.env.EVENT_SERVICE_TIMEOUT_SECONDS) * 1000, `the slowest took ${slowest.toFixed(0)} ms, within the usual call budget`);
  t.ok(await eventually(async () => main.deliveries.length >= before + 20, 10_000), 'the other endpoint got all 20 ticket.reserved deliveries meanwhile');
  t.ok(hanging.deliveries.length > 0, `the hanging endpoint was tried (${hanging.deliveries.length} attempts)`);
  await system.tickets.call('deleteWebhook', { path: { webhook_id: hook.id } });
});

t.test('deliveries to a busy endpoint follow one another, and one disabled meanwhile gets nothing more than the attempts under way', async (t) => {
  const slow = await startReceiver(t);
  slow.delayMs = 40;
  const hook = await subscribe(slow, ['ticket.reserved']);
  const other = await createEvent(system, { total_tickets: 100 });
  let inFlight = 0;
  let mostInFlight = 0;
  slow.answer = () => {
    inFlight += 1;
    mostInFlight = Math.max(mostInFlight, inFlight);
    setTimeout(() => (inFlight -= 1), slow.delayMs);
    return 200;
  };
  await Promise.all(Array.from({ length: 40 }, () => reserve(system, other.id, 1)));
  t.ok(await eventually(async () => slow.deliveries.length >= 8), 'deliveries are under way');
  const disabled = await system.tickets.call('updateWebhook', { path: { webhook_id: hook.id }, body: { enabled: false } });
  t.equal(disabled.status, 200);
  const atDisable = slow.deliveries.length;
  await sleep(800);
  const after = slow.deliveries.length - atDisable;
  const limit = Number(system.env.WEBHOOK_CONCURRENCY);
  t.ok(after <= limit, `at most the ${limit} attempts under way arrived once it was disabled (${after})`);
  t.ok(slow.deliveries.length < 40, `the rest wait (${slow.deliveries.length} of 40 delivered)`);
  t.equal(mostInFlight, limit, `WEBHOOK_CONCURRENCY attempts at once to the endpoint, never more (${mostInFlight})`);
  await system.tickets.call('deleteWebhook', { path: { webhook_id: hook.id } });
});

t.test('pending deliveries and failing endpoints are figures: up while a receiver fails, down once delivered or its subscription is deleted, read again at start-up', async (t) => {
  t.same(await figuresBecome({ pending: 0, failing: 0, disabled: 0, inDatabase: 0 }), { pending: 0, failing: 0, disabled: 0, inDatabase: 0 }, 'quiet: nothing pending, no endpoint failing');
  const receiver = await startReceiver(t);
  receiver.answer = () => 500;
  const hook = await subscribe(receiver, ['ticket.confirmed']);
  await ping(hook);
  await ping(hook);
  t.same(await figuresBecome({ pending: 2, failing: 1, disabled: 0, inDatabase: 2 }), { pending: 2, failing: 1, disabled: 0, inDatabase: 2 }, 'two deliveries to a receiver that answers 500 are pending, and it is failing');
  const age = metricValue(parseMetrics(await (await fetch(`${system.ticket.url}/metrics`)).text()), 'eventsync_webhook_oldest_pending_age_seconds');
  t.ok(age >= 0 && age < 30, `the oldest has waited ${age} s`);

  receiver.answer = () => 200;
  t.same(await figuresBecome({ pending: 0, failing: 0, disabled: 0, inDatabase: 0 }), { pending: 0, failing: 0, disabled: 0, inDatabase: 0 }, 'once it answers 200 both were delivered and it is no longer failing');

  receiver.answer = () => 500;
  await ping(hook);
  await ping(hook);
  t.same(await figuresBecome({ pending: 2, failing: 1, disabled: 0, inDatabase: 2 }), { pending: 2, failing: 1, disabled: 0, inDatabase: 2 }, 'failing again, two pending');
  await system.stop('ticket-service');
  await system.restart('ticket-service');
  t.same(await queueFigures(), { pending: 2, failing: 1, disabled: 0, inDatabase: 2 }, 'a restarted ticket-service reads them from its database');

  t.equal((await system.tickets.call('deleteWebhook', { path: { webhook_id: hook.id } })).status, 204);
  t.same(await queueFigures(), { pending: 0, failing: 0, disabled: 0, inDatabase: 0 }, 'deleting the subscription takes its pending deliveries and its failing state out of the figures at once');
});

t.test('after rotate-secret, deliveries verify with both the new and the old secret', async (t) => {
  const rotated = await system.tickets.call('rotateWebhookSecret', { path: { webhook_id: mainHook.id } });
  if (!rotated.ok) throw new Error('rotation failed');
  t.not(rotated.body.secret, mainHook.secret, 'a new secret');
  const shown = await system.tickets.call('getWebhook', { path: { webhook_id: mainHook.id } });
  t.equal(shown.ok && shown.body.previous_secret_expires_at, rotated.body.previous_secret_expires_at, 'the subscription says until when the old secret signs');
  const queued = await ping(mainHook);
  t.ok(await eventually(async () => main.deliveries.some((d) => d.headers['webhook-id'] === queued.message_id)));
  const delivery = main.deliveries.find((d) => d.headers['webhook-id'] === queued.message_id);
  if (!delivery) throw new Error('no ping');
  t.equal(String(delivery.headers['webhook-signature']).split(' ').length, 2, 'two signatures');
  t.ok(verifies(rotated.body.secret, delivery), 'it verifies with the new secret');
  t.ok(verifies(mainHook.secret, delivery), 'and with the old one');
  t.notMatch(logsOf(system, 'ticket-service'), /whsec_/, "no signing secret in ticket-service's log");
  mainHook.secret = rotated.body.secret;
});

t.test('the delivery log pages with Link, filters by status, and a retried delivery arrives again with its webhook-id', async (t) => {
  const first = await system.tickets.call('listWebhookDeliveries', { path: { webhook_id: mainHook.id }, query: { limit: 7 } });
  if (!first.ok) throw new Error('no log');
  const total = Number(first.headers['x-total-count']);
  t.ok(total > 7, `${total} deliveries in all`);
  const seen = first.body.map((d) => d.id);
  let link = String(first.headers.link ?? '');
  while (/rel="next"/.test(link)) {
    const cursor = /cursor=([^&>]+)[^>]*>; rel="next"/.exec(link)?.[1];
    if (!cursor) break;
    const page = await system.tickets.call('listWebhookDeliveries', { path: { webhook_id: mainHook.id }, query: { limit: 7, cursor: decodeURIComponent(cursor) } });
    if (!page.ok) throw new Error('page failed');
    seen.push(...page.body.map((d) => d.id));
    link = String(page.headers.link ?? '');
  }
  t.equal(seen.length, total, 'following Link reaches every delivery');
  t.equal(new Set(seen).size, total, 'none twice');
  t.same(seen, [...seen].sort((a, b) => b - a), 'newest first');
  const delivered = await system.tickets.call('listWebhookDeliveries', { path: { webhook_id: mainHook.id }, query: { status: 'delivered', limit: 1000 } });
  t.ok(delivered.ok && delivered.body.length > 0 && delivered.body.every((d) => d.status === 'delivered' && d.last_status_code === 200), 'the status filter');
  const again = delivered.ok ? delivered.body[delivered.body.length - 1] : undefined;
  if (!again) throw new Error('nothing delivered');
  const before = main.deliveries.filter((d) => d.headers['webhook-id'] === again.message_id).length;
  const retried = await system.tickets.call('retryWebhookDelivery', { path: { webhook_id: mainHook.id, delivery_id: again.id } });
  t.equal(retried.status, 202);
  t.ok(await eventually(async () => main.deliveries.filter((d) => d.headers['webhook-id'] === again.message_id).length > before), 'the retried delivery arrived again with the same webhook-id');
  const missing = await system.tickets.call('retryWebhookDelivery', { path: { webhook_id: mainHook.id, delivery_id: 999_999 } });
  t.equal(missing.status, 404);
});

t.test('ticket-service SIGKILLed right after a purchase is answered: its ticket.reserved still arrives after the restart', async (t) => {
  await main.close();
  const ticket = await reserve(system, event.id, 1, { 'idempotency-key': uuid() });
  await system.stop('ticket-service', 'SIGKILL');
  await main.reopen();
  await system.restart('ticket-service');
  t.ok(await eventually(async () => ofTicket(main, ticket.id).some((d) => d.message.type === 'ticket.reserved'), 15_000), 'the ticket.reserved delivery arrived');
  t.ok(ofTicket(main, ticket.id).every((d) => verifies(mainHook.secret, d)));
});

t.test('a subscription past its expires_at is removed with its deliveries', async (t) => {
  const receiver = await startReceiver(t);
  const created = await system.tickets.call('createWebhook', { body: { url: receiver.url, events: ['*'], expires_at: new Date(Date.now() + 500).toISOString() } });
  if (!created.ok) throw new Error('could not subscribe');
  t.ok(await eventually(async () => (await system.tickets.call('getWebhook', { path: { webhook_id: created.body.id } })).status === 404, 5000), 'gone once expired');
});
