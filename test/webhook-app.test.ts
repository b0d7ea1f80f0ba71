/**
 * Webhook safety, shutdown and giving up, on ticket-service built in this process (no event-service
 * needed): private and plain-http targets refused with ADMIN_TOKEN set, a name resolving to loopback
 * refused where the connection is made, SIGTERM's abort leaving an attempt in flight due, retention,
 * and when a delivery fails and an endpoint is disabled.
 */
import t, { type Test } from 'tap';
import { hostname } from 'node:os';
import { lookup } from 'node:dns/promises';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import type { FastifyInstance } from 'fastify';
import { loadConfig, TicketServiceConfigSchema } from '../platform/config.js';
import { buildTicketApp } from '../ticket-service/app.js';
import { checkedLookup } from '../ticket-service/domain/webhooks-safety.js';
import { ADMIN_TOKEN, SERVICE_TOKEN, adminAuth, tempDir } from './helpers/event-app.js';
import { eventually } from './helpers/system.js';
import { sleep } from './helpers/system-api.js';
import { startReceiver } from './helpers/webhook-receiver.js';

async function ticketApp(t: Test, dir: string, env: Record<string, string> = {}): Promise<FastifyInstance> {
  const config = loadConfig(TicketServiceConfigSchema, {
    SERVICE_TOKEN,
    TICKET_DB_PATH: join(dir, 'ticket_data.db'),
    LOG_LEVEL: 'silent',
    EVENT_SERVICE_URL: 'http://127.0.0.1:1',
    SWEEP_INTERVAL_SECONDS: '0.1',
    ...env,
  });
  const app = await buildTicketApp(config);
  t.teardown(() => app.close());
  await app.ready();
  return app;
}

t.test('with ADMIN_TOKEN set, http and loopback, private, link-local, CGNAT, IPv4-mapped and unique-local targets are refused with 400 problem+json', async (t) => {
  const app = await ticketApp(t, tempDir(t), { ADMIN_TOKEN });
  const refused = [
    'http://hooks.example.com/eventsync',
    'https://127.0.0.1/hook',
    'https://[::1]/hook',
    'https://10.1.2.3/hook',
    'https://192.168.0.10/hook',
    'https://169.254.169.254/latest/meta-data',
    'https://100.64.0.1/hook',
    'https://[::ffff:127.0.0.1]/hook',
    'https://[::ffff:10.0.0.1]/hook',
    'https://[fd12:3456::1]/hook',
    'https://0.0.0.0/hook',
    'https://localhost/hook',
    'https://0x7f000001/hook',
  ];
  for (const url of refused) {
    const answer = await app.inject({ method: 'POST', url: '/webhooks', headers: adminAuth, payload: { url, events: ['*'] } });
    t.equal(answer.statusCode, 400, `${url} is refused`);
    t.match(answer.headers['content-type'], /application\/problem\+json/);
    t.match(answer.json(), { type: 'urn:eventsync:problem:webhook-url-refused', errors: [{ pointer: '#/url' }] });
  }
  const created = await app.inject({ method: 'POST', url: '/webhooks', headers: adminAuth, payload: { url: 'https://hooks.example.com/eventsync', events: ['ticket.confirmed'] } });
  t.equal(created.statusCode, 201, 'a public https URL is accepted');
  const id = (created.json() as { id: number }).id;
  const moved = await app.inject({ method: 'PATCH', url: `/webhooks/${id}`, headers: adminAuth, payload: { url: 'https://10.0.0.1/hook' } });
  t.equal(moved.statusCode, 400, 'and cannot be moved to a private address');
  const anonymous = await app.inject({ method: 'GET', url: '/webhooks' });
  t.equal(anonymous.statusCode, 401, 'subscriptions need the admin token');
  const secretShown = await app.inject({ method: 'GET', url: `/webhooks/${id}`, headers: adminAuth });
  t.notOk('secret' in (secretShown.json() as object), 'the secret is shown only on creation');
});

