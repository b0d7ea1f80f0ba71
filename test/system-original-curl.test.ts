import t from 'tap';
import { request } from 'undici';
import { testStores } from './helpers/postgres.js';
import { startSystem } from './helpers/system.js';

/** The original README's calls, sent exactly as written (only host and port differ). */
async function curl(method: string, url: string, body: string) {
  const response = await request(url, { method: method as 'POST', headers: { 'Content-Type': 'application/json' }, body });
  return { status: response.statusCode, json: (await response.body.json()) as Record<string, unknown> };
}

for (const store of await testStores()) {
  t.test(`the four original curl calls work as written and availability follows each step (${store})`, async (t) => {
    // Fresh as in the README: on PostgreSQL the services migrate empty databases at start-up.
    const system = await startSystem(t, { store, freshDatabases: true });
    const available = async () => {
      const result = await system.events.call('getEvent', { path: { id: 1 } });
      return result.ok ? result.body.available_tickets : undefined;
    };
    const created = await curl('POST', `${system.event.url}/events`, `{
      "name": "Tech Conference 2025",
      "description": "Annual technology conference",
      "event_date": "2025-06-15T09:00:00",
      "venue": "Convention Center",
      "total_tickets": 200
    }`);
    t.equal(created.status, 201);
    t.equal(created.json.available_tickets, 200);

    const reserved = await curl('POST', `${system.ticket.url}/tickets`, `{
      "event_id": 1,
      "customer_name": "John Doe",
      "customer_email": "john@example.com",
      "quantity": 2
    }`);
    t.equal(reserved.status, 201);
    t.equal(reserved.json.id, 1);
    t.equal(reserved.json.status, 'RESERVED');
    t.equal(reserved.json.total_price, 20000, '2 x 100.00 in minor units');
    t.same(reserved.json.event, { name: 'Tech Conference 2025', event_date: '2025-06-15T09:00:00Z', venue: 'Convention Center' });
    t.equal(await available(), 198);

    const confirmed = await curl('PUT', `${system.ticket.url}/tickets/1/status`, '{"status": "CONFIRMED"}');
    t.equal(confirmed.status, 200);
    t.equal(confirmed.json.status, 'CONFIRMED');
    t.equal(await available(), 198);

    const cancelled = await curl('PUT', `${system.ticket.url}/tickets/1/status`, '{"status": "CANCELLED"}');
    t.equal(cancelled.status, 200);
    t.equal(cancelled.json.status, 'CANCELLED');
    t.equal(cancelled.json.cancellation_reason, 'customer');
    t.equal(await available(), 200);
    t.same(await system.audit(), [], 'the invariant holds across both services');
  });
}
