/** Queries on holds. State changes are conditional updates on the expected state. */
import { expressionBuilder, sql, type Kysely, type SqlBool, type Transaction } from 'kysely';
import type { EventDatabase, HoldRow, HoldState } from './schema.js';
import type { Cursor } from '../../platform/pagination.js';
import { prepareQuery } from '../../platform/store/prepared.js';
import type { ServiceStore, StoreDialect } from '../../platform/store/service-store.js';
import { eventChanges, recordHoldCreated, type EventMetrics } from '../metrics.js';
import { salesOpenAt, seatsFreeForHold, takeSeatsForHold, type HoldAudience } from './events.js';

type Db = Kysely<EventDatabase>;

/** Counts hold state changes (`none` for a hold written new), once the change is committed. */
function recordTransition(db: Db, from: HoldState | 'none', to: HoldState, holds = 1): void {
  if (holds > 0) eventChanges.record(db, (metrics) => metrics.holdTransitions.inc({ from, to }, holds));
}

const holdById = prepareQuery<EventDatabase, { hold_id: string }, HoldRow>((db, param) =>
  db.selectFrom('holds').selectAll().where('hold_id', '=', param('hold_id')),
);

export async function findHold(db: Db, holdId: string): Promise<HoldRow | undefined> {
  return holdById.takeFirst(db, { hold_id: holdId });
}

const holdInsertIfNew = prepareQuery<EventDatabase, HoldRow, unknown>((db, param) =>
  db
    .insertInto('holds')
    .values({
      hold_id: param('hold_id'),
      event_id: param('event_id'),
      quantity: param('quantity'),
      state: param('state'),
      expires_at: param('expires_at'),
      unit_price: param('unit_price'),
      currency: param('currency'),
      created_at: param('created_at'),
      updated_at: param('updated_at'),
    })
    .onConflict((oc) => oc.column('hold_id').doNothing()),
);

/** Inserts the hold unless one with its id exists; true when inserted. */
export async function insertHoldIfNew(db: Db, row: HoldRow): Promise<boolean> {
  const result = await holdInsertIfNew.execute(db, row);
  const inserted = (result.numAffectedRows ?? 0n) > 0n;
  if (inserted) recordTransition(db, 'none', row.state);
  return inserted;
}

type NewHold = Pick<HoldRow, 'hold_id' | 'quantity' | 'expires_at'> & { event_id: number; now: string };

const heldHoldInsert = (audience: HoldAudience) => prepareQuery<EventDatabase, NewHold, HoldRow>((db, param) =>
  db
    .insertInto('holds')
    .columns(['hold_id', 'event_id', 'quantity', 'state', 'expires_at', 'unit_price', 'currency', 'created_at', 'updated_at'])
    .expression((eb) =>
      eb
        .selectFrom('events')
        .select((e) => [
          e.val(param('hold_id')).as('hold_id'),
          'events.id as event_id',
          e.val(param('quantity')).as('quantity'),
          e.val('HELD').as('state'),
          e.val(param('expires_at')).as('expires_at'),
          'events.ticket_price as unit_price',
          'events.currency',
          e.val(param('now')).as('created_at'),
          e.val(param('now')).as('updated_at'),
        ])
        .where('events.id', '=', param('event_id'))
        .where((e) => seatsFreeForHold(e, param('quantity'), audience))
        .where((e) => salesOpenAt(e, param('now'))),
    )
    .onConflict((oc) => oc.column('hold_id').doNothing())
    .returningAll(),
);
const heldHoldInsertOf = { public: heldHoldInsert('public'), waitlist: heldHoldInsert('waitlist') };

/**
 * Inserts a HELD hold at the event's current price if no hold has its id and the event exists, is on
 * sale at `now` and has the seats free for `audience` (`seatsFreeForHold`); the new hold, or
 * undefined. The seats are taken after it (holds first, then events: the one lock order), by a
 * conditional update that has the last word.
 */
export async function insertHeldHold(db: Db, hold: NewHold, audience: HoldAudience = 'public'): Promise<HoldRow | undefined> {
  const inserted = await heldHoldInsertOf[audience].takeFirst(db, hold);
  if (inserted) recordTransition(db, 'none', 'HELD');
  return inserted;
}

/**
 * The hold insert and the seat decrement as one statement (PostgreSQL's data-modifying WITH), for
 * `heldHoldCreation`; both carry the one seat condition of `audience` (`seatsFreeForHold`).
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

/** What creating a HELD hold did: created it, found its id taken, or was refused (no such event, sales closed, no seats). */
export type HoldCreation = { created: HoldRow } | { existing: HoldRow } | { refused: true };

/** Inserts a HELD hold and takes its seats as one atomic change, the engine's own way (chosen once, at start-up). */
export type HeldHoldCreator = (hold: NewHold, audience: HoldAudience) => Promise<HoldCreation>;

/** Thrown inside a write to roll back a hold whose seats the decrement did not find. */
class SeatsGone extends Error {}

/** PostgreSQL's one-statement path runs outside a tracked write: it sends the statement, and moves the metrics itself once it committed. */
export interface StatementWrites {
  writeStatement: ServiceStore<EventDatabase>['writeStatement'];
  /** Undefined with METRICS=off. */
  metrics: EventMetrics | undefined;
}

