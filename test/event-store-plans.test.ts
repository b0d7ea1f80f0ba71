/**
 * The queries event-service runs over and over in the background (the hold-expiry sweeper, and the
 * page of HELD holds ticket-service's reconciler polls every few seconds) reach their rows through an
 * index on SQLite: none reads every hold, or every HELD hold, or sorts them, each time it runs
 * (test/helpers/sqlite-plans.ts). Live reservations are HELD holds, so a sweep that read them all
 * would cost more with every ticket sold.
 */
import t from 'tap';
import { eventMigrations } from '../event-service/store/migrations/index.js';
import type { EventDatabase } from '../event-service/store/schema.js';
import * as events from '../event-service/store/events.js';
import * as holds from '../event-service/store/holds.js';
import { planProblems, recordedStore } from './helpers/sqlite-plans.js';

const GROWING = ['holds', 'events'];

t.test('the background queries of event-service reach their rows through an index (SQLite)', async (t) => {
  const { database, db, recorded } = await recordedStore<EventDatabase>(t, eventMigrations('sqlite'));
  const now = new Date().toISOString();
  const past = new Date(Date.now() - 3600_000).toISOString();
  const future = new Date(Date.now() + 3600_000).toISOString();
  const hold = database.prepare(`INSERT INTO holds (hold_id, event_id, quantity, state, expires_at, created_at, updated_at) VALUES (?, 1, 1, 'HELD', ?, ?, ?)`);
  for (let i = 0; i < 20; i += 1) hold.run(`live-${i}`, future, past, past);
  for (let i = 0; i < 3; i += 1) hold.run(`lapsed-${i}`, past, past, past);
  const queries: Array<[name: string, run: () => Promise<unknown>, statements: number]> = [
    ['lapsed holds, none due (sweeper)', () => holds.expireHeldBefore(db, new Date(Date.now() - 7200_000).toISOString(), now, 500), 1],
    ['lapsed holds, some due (sweeper)', () => holds.expireHeldBefore(db, now, now, 500), 2],
    ['their seats returned (sweeper)', () => events.returnSeats(db, 1, 1, 'held_tickets', now), 1],
    ['HELD holds old enough, first page (reconciler)', () => holds.selectHoldPage(db, { states: ['HELD'], createdBefore: now }, 500, undefined), 1],
    ['HELD holds old enough, next page (reconciler)', () => holds.selectHoldPage(db, { states: ['HELD'], createdBefore: now }, 500, { d: 'n', k: past, id: 'live-3' }), 1],
  ];
  for (const [name, run, statements] of queries) {
    recorded.length = 0;
    await run();
    t.equal(recorded.length, statements, `${name}: ran ${statements} statement(s)`);
    for (const statement of recorded) t.same(planProblems(database, statement, GROWING), [], `${name}: ${statement.sql.slice(0, 100)}`);
  }
  t.same(
    (database.prepare(`SELECT hold_id FROM holds WHERE state = 'EXPIRED' ORDER BY hold_id`).all() as Array<{ hold_id: string }>).map((row) => row.hold_id),
    ['lapsed-0', 'lapsed-1', 'lapsed-2'],
    'the sweep expired the lapsed holds and nothing else',
  );
});