t.test('a name that resolves to a loopback address is refused where the connection is made, not only when the URL is checked', async (t) => {
  const receiver = await startReceiver(t);
  const agent = new Agent({ connect: { lookup: checkedLookup } });
  t.teardown(() => agent.close());
  const error = await request(`http://localhost:${receiver.port}/hook`, { method: 'POST', body: '{}', dispatcher: agent }).then(
    () => undefined,
    (caught: unknown) => caught,
  );
  t.match(String((error as { cause?: unknown })?.cause ?? error), /resolved to 127\.0\.0\.1, which points at a loopback address/, 'the connection is refused at lookup');
  t.equal(receiver.deliveries.length, 0, 'nothing reached the receiver');

  // Through the dispatcher: a name that passes the URL check (it is not `localhost`) but resolves to loopback.
  const name = hostname();
  const addresses = await lookup(name, { all: true }).catch(() => []);
  if (!addresses.some((a) => a.address.startsWith('127.') || a.address === '::1')) {
    t.comment(`${name} does not resolve to loopback here: the dispatcher half is skipped`);
    return;
  }
  const app = await ticketApp(t, tempDir(t), { ADMIN_TOKEN });
  const created = await app.inject({ method: 'POST', url: '/webhooks', headers: adminAuth, payload: { url: `https://${name}:${receiver.port}/hook`, events: ['*'] } });
  t.equal(created.statusCode, 201, `https://${name}/… passes the URL check`);
  const id = (created.json() as { id: number }).id;
  t.equal((await app.inject({ method: 'POST', url: `/webhooks/${id}/ping`, headers: adminAuth })).statusCode, 202);
  const failedAttempt = async () => {
    const log = (await app.inject({ method: 'GET', url: `/webhooks/${id}/deliveries`, headers: adminAuth })).json() as Array<{ attempts: number; last_error: string | null }>;
    return log[0]?.attempts === 1 ? log[0] : undefined;
  };
  t.ok(await eventually(async () => (await failedAttempt()) !== undefined), 'the ping was attempted');
  t.match((await failedAttempt())?.last_error, /resolved to 127\.0\.0\.1/, 'and refused at connect time');
  t.equal(receiver.deliveries.length, 0, 'nothing reached the receiver');
});

t.test('on shutdown an attempt in flight is aborted at once and stays due, its attempts unchanged', async (t) => {
  const dir = tempDir(t);
  const receiver = await startReceiver(t);
  receiver.answer = () => 'hang';
  const app = await ticketApp(t, dir, { WEBHOOK_TIMEOUT_SECONDS: '30' });
  const created = await app.inject({ method: 'POST', url: '/webhooks', payload: { url: receiver.url, events: ['*'] } });
  const id = (created.json() as { id: number }).id;
  await app.inject({ method: 'POST', url: `/webhooks/${id}/ping` });
  t.ok(await eventually(async () => receiver.deliveries.length === 1), 'the attempt is in flight');
  const started = performance.now();
  await app.close();
  const tookMs = performance.now() - started;
  t.ok(tookMs < 5000, `the service closed in ${tookMs.toFixed(0)} ms, not after the 30 s attempt timeout`);
  receiver.answer = () => 200;
  const again = await ticketApp(t, dir, { WEBHOOK_TIMEOUT_SECONDS: '30' });
  t.ok(await eventually(async () => receiver.deliveries.length === 2), 'after a restart the delivery is attempted again');
  t.equal(receiver.deliveries[1]?.headers['webhook-id'], receiver.deliveries[0]?.headers['webhook-id'], 'with the same webhook-id');
  const logged = async () => ((await again.inject({ method: 'GET', url: `/webhooks/${id}/deliveries` })).json() as Array<{ attempts: number; status: string }>)[0];
  t.ok(await eventually(async () => (await logged())?.status === 'delivered'), 'delivered');
  t.equal((await logged())?.attempts, 1, 'the aborted attempt was not counted');
});

t.test('by default 16 attempts run at once to an endpoint with deliveries waiting, never more (WEBHOOK_CONCURRENCY)', async (t) => {
  const receiver = await startReceiver(t);
  receiver.delayMs = 1000;
  let inFlight = 0;
  let mostInFlight = 0;
  receiver.answer = () => {
    inFlight += 1;
    mostInFlight = Math.max(mostInFlight, inFlight);
    setTimeout(() => (inFlight -= 1), receiver.delayMs);
    return 200;
  };
  const app = await ticketApp(t, tempDir(t));
  const created = await app.inject({ method: 'POST', url: '/webhooks', payload: { url: receiver.url, events: ['*'] } });
  const id = (created.json() as { id: number }).id;
  for (let i = 0; i < 30; i += 1) await app.inject({ method: 'POST', url: `/webhooks/${id}/ping` });
  t.ok(await eventually(async () => receiver.deliveries.length === 30, 10_000), 'all 30 delivered');
  t.equal(mostInFlight, 16, `16 attempts at once, never more (${mostInFlight})`);
});

t.test('an endpoint whose attempts all hang does not hold up another endpoint on the same host', async (t) => {
  const receiver = await startReceiver(t);
  receiver.answer = (delivery) => (delivery.path === '/hang' ? 'hang' : 200);
  const base = `http://127.0.0.1:${receiver.port}`;
  const app = await ticketApp(t, tempDir(t), { WEBHOOK_CONCURRENCY: '2', WEBHOOK_TIMEOUT_SECONDS: '10' });
  const subscribe = async (path: string) => ((await app.inject({ method: 'POST', url: '/webhooks', payload: { url: `${base}${path}`, events: ['*'] } })).json() as { id: number }).id;
  const [hanging, healthy] = [await subscribe('/hang'), await subscribe('/ok')];
  for (let i = 0; i < 3; i += 1) await app.inject({ method: 'POST', url: `/webhooks/${hanging}/ping` });
  t.ok(await eventually(async () => receiver.deliveries.filter((d) => d.path === '/hang').length === 2), 'the hanging endpoint has its 2 attempts in flight');
  const asked = Date.now();
  await app.inject({ method: 'POST', url: `/webhooks/${healthy}/ping` });
  t.ok(await eventually(async () => receiver.deliveries.some((d) => d.path === '/ok'), 3000), 'the other endpoint on that host gets its ping at once');
  t.ok(Date.now() - asked < 3000, `in ${Date.now() - asked} ms, not after the hanging attempts' 10 s timeout`);
  t.equal(receiver.deliveries.filter((d) => d.path === '/hang').length, 2, 'and the hanging endpoint still has only its 2');
});

