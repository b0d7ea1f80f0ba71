import t from 'tap';
import { startEventApp, originalEvent } from './helpers/event-app.js';
import { testStores } from './helpers/postgres.js';

for (const store of await testStores()) {
  t.test(`on ${store}`, async (t) => {
    t.test('the original example POST /events is answered 201 with 200 available seats, date read as UTC', async (t) => {
      const app = await startEventApp(t, {}, { store });
      const response = await app.inject({ method: 'POST', url: '/events', payload: originalEvent });
      t.equal(response.statusCode, 201);
      const event = response.json();
      t.equal(event.id, 1);
      t.equal(event.available_tickets, 200);
      t.equal(event.event_date, '2025-06-15T09:00:00Z');
      t.equal(event.ticket_price, 10000, 'the default price applies');
      t.equal(event.currency, 'USD');
      t.equal(response.headers.location, '/events/1');
    });
  });
}
