import { randomUUID } from 'node:crypto';
import t from 'tap';
import { adminAuth, ADMIN_TOKEN, assertSeatInvariant, serviceAuth, startEventApp } from './helpers/event-app.js';
import { specOperations } from '../openapi/spec.js';
import { fastifyPath } from '../platform/openapi-routes.js';
import { servedRoutes, type ApiEvent, type ApiHold, type ApiVenue } from './helpers/event-api.js';
import { testStores } from './helpers/postgres.js';

const operations = specOperations('event-service');
const routeKey = (method: string, path: string): string => `${method.toUpperCase()} ${path}`;
const specRoutes = new Set(operations.map((o) => routeKey(o.method, fastifyPath(o.path))));

/** Swagger UI and the served spec: documentation, not API operations. */
const isDocumentation = (path: string): boolean => path === '/' || path === '/openapi.json' || path === '/docs' || path.startsWith('/docs/');

t.test('every operation of the spec is served', async (t) => {
  const { app } = await startEventApp(t);
  await app.ready();
  t.ok(operations.length >= 18, `the spec has ${operations.length} operations`);
  for (const { method, path, operation } of operations) {
    t.ok(app.hasRoute({ method: method.toUpperCase() as 'GET', url: fastifyPath(path) }), `${operation.operationId}: ${method.toUpperCase()} ${path} is served`);
  }
});

t.test('the app serves no route outside the spec except documentation, HEAD twins of GET routes and the CORS preflight', async (t) => {
  const { app, inject } = await startEventApp(t, { EVENT_SERVICE_PORT: '5001' });
  await app.ready();
  const routes = servedRoutes(app.printRoutes());
  for (const key of specRoutes) t.ok(routes.some((r) => routeKey(r.method, r.path) === key), `the route table lists ${key}`);
  for (const route of routes) t.ok(app.hasRoute({ method: route.method as 'GET', url: route.path.startsWith('/') ? route.path : `/${route.path}` }), `the route table is read right: ${route.method} ${route.path}`);

  const gets = new Set(routes.filter((r) => r.method === 'GET').map((r) => r.path));
  const extra = routes.filter((route) => {
    if (specRoutes.has(routeKey(route.method, route.path))) return false;
    if (isDocumentation(route.path)) return false;
    if (route.method === 'HEAD' && gets.has(route.path)) return false;
    // @fastify/cors answers browser preflights for every path (DESIGN.md: CORS limited to known origins).
    if (route.method === 'OPTIONS' && route.path === '*') return false;
    return true;
  });
  t.same(extra.map((r) => routeKey(r.method, r.path)), [], 'no undocumented API route');

  const preflight = await inject({ method: 'OPTIONS', url: '/events', headers: { origin: 'http://127.0.0.1:5001', 'access-control-request-method': 'POST' } });
  t.equal(preflight.statusCode, 204, `the OPTIONS route is the CORS preflight (${preflight.body})`);
  t.equal(preflight.headers['access-control-allow-origin'], 'http://127.0.0.1:5001');
  const foreign = await inject({ method: 'OPTIONS', url: '/events', headers: { origin: 'http://evil.example', 'access-control-request-method': 'POST' } });
  t.notOk(foreign.headers['access-control-allow-origin'], 'an unknown origin is not allowed');
});

