/** Queries on holds. State changes are conditional updates on the expected state. */
import { sql, type Kysely, type SqlBool, type Transaction } from 'kysely';
import type { EventDatabase, HoldRow, HoldState } from './schema.js';
import type { Cursor } from '../../platform/pagination.js';
import { prepareQuery } from '../../platform/store/prepared.js';
import { eventChanges } from '../metrics.js';
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

export type NewHold = Pick<HoldRow, 'hold_id' | 'quantity' | 'expires_at'> & { event_id: number; now: string };

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

/** What creating a HELD hold did: created it, found its id taken, or was refused (no such event, sales closed, no seats). */
export type HoldCreation = { created: HoldRow } | { existing: HoldRow } | { refused: true };

/**
 * Inserts a HELD hold and takes its seats as one atomic change, the engine's own way (chosen once, at
 * start-up, in app.ts): `heldHoldCreationInWrite` here, or PostgreSQL's one statement
 * (holds-postgres.ts). Both keep the one lock order (holds, then events) and check the sales window
 * and the seats in the insert and again in the decrement, which has the last word at READ COMMITTED
 * (it waits for a concurrent change of the event and checks its result again). Nothing is read
 * unless no hold was inserted: then the hold with that id, if any.
 */
export type HeldHoldCreator = (hold: NewHold, audience: HoldAudience) => Promise<HoldCreation>;

/** Thrown inside a write to roll back a hold whose seats the decrement did not find. */
class SeatsGone extends Error {}

/**
 * The insert, then the decrement, in one write: on SQLite one change of the group commit (both cost a
 * call into SQLite, no round trip).
 */
export function heldHoldCreationInWrite(write: <T>(work: (trx: Transaction<EventDatabase>) => Promise<T>) => Promise<T>): HeldHoldCreator {
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

/**
 * HELD holds whose expiry plus grace lies before `cutoff`, marked EXPIRED; the rows that changed.
 *
 * Two statements: the due holds are found on (state, expires_at) and locked (on PostgreSQL, skipping
 * those another replica's sweep or a release has in hand; SQLite's one writer has them already), then
 * updated by key. One statement, `hold_id IN (SELECT …) AND state = 'HELD'`, was planned by SQLite on
 * the state index: every sweep read every HELD hold, about 11 ms each time with the bench's tens of
 * thousands of reservations, on the event loop. None due, the usual case, is now one index probe.
 */
export async function expireHeldBefore(db: Db, cutoff: string, now: string, batch: number): Promise<Array<Pick<HoldRow, 'hold_id' | 'event_id' | 'quantity'>>> {
  const due = await db
    .selectFrom('holds')
    .select('hold_id')
    .where('state', '=', 'HELD')
    .where('expires_at', '<', cutoff)
    .orderBy('expires_at')
    .limit(batch)
    .forUpdate()
    .skipLocked()
    .execute();
  if (due.length === 0) return [];
  const expired = await db
    .updateTable('holds')
    .set({ state: 'EXPIRED', updated_at: now })
    .where('hold_id', 'in', due.map((row) => row.hold_id))
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

