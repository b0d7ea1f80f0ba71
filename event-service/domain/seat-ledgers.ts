/** Seat ledgers: each event's counters beside the sums of its hold and adjustment rows, for checking DESIGN.md's invariant from outside. */
import type { operations } from '../../openapi/generated/event-service.js';
import { ValidationError } from '../../platform/errors.js';
import { decodeCursor, pageFromRows, type Page } from '../../platform/pagination.js';
import * as events from '../store/events.js';
import type { EventServiceContext } from './context.js';

type ListQuery = NonNullable<operations['listSeatLedgers']['parameters']['query']>;

export async function listSeatLedgers(context: EventServiceContext, query: ListQuery): Promise<Page<events.SeatLedgerRow>> {
  const limit = query.limit ?? 100;
  const cursor = decodeCursor(query.cursor);
  let position: events.LedgerPosition | undefined;
  if (cursor) {
    if (typeof cursor.id !== 'number' || !Number.isSafeInteger(cursor.id)) throw new ValidationError([{ pointer: 'cursor', detail: 'is not a cursor from a Link header' }]);
    position = { eventId: cursor.id, backwards: cursor.d === 'p' };
  }
  const rows = await events.selectSeatLedgerPage(context.db, query.event_id, limit, position);
  const page = pageFromRows(rows, { limit, cursor, offset: 0, position: (row) => ({ k: null, id: row.id }) });
  page.total = await events.countEvents(context.db, context.search, query.event_id === undefined ? {} : { ids: [query.event_id] });
  return page;
}
