/**
 * On PostgreSQL a hold is one statement (the insert and the seat decrement together, sent alone):
 * the decrement still has the last word (DESIGN.md, the reservation protocol). Another replica takes
 * the event's last seats while the statement waits for the event's row; the statement then finds
 * them gone and nothing of the hold is written.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import t from 'tap';
import { assertSeatInvariant, startEventApp } from './helpers/event-app.js';
import { assertProblem, getEvent, holdRequest, postEvent, requestHold, sleep } from './helpers/event-api.js';
import { testStores } from './helpers/postgres.js';

const stores = await testStores();

t.test('a hold whose last seats another replica takes while its statement waits for the event is refused 409 sold-out and writes nothing', { skip: !stores.includes('postgres') && 'no PostgreSQL server' }, async (t) => {
  const app = await startEventApp(t, {}, { store: 'postgres' });
  const event = await postEvent(app, { total_tickets: 2 });
  const replica = new pg.Client({ connectionString: app.databaseUrl });
  await replica.connect();
  t.teardown(() => replica.end());

  // The other replica's hold of both seats, not yet committed: it holds the event's row.
  const otherHold = randomUUID();
  await replica.query('BEGIN');
  await replica.query(
    `INSERT INTO holds (hold_id, event_id, quantity, state, expires_at, unit_price, currency, created_at, updated_at)
     SELECT $1, id, 2, 'HELD', $2, ticket_price, currency, $3, $3 FROM events WHERE id = $4`,
    [otherHold, new Date(Date.now() + 3_600_000).toISOString(), new Date().toISOString(), event.id],
  );
  await replica.query('UPDATE events SET available_tickets = available_tickets - 2, held_tickets = held_tickets + 2 WHERE id = $1', [event.id]);

  const mine = holdRequest(event.id, 1);
  const answer = requestHold(app, mine);
  // The service's statement has read the seats as free and now waits for the row.
  for (let waited = 0; ; waited += 20) {
    const waiting = await replica.query(`SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()`);
    if (waiting.rowCount) break;
    if (waited > 10_000) throw new Error('the hold statement never waited for the event row');
    await sleep(20);
  }
  await replica.query('COMMIT');

  assertProblem(t, await answer, 409, 'sold-out');
  const held = await replica.query('SELECT hold_id FROM holds WHERE hold_id = $1', [mine.hold_id]);
  t.equal(held.rowCount, 0, 'the refused hold was not written');
  t.match(await getEvent(app, event.id), { available_tickets: 0, held_tickets: 2 }, "only the other replica's hold took seats");
  await assertSeatInvariant(t, app, event.id);
});
