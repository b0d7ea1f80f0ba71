/**
 * The hold state machine of DESIGN.md: HELD → COMMITTED, HELD/COMMITTED → RELEASED, HELD → EXPIRED.
 * Released and expired holds stay as tombstones so that a late or retried create is refused.
 */
import type { components, operations } from '../../openapi/generated/event-service.js';
import { ConflictError, NotFoundError, ValidationError, type FieldError } from '../../platform/errors.js';
import { decodeCursor, pageFromRows, type Page } from '../../platform/pagination.js';
import { nowIso, parseDateField, toApiDate } from '../../platform/time.js';
import * as events from '../store/events.js';
import * as holds from '../store/holds.js';
import type { HoldRow, HoldState } from '../store/schema.js';
import type { EventServiceContext } from './context.js';
import { count, were } from '../../platform/words.js';
import { applyWaitlistGate, type WaitlistGateUpdate } from './waitlist-gate.js';

type HoldCreate = components['schemas']['HoldCreate'];
type ListQuery = NonNullable<operations['listHolds']['parameters']['query']>;

function stateConflict(hold: HoldRow, action: string): ConflictError {
  return new ConflictError('hold-state', `Hold ${hold.hold_id} is ${hold.state}; it cannot be ${action}.`, { hold_state: hold.state });
}

/** What a create with an id that already exists answers: the same hold for the same request, else 409. */
function existingHoldAnswer(existing: HoldRow, input: HoldCreate): { hold: HoldRow; created: boolean } {
  const sameRequest = existing.event_id === input.event_id && existing.quantity === input.quantity;
  if (!sameRequest) {
    throw new ConflictError('hold-state', `Hold ${input.hold_id} already exists for ${existing.quantity} seats of event ${existing.event_id ?? 'none'}.`, { hold_state: existing.state });
  }
  if (existing.state === 'HELD' || existing.state === 'COMMITTED') return { hold: existing, created: false };
  throw stateConflict(existing, 'created again');
}

/**
 * Takes the seats for a new hold in one atomic change (the store's own way per engine:
 * store/holds.ts `HeldHoldCreator`), or returns the existing hold when the same request is retried.
 * Only when no hold was created is anything read, to say why. A public hold takes only seats outside
 * the waiting-list gate; an offer (`waitlist: true`) may take any available seat.
 */
export async function createHold(context: EventServiceContext, input: HoldCreate): Promise<{ hold: HoldRow; created: boolean }> {
  const errors: FieldError[] = [];
  const expiresAt = parseDateField(input.expires_at, '#/expires_at', errors);
  if (errors.length > 0 || expiresAt === undefined) throw new ValidationError(errors);
  const audience: events.HoldAudience = input.waitlist === true ? 'waitlist' : 'public';
  const now = nowIso();
  const outcome = await context.createHeldHold({ hold_id: input.hold_id, event_id: input.event_id, quantity: input.quantity, expires_at: expiresAt, now }, audience);
  if ('created' in outcome) return { hold: outcome.created, created: true };
  if ('existing' in outcome) return existingHoldAnswer(outcome.existing, input);
  throw await noSeatsReason(context.db, input, now);
}

/**
 * Why a hold could not take seats: no such event, sales closed, or not enough seats. For a public
 * hold the seats behind the waiting-list gate are not counted: the public sees the event sold out.
 */
async function noSeatsReason(trx: EventServiceContext['db'], input: HoldCreate, now: string): Promise<Error> {
  const event = await events.findEvent(trx, input.event_id);
  if (!event) return new NotFoundError(`Event ${input.event_id} does not exist.`);
  if ((event.sales_start && now < event.sales_start) || (event.sales_end && now > event.sales_end)) {
    return new ConflictError('sales-closed', `Sales for event ${event.id} are open from ${toApiDate(event.sales_start) ?? 'now'} to ${toApiDate(event.sales_end) ?? 'the event'}.`);
  }
  const left = input.waitlist === true ? event.available_tickets : Math.max(0, event.available_tickets - event.waitlist_reserved_tickets);
  return new ConflictError('sold-out', `Event ${event.id} has ${count(left, 'seat')} left; ${were(input.quantity)} asked for.`, { available_tickets: left });
}

export async function getHold(context: EventServiceContext, holdId: string): Promise<HoldRow> {
  const hold = await holds.findHold(context.db, holdId);
  if (!hold) throw new NotFoundError(`Hold ${holdId} does not exist.`);
  return hold;
}

const graceCutoff = (context: EventServiceContext, at: Date): string => new Date(at.getTime() - context.config.HOLD_GRACE_SECONDS * 1000).toISOString();

/**
 * Seats that must move with a hold's change. If the counter refuses (its condition matched no row),
 * the counters and the hold rows disagree: the whole change is undone (an error inside the write)
 * rather than leaving a count that is silently wrong.
 */
function seatsMoved(moved: boolean, what: string): void {
  if (!moved) throw new Error(`the seat counters of ${what} disagree with its holds; nothing was changed`);
}

/**
 * HELD and not lapsed becomes COMMITTED (one conditional update); COMMITTED answers the same again. A
 * lapsed hold is expired on the spot. Only the rows each update changed decide what follows, so a
 * hold another replica released a moment ago is refused, never sold.
 */