for (const store of await testStores()) {
  t.test(`on ${store}`, async (t) => {
    t.test('every operation answers a valid request with a 2xx that conforms to the spec', async (t) => {
      const app = await startEventApp(t, { ADMIN_TOKEN }, { store });
      const { inject, checker } = app;
      const ok = (status: number, expected: number, what: string) => t.equal(status, expected, what);

      ok((await inject({ method: 'GET', url: '/health' })).statusCode, 200, 'getHealth');
      ok((await inject({ method: 'GET', url: '/ready' })).statusCode, 200, 'getReady');
      ok((await inject({ method: 'GET', url: '/metrics', headers: adminAuth })).statusCode, 200, 'getMetrics');

      const venueAnswer = await inject({ method: 'POST', url: '/venues', headers: adminAuth, payload: { name: 'Convention Center', capacity: 500 } });
      ok(venueAnswer.statusCode, 201, 'createVenue');
      const venue = venueAnswer.json<ApiVenue>();
      ok((await inject({ method: 'GET', url: '/venues' })).statusCode, 200, 'listVenues');
      ok((await inject({ method: 'GET', url: `/venues/${venue.id}` })).statusCode, 200, 'getVenue');
      ok((await inject({ method: 'PUT', url: `/venues/${venue.id}`, headers: adminAuth, payload: { capacity: 400 } })).statusCode, 200, 'updateVenue');

      const eventAnswer = await inject({
        method: 'POST',
        url: '/events',
        headers: adminAuth,
        payload: { name: 'Jazz Night', description: 'An evening of jazz', event_date: '2027-03-20T19:30:00+01:00', venue_id: venue.id, total_tickets: 150, ticket_price: 4500, currency: 'EUR', timezone: 'Europe/Paris' },
      });
      ok(eventAnswer.statusCode, 201, 'createEvent');
      const event = eventAnswer.json<ApiEvent>();
      ok((await inject({ method: 'GET', url: '/events?q=jazz&sort=name&limit=10' })).statusCode, 200, 'listEvents');
      ok((await inject({ method: 'GET', url: `/events/${event.id}` })).statusCode, 200, 'getEvent');
      ok((await inject({ method: 'PUT', url: `/events/${event.id}`, headers: adminAuth, payload: { total_tickets: 200 } })).statusCode, 200, 'updateEvent');
      ok((await inject({ method: 'PUT', url: `/events/${event.id}/tickets`, headers: serviceAuth, payload: { operation: 'reserve', ticket_count: 2 } })).statusCode, 200, 'adjustEventTickets reserve');
      ok((await inject({ method: 'PUT', url: `/events/${event.id}/tickets`, headers: serviceAuth, payload: { operation: 'release', ticket_count: 2 } })).statusCode, 200, 'adjustEventTickets release');

      const holdId = randomUUID();
      const holdAnswer = await inject({ method: 'POST', url: '/holds', headers: serviceAuth, payload: { hold_id: holdId, event_id: event.id, quantity: 2, expires_at: '2030-01-01T00:00:00Z' } });
      ok(holdAnswer.statusCode, 201, 'createHold');
      t.match(holdAnswer.json<ApiHold>(), { unit_price: 4500, currency: 'EUR' }, 'the hold fixes the price');
      const batchHoldId = randomUUID();
      const batchAnswer = await inject({ method: 'POST', url: '/holds/batch', headers: serviceAuth, payload: { holds: [{ hold: { hold_id: batchHoldId, event_id: event.id, quantity: 1, expires_at: '2030-01-01T00:00:00Z' } }] } });
      ok(batchAnswer.statusCode, 200, 'createHoldBatch');
      t.match(batchAnswer.json(), { results: [{ status: 201, hold: { hold_id: batchHoldId, unit_price: 4500 } }] }, 'the batch holds its item');
      ok((await inject({ method: 'POST', url: `/holds/${batchHoldId}/release`, headers: serviceAuth })).statusCode, 200, 'releaseHold of the batch hold');
      ok((await inject({ method: 'GET', url: '/holds', headers: adminAuth })).statusCode, 200, 'listHolds');
      ok((await inject({ method: 'GET', url: `/holds/${holdId}`, headers: serviceAuth })).statusCode, 200, 'getHold');
      ok((await inject({ method: 'POST', url: `/holds/${holdId}/commit`, headers: serviceAuth })).statusCode, 200, 'commitHold');
      ok((await inject({ method: 'POST', url: `/holds/${holdId}/release`, headers: serviceAuth })).statusCode, 200, 'releaseHold');
      ok((await inject({ method: 'POST', url: `/holds/${holdId}/release`, headers: serviceAuth, payload: { waitlist_reserved_tickets: 1, sequence: 1 } })).statusCode, 200, 'releaseHold with a waiting-list gate');
      ok((await inject({ method: 'PUT', url: `/events/${event.id}/waitlist-gate`, headers: serviceAuth, payload: { waitlist_reserved_tickets: 0, sequence: 2 } })).statusCode, 200, 'setWaitlistGate');
      ok((await inject({ method: 'GET', url: `/seat-ledgers?event_id=${event.id}`, headers: adminAuth })).statusCode, 200, 'listSeatLedgers');
      await assertSeatInvariant(t, app, event.id);

      ok((await inject({ method: 'DELETE', url: `/events/${event.id}`, headers: adminAuth })).statusCode, 204, 'deleteEvent');
      ok((await inject({ method: 'DELETE', url: `/venues/${venue.id}`, headers: adminAuth })).statusCode, 204, 'deleteVenue');

      for (const { operation } of operations) {
        const statuses = [...(checker.seen.get(operation.operationId) ?? [])];
        t.ok(statuses.some((status) => status >= 200 && status < 300), `${operation.operationId} was seen with a 2xx answer (seen: ${statuses.join(', ') || 'none'})`);
      }
    });
  });
}
