import t from 'tap';
import { join } from 'node:path';
import { specOperations } from '../openapi/spec.js';
import { fastifyPath } from '../platform/openapi-routes.js';
import { loadConfig, TicketServiceConfigSchema } from '../platform/config.js';
import { buildTicketApp } from '../ticket-service/app.js';
import { servedRoutes } from './helpers/event-api.js';
import { SERVICE_TOKEN, tempDir } from './helpers/event-app.js';
import { startSystem } from './helpers/system.js';
import { ContractChecker } from './helpers/contract.js';
import { ticketServiceClient } from '../openapi/client.js';

const operations = specOperations('ticket-service');
const routeKey = (method: string, path: string): string => `${method.toUpperCase()} ${path}`;
const specRoutes = new Set(operations.map((o) => routeKey(o.method, fastifyPath(o.path))));
const isDocumentation = (path: string): boolean => path === '/' || path === '/openapi.json' || path === '/docs' || path.startsWith('/docs/');

t.test('ticket-service serves every operation of its spec and no API route outside it', async (t) => {
  const dir = tempDir(t);
  const config = loadConfig(TicketServiceConfigSchema, { SERVICE_TOKEN, TICKET_DB_PATH: join(dir, 'ticket_data.db'), LOG_LEVEL: 'silent', EVENT_SERVICE_URL: 'http://127.0.0.1:1' });
  const app = await buildTicketApp(config, { background: false });
  t.teardown(() => app.close());
  await app.ready();
  for (const { method, path, operation } of operations) {
    t.ok(app.hasRoute({ method: method.toUpperCase() as 'GET', url: fastifyPath(path) }), `${operation.operationId}: ${method.toUpperCase()} ${path} is served`);
  }
  const routes = servedRoutes(app.printRoutes());
  const gets = new Set(routes.filter((r) => r.method === 'GET').map((r) => r.path));
  const extra = routes.filter(
    (route) =>
      !specRoutes.has(routeKey(route.method, route.path)) &&
      !isDocumentation(route.path) &&
      !(route.method === 'HEAD' && gets.has(route.path)) &&
      !(route.method === 'OPTIONS' && route.path === '*'),
  );
  t.same(extra.map((r) => routeKey(r.method, r.path)), [], 'no undocumented API route');
});

t.test('every ticket-service operation answers a valid request with a 2xx that conforms to the spec', async (t) => {
  const system = await startSystem(t);
  const checker = new ContractChecker('ticket-service');
  const client = ticketServiceClient({
    baseUrl: system.ticket.url,
    observe: (answer) => t.same(checker.check(answer.method, answer.path, answer.status, answer.contentType, answer.text), [], `${answer.operationId} ${answer.status} conforms`),
  });
  t.teardown(() => client.close());
  const event = await system.events.call('createEvent', { body: { name: 'Contract Night', event_date: '2027-01-01T20:00:00Z', total_tickets: 10 } });
  if (!event.ok) throw new Error('could not create the event');
  t.equal((await client.call('getHealth', {})).status, 200);
  t.equal((await client.call('getReady', {})).status, 200);
  t.equal((await client.call('getMetrics', {})).status, 200);
  const bought = await client.call('createTicket', { body: { event_id: event.body.id, customer_name: 'Ada', customer_email: 'ada@example.com', quantity: 2 }, headers: { 'Idempotency-Key': 'contract-1' } });
  t.equal(bought.status, 201);
  if (!bought.ok) throw new Error('purchase failed');
  const id = bought.body.id;
  t.equal((await client.call('listTickets', { query: { event_id: event.body.id } })).status, 200);
  t.equal((await client.call('getTicket', { path: { id } })).status, 200);
  t.equal((await client.call('updateTicketStatus', { path: { id }, body: { status: 'CONFIRMED', payment_reference: 'pay_1' } })).status, 200);
  t.equal((await client.call('deleteTicket', { path: { id } })).status, 204);
  // Nothing listens on port 1: the deliveries stay pending, which is all the log needs here.
  const hook = await client.call('createWebhook', { body: { url: 'http://127.0.0.1:1/hook', events: ['*'], description: 'contract' } });
  if (!hook.ok) throw new Error('could not create the webhook');
  const webhook_id = hook.body.id;
  t.equal((await client.call('listWebhooks', {})).status, 200);
  t.equal((await client.call('getWebhook', { path: { webhook_id } })).status, 200);
  t.equal((await client.call('updateWebhook', { path: { webhook_id }, body: { description: 'contract check' } })).status, 200);
  const ping = await client.call('pingWebhook', { path: { webhook_id } });
  if (!ping.ok) throw new Error('could not ping the webhook');
  t.equal((await client.call('rotateWebhookSecret', { path: { webhook_id } })).status, 200);
  t.equal((await client.call('listWebhookDeliveries', { path: { webhook_id }, query: { status: 'pending' } })).status, 200);
  t.equal((await client.call('retryWebhookDelivery', { path: { webhook_id, delivery_id: ping.body.id } })).status, 202);
  t.equal((await client.call('deleteWebhook', { path: { webhook_id } })).status, 204);
  // The waiting list: a sold-out event, one entry, a cancellation that becomes its offer.
  const small = await system.events.call('createEvent', { body: { name: 'Contract Waitlist', event_date: '2027-01-02T20:00:00Z', total_tickets: 1 } });
  if (!small.ok) throw new Error('could not create the event');
  const last = await client.call('createTicket', { body: { event_id: small.body.id, customer_name: 'Bo', customer_email: 'bo@example.com', quantity: 1 } });
  if (!last.ok) throw new Error('could not buy the last seat');
  const joined = await client.call('joinWaitlist', { body: { event_id: small.body.id, customer_name: 'Cy', customer_email: 'cy@example.com', quantity: 1 } });
  if (!joined.ok) throw new Error('could not join the waiting list');
  const entry_id = joined.body.id;
  t.equal((await client.call('listWaitlist', { query: { event_id: small.body.id, status: 'WAITING' } })).status, 200);
  t.equal((await client.call('updateTicketStatus', { path: { id: last.body.id }, body: { status: 'CANCELLED' } })).status, 200);
  for (let i = 0; i < 100; i += 1) {
    const entry = await client.call('getWaitlistEntry', { path: { entry_id } });
    if (entry.ok && entry.body.status === 'OFFERED') break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  t.equal((await client.call('offerWaitlistEntry', { path: { entry_id } })).status, 200);
  t.equal((await client.call('leaveWaitlist', { path: { entry_id } })).status, 200);
  t.equal((await client.call('closeWaitlist', { query: { event_id: small.body.id } })).status, 200);
  for (const { operation } of operations) {
    const statuses = [...(checker.seen.get(operation.operationId) ?? [])];
    t.ok(statuses.some((status) => status >= 200 && status < 300), `${operation.operationId} was seen with a 2xx answer (seen: ${statuses.join(', ') || 'none'})`);
  }
  t.same(await system.audit(), [], 'the invariant holds');
});