t.test('delivered deliveries leave the log after WEBHOOK_RETENTION_DAYS', async (t) => {
  const receiver = await startReceiver(t);
  // 0.00002 days is about 1.7 s.
  const app = await ticketApp(t, tempDir(t), { WEBHOOK_RETENTION_DAYS: '0.00002' });
  const created = await app.inject({ method: 'POST', url: '/webhooks', payload: { url: receiver.url, events: ['*'] } });
  const id = (created.json() as { id: number }).id;
  await app.inject({ method: 'POST', url: `/webhooks/${id}/ping` });
  const logged = async () => (await app.inject({ method: 'GET', url: `/webhooks/${id}/deliveries` })).json() as Array<{ status: string }>;
  t.ok(await eventually(async () => (await logged())[0]?.status === 'delivered'), 'delivered and logged');
  t.ok(await eventually(async () => (await logged()).length === 0, 10_000), 'then gone from the log');
  t.equal(receiver.deliveries.length, 1);
});

t.test('a delivery that fails for WEBHOOK_RETRY_HOURS becomes failed; an endpoint is disabled once nothing sent to it succeeded that long, never by one failed attempt, and PATCH re-enables it', async (t) => {
  const receiver = await startReceiver(t);
  receiver.answer = () => 'hang';
  // 0.0002 hours is 0.72 s of retries, 0.1 s apart at first; an attempt gets 1 s, longer than that window.
  const retryWindowMs = 720;
  const app = await ticketApp(t, tempDir(t), { WEBHOOK_RETRY_HOURS: '0.0002', WEBHOOK_RETRY_BASE_SECONDS: '0.1', WEBHOOK_TIMEOUT_SECONDS: '1' });
  const created = await app.inject({ method: 'POST', url: '/webhooks', payload: { url: receiver.url, events: ['*'] } });
  const id = (created.json() as { id: number }).id;
  const hook = async () => (await app.inject({ method: 'GET', url: `/webhooks/${id}` })).json() as { enabled: boolean; disabled_reason: string | null };
  const log = async () => (await app.inject({ method: 'GET', url: `/webhooks/${id}/deliveries` })).json() as Array<{ status: string; attempts: number; last_status_code: number | null; last_error: string | null; response_excerpt: string | null }>;

  await app.inject({ method: 'POST', url: `/webhooks/${id}/ping` });
  t.ok(await eventually(async () => (await log())[0]?.status === 'failed'), 'a ping whose first attempt ends past its retry window fails with that attempt');
  t.match(await log(), [{ attempts: 1, last_error: /no answer in 1 s/ }]);
  t.match(await hook(), { enabled: true, disabled_reason: null }, 'one failed attempt does not disable the endpoint');
  // The endpoint has been failing since that attempt, at the latest.
  const failingSince = Date.now();

  receiver.answer = () => 500;
  await app.inject({ method: 'POST', url: `/webhooks/${id}/ping` });
  t.ok(await eventually(async () => (await log())[0]?.status === 'failed', 10_000), 'a ping answered 500 fails once its retry window is over');
  const retried = (await log())[0];
  t.match(retried, { last_status_code: 500, response_excerpt: 'failing on purpose (500)' }, 'with the answer excerpt');
  t.ok((retried?.attempts ?? 0) >= 2, `retried first (${retried?.attempts} attempts)`);
  await sleep(Math.max(0, failingSince + retryWindowMs + 50 - Date.now()));
  if ((await hook()).enabled) await app.inject({ method: 'POST', url: `/webhooks/${id}/ping` });
  t.ok(await eventually(async () => (await hook()).enabled === false, 10_000), 'once nothing sent to it succeeded for WEBHOOK_RETRY_HOURS, a failed attempt disables it');
  t.equal((await hook()).disabled_reason, 'failing');
  t.equal((await app.inject({ method: 'POST', url: `/webhooks/${id}/ping` })).statusCode, 409, 'a disabled endpoint is not pinged');
  const enabled = await app.inject({ method: 'PATCH', url: `/webhooks/${id}`, payload: { enabled: true } });
  t.match(enabled.json(), { enabled: true, disabled_reason: null }, 'PATCH re-enables it');
});
