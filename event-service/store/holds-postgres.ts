/**
 * PostgreSQL's own way of creating a HELD hold (store/holds.ts `HeldHoldCreator`, chosen once, at
 * start-up, in app.ts): the insert and the seat decrement as one statement sent alone, its own
 * transaction: one round trip instead of four (BEGIN, insert, update, COMMIT), the costliest part of
 * a hold there.
 */
import { expressionBuilder, sql, type Kysely } from 'kysely';
import { prepareQuery } from '../../platform/store/prepared.js';
import type { ServiceStore } from '../../platform/store/service-store.js';
import { recordHoldCreated, type EventMetrics } from '../metrics.js';
import { salesOpenAt, seatsFreeForHold, type HoldAudience } from './events.js';
import { findHold, type HeldHoldCreator, type NewHold } from './holds.js';
import type { EventDatabase, HoldRow } from './schema.js';

/**
 * The hold insert and the seat decrement as one statement (PostgreSQL's data-modifying WITH); both
 * carry the one seat condition of `audience` (`seatsFreeForHold`) and the sales window.
 */
const heldHoldWithSeats = (audience: HoldAudience) =>
  prepareQuery<EventDatabase, NewHold, HoldRow & { seats_taken: number }>((db, param) => {
    const events = expressionBuilder<EventDatabase, 'events'>();
    const seatsFree = seatsFreeForHold(events, param('quantity'), audience);
    const salesOpen = salesOpenAt(events, param('now'));
    return {
      compile: () => sql<HoldRow & { seats_taken: number }>`
      WITH held AS (
        INSERT INTO holds (hold_id, event_id, quantity, state, expires_at, unit_price, currency, created_at, updated_at)
        SELECT ${param('hold_id')}, id, ${param('quantity')}, 'HELD', ${param('expires_at')}, ticket_price, currency, ${param('now')}, ${param('now')}
        FROM events
        WHERE id = ${param('event_id')} AND ${seatsFree} AND ${salesOpen}
        ON CONFLICT (hold_id) DO NOTHING
        RETURNING *
      ), taken AS (
        UPDATE events
        SET available_tickets = available_tickets - ${param('quantity')}, held_tickets = held_tickets + ${param('quantity')},
          updated_at = ${param('now')}, version = version + 1
        WHERE id = (SELECT event_id FROM held) AND ${seatsFree} AND ${salesOpen}
        RETURNING id
      )
      -- A hold inserted whose decrement then found the seats gone fails the whole statement (division by
      -- zero, SQLSTATE 22012), so nothing of it is written; evaluated per row of held, so only then.
      SELECT held.*, 1 / (SELECT count(*) FROM taken)::integer AS seats_taken FROM held`.compile(db),
    };
  });
const heldHoldWithSeatsOf = { public: heldHoldWithSeats('public'), waitlist: heldHoldWithSeats('waitlist') };

/** SQLSTATE of the division by zero with which `heldHoldWithSeats` refuses a hold whose seats went meanwhile. */
const SEATS_GONE = '22012';

/** The statement runs outside a tracked write: it is sent alone, and moves the metrics itself once it committed. */
export interface StatementWrites {
  writeStatement: ServiceStore<EventDatabase>['writeStatement'];
  /** Undefined with METRICS=off. */
  metrics: EventMetrics | undefined;
}

/** Creates HELD holds with one statement each (`heldHoldWithSeats`). */
export function heldHoldCreationInOneStatement(db: Kysely<EventDatabase>, statements: StatementWrites): HeldHoldCreator {
  return async (hold, audience) => {
    try {
      const [row] = (await statements.writeStatement(heldHoldWithSeatsOf[audience].compile(db, hold))).rows;
      if (row) {
        const { seats_taken: _taken, ...created } = row;
        if (statements.metrics) recordHoldCreated(statements.metrics, created.quantity);
        return { created };
      }
    } catch (error) {
      if (typeof error === 'object' && error !== null && 'code' in error && error.code === SEATS_GONE) return { refused: true };
      throw error;
    }
    const existing = await findHold(db, hold.hold_id);
    return existing ? { existing } : { refused: true };
  };
}