export async function commitHold(context: EventServiceContext, holdId: string): Promise<HoldRow> {
  const outcome = await context.write(async (trx) => {
    const now = new Date();
    const at = now.toISOString();
    const cutoff = graceCutoff(context, now);
    const committed = await holds.commitHeldHold(trx, holdId, cutoff, at);
    if (committed) {
      seatsMoved(await events.moveHeldToSold(trx, committed.event_id as number, committed.quantity, at), `event ${committed.event_id}`);
      return { hold: committed };
    }
    const hold = await holds.findHold(trx, holdId);
    if (!hold) throw new NotFoundError(`Hold ${holdId} does not exist.`);
    if (hold.state === 'COMMITTED') return { hold };
    if (hold.state === 'HELD' && hold.expires_at < cutoff && (await expireOne(trx, hold, at))) {
      return { conflict: stateConflict({ ...hold, state: 'EXPIRED' }, 'committed') };
    }
    return { conflict: stateConflict(hold, 'committed') };
  });
  if ('conflict' in outcome) throw outcome.conflict;
  return outcome.hold;
}

/** HELD becomes EXPIRED and its seats return; false if the hold was no longer HELD. */
async function expireOne(trx: EventServiceContext['db'], hold: HoldRow, now: string): Promise<boolean> {
  const expired = await holds.transitionHold(trx, hold.hold_id, 'HELD', 'EXPIRED', now);
  if (!expired) return false;
  seatsMoved(await events.returnSeats(trx, expired.event_id as number, expired.quantity, 'held_tickets', now), `event ${expired.event_id}`);
  return true;
}

/** How many tries a release makes when other replicas keep changing the hold under it. */
const RELEASE_ATTEMPTS = 3;

/**
 * HELD or COMMITTED becomes RELEASED and the seats return; released/expired is a no-op; unknown
 * leaves a tombstone. Each step is a conditional statement whose changed rows decide the next, so
 * a hold another replica released a moment ago is not released again and its seats not returned twice.
 * A waiting-list `gate` sent along is applied to the hold's event in the same transaction (a newer
 * sequence only), so the seats returned are never public while the waiting list asks for them.
 */
export async function releaseHold(context: EventServiceContext, holdId: string, gate?: WaitlistGateUpdate): Promise<HoldRow> {
  return context.write(async (trx) => {
    const now = nowIso();
    const withGate = async (hold: HoldRow): Promise<HoldRow> => {
      if (gate && hold.event_id !== null) await applyWaitlistGate(trx, hold.event_id, gate, now);
      return hold;
    };
    for (let attempt = 0; attempt < RELEASE_ATTEMPTS; attempt += 1) {
      for (const [from, counter] of [['HELD', 'held_tickets'], ['COMMITTED', 'sold_tickets']] as const) {
        const released = await holds.transitionHold(trx, holdId, from, 'RELEASED', now);
        if (!released) continue;
        if (released.event_id !== null) seatsMoved(await events.returnSeats(trx, released.event_id, released.quantity, counter, now), `event ${released.event_id}`);
        return withGate(released);
      }
      const hold = await holds.findHold(trx, holdId);
      if (hold?.state === 'RELEASED' || hold?.state === 'EXPIRED') return withGate(hold);
      if (hold) continue;
      const tombstone: HoldRow = { hold_id: holdId, event_id: null, quantity: 0, state: 'RELEASED', expires_at: now, unit_price: null, currency: null, created_at: now, updated_at: now };
      if (await holds.insertHoldIfNew(trx, tombstone)) return tombstone;
    }
    throw new Error(`hold ${holdId} kept changing under ${RELEASE_ATTEMPTS} release attempts`);
  });
}

/**
 * Expires HELD holds past `expires_at` + `HOLD_GRACE_SECONDS` and returns their seats, in batches,
 * whether or not ticket-service is still there. Returns how many holds expired.
 */
export async function expireLapsedHolds(context: EventServiceContext, now = new Date()): Promise<number> {
  let expired = 0;
  for (;;) {
    const batch = await context.write(async (trx) => {
      const at = now.toISOString();
      const rows = await holds.expireHeldBefore(trx, graceCutoff(context, now), at, 500);
      const seatsByEvent = new Map<number, number>();
      for (const row of rows) if (row.event_id !== null) seatsByEvent.set(row.event_id, (seatsByEvent.get(row.event_id) ?? 0) + row.quantity);
      // Events by id: the one lock order, so two sweeps never wait on each other in a circle.
      for (const [eventId, seats] of [...seatsByEvent].sort(([a], [b]) => a - b)) seatsMoved(await events.returnSeats(trx, eventId, seats, 'held_tickets', at), `event ${eventId}`);
      return rows.length;
    });
    expired += batch;
    if (batch < 500) return expired;
  }
}

export async function listHolds(context: EventServiceContext, query: ListQuery): Promise<Page<HoldRow>> {
  const filter: holds.HoldFilter = {};
  if (query.event_id !== undefined) filter.eventId = query.event_id;
  if (query.state !== undefined) filter.states = query.state.split(',') as HoldState[];
  if (query.older_than !== undefined) filter.createdBefore = new Date(Date.now() - query.older_than * 1000).toISOString();
  const limit = query.limit ?? 100;
  const cursor = decodeCursor(query.cursor);
  const rows = await holds.selectHoldPage(context.db, filter, limit, cursor);
  return pageFromRows(rows, { limit, cursor, offset: 0, position: (row) => ({ k: row.created_at, id: row.hold_id }) });
}