/**
 * Creates HELD holds, in the one lock order (holds, then events), with the sales window and the seats
 * checked by both the insert and the decrement, which has the last word at READ COMMITTED (it waits
 * for a concurrent change of the event and checks its result again).
 * - SQLite: the insert, then the decrement, in one change of the group commit (both cost a call into
 *   SQLite, no round trip).
 * - PostgreSQL: both in one statement sent alone, its own transaction: one round trip instead of four
 *   (BEGIN, insert, update, COMMIT), the costliest part of a hold there.
 * Nothing is read unless no hold was inserted: then the hold with that id, if any.
 */
export function heldHoldCreation(
  dialect: StoreDialect,
  db: Db,
  write: <T>(work: (trx: Transaction<EventDatabase>) => Promise<T>) => Promise<T>,
  statements: StatementWrites,
): HeldHoldCreator {
  if (dialect === 'postgres') {
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
  return async (hold, audience) => {
    try {
      return await write(async (trx): Promise<HoldCreation> => {
        const created = await insertHeldHold(trx, hold, audience);
        if (created) {
          // Thrown inside the write: the hold just inserted is rolled back with it.
          if (!(await takeSeatsForHold(trx, hold.event_id, hold.quantity, hold.now, audience))) throw new SeatsGone();
          return { created };
        }
        const existing = await findHold(trx, hold.hold_id);
        return existing ? { existing } : { refused: true };
      });
    } catch (error) {
      if (error instanceof SeatsGone) return { refused: true };
      throw error;
    }
  };
}

type Transition = { hold_id: string; from: HoldState; to: HoldState; now: string };

const holdTransition = prepareQuery<EventDatabase, Transition, HoldRow>((db, param) =>
  db
    .updateTable('holds')
    .set({ state: param('to'), updated_at: param('now') })
    .where('hold_id', '=', param('hold_id'))
    .where('state', '=', param('from'))
    .returningAll(),
);

/** Moves a hold from `from` to `to` in one conditional update; the changed row, or undefined if the hold was not in `from`. */
export async function transitionHold(db: Db, holdId: string, from: HoldState, to: HoldState, now: string): Promise<HoldRow | undefined> {
  const changed = await holdTransition.takeFirst(db, { hold_id: holdId, from, to, now });
  if (changed) recordTransition(db, from, to);
  return changed;
}

const heldHoldCommit = prepareQuery<EventDatabase, { hold_id: string; cutoff: string; now: string }, HoldRow>((db, param) =>
  db
    .updateTable('holds')
    .set({ state: 'COMMITTED', updated_at: param('now') })
    .where('hold_id', '=', param('hold_id'))
    .where('state', '=', 'HELD')
    .where('expires_at', '>=', param('cutoff'))
    .returningAll(),
);

/** HELD and expiring at or after `cutoff` becomes COMMITTED in one conditional update; the changed row, or undefined. */
export async function commitHeldHold(db: Db, holdId: string, cutoff: string, now: string): Promise<HoldRow | undefined> {
  const committed = await heldHoldCommit.takeFirst(db, { hold_id: holdId, cutoff, now });
  if (committed) recordTransition(db, 'HELD', 'COMMITTED');
  return committed;
}

/** HELD holds whose expiry plus grace lies before `cutoff`, marked EXPIRED; the rows that changed. */
export async function expireHeldBefore(db: Db, cutoff: string, now: string, batch: number): Promise<Array<Pick<HoldRow, 'hold_id' | 'event_id' | 'quantity'>>> {
  const expired = await db
    .updateTable('holds')
    .set({ state: 'EXPIRED', updated_at: now })
    .where('hold_id', 'in', (eb) =>
      // Holds another replica's sweep (or a release) has in hand are left to it.
      eb.selectFrom('holds').select('hold_id').where('state', '=', 'HELD').where('expires_at', '<', cutoff).orderBy('expires_at').limit(batch).forUpdate().skipLocked(),
    )
    .where('state', '=', 'HELD')
    .returning(['hold_id', 'event_id', 'quantity'])
    .execute();
  recordTransition(db, 'HELD', 'EXPIRED', expired.length);
  return expired;
}

export interface HoldFilter {
  eventId?: number;
  states?: HoldState[];
  createdBefore?: string;
}

/** A page of holds in creation order, `limit + 1` rows. */
export async function selectHoldPage(db: Db, filter: HoldFilter, limit: number, cursor: Cursor | undefined): Promise<HoldRow[]> {
  const backwards = cursor?.d === 'p';
  let query = db.selectFrom('holds').selectAll();
  if (filter.eventId !== undefined) query = query.where('event_id', '=', filter.eventId);
  if (filter.states && filter.states.length > 0) query = query.where('state', 'in', filter.states);
  if (filter.createdBefore !== undefined) query = query.where('created_at', '<=', filter.createdBefore);
  if (cursor) {
    const after = backwards ? sql.raw('<') : sql.raw('>');
    query = query.where(sql<SqlBool>`(created_at, hold_id) ${after} (${cursor.k}, ${cursor.id})`);
  }
  const direction = backwards ? 'desc' : 'asc';
  return query.orderBy('created_at', direction).orderBy('hold_id', direction).limit(limit + 1).execute();
}

