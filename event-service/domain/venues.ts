/** Venues and their capacity rules. */
import type { components, operations } from '../../openapi/generated/event-service.js';
import { ConflictError, NotFoundError } from '../../platform/errors.js';
import type { Page } from '../../platform/pagination.js';
import { nowIso } from '../../platform/time.js';
import { maxTotalTicketsAtVenue } from '../store/events.js';
import * as venues from '../store/venues.js';
import type { VenueRow } from '../store/schema.js';
import type { EventServiceContext } from './context.js';

type VenueCreate = components['schemas']['VenueCreate'];
type VenueUpdate = components['schemas']['VenueUpdate'];
type ListQuery = NonNullable<operations['listVenues']['parameters']['query']>;

export async function createVenue(context: EventServiceContext, input: VenueCreate): Promise<VenueRow> {
  const now = nowIso();
  return context.write((trx) => venues.insertVenue(trx, {
    name: input.name,
    address: input.address ?? '',
    city: input.city ?? '',
    capacity: input.capacity,
    description: input.description ?? '',
    created_at: now,
    updated_at: now,
  }));
}

export async function getVenue(context: EventServiceContext, id: number): Promise<VenueRow> {
  const row = await venues.findVenue(context.db, id);
  if (!row) throw new NotFoundError(`Venue ${id} does not exist.`);
  return row;
}

/**
 * Partial update; the capacity may not shrink below the `total_tickets` of a linked event. The
 * events are counted after the venue row is written, so an event insert that checked the venue
 * (and on PostgreSQL locked its row) is either already seen here or sees the new capacity.
 */
export async function updateVenue(context: EventServiceContext, id: number, input: VenueUpdate): Promise<VenueRow> {
  return context.write(async (trx) => {
    const changes: Parameters<typeof venues.updateVenueRow>[2] = { updated_at: nowIso() };
    if (input.name !== undefined) changes.name = input.name;
    if (input.address !== undefined) changes.address = input.address;
    if (input.city !== undefined) changes.city = input.city;
    if (input.capacity !== undefined) changes.capacity = input.capacity;
    if (input.description !== undefined) changes.description = input.description;
    const updated = await venues.updateVenueRow(trx, id, changes);
    if (!updated) throw new NotFoundError(`Venue ${id} does not exist.`);
    if (input.capacity !== undefined) {
      const largest = await maxTotalTicketsAtVenue(trx, id);
      // Thrown inside the write: the capacity change is rolled back.
      if (input.capacity < largest) {
        throw new ConflictError('capacity-exceeded', `Venue ${id} hosts an event with ${largest} tickets; its capacity cannot shrink to ${input.capacity}.`);
      }
    }
    return updated;
  });
}

/**
 * Deletes a venue no event links to; else 404 or 409 in-use. The venue row is locked first, so an
 * event insert that read it FOR SHARE a moment ago has committed, and is seen, before the delete
 * checks for linked events (on PostgreSQL the delete would otherwise miss it and fail on the key).
 */
export async function deleteVenue(context: EventServiceContext, id: number): Promise<void> {
  await context.write(async (trx) => {
    if (!(await venues.lockVenue(trx, id))) throw new NotFoundError(`Venue ${id} does not exist.`);
    if (await venues.deleteUnlinkedVenue(trx, id)) return;
    const linked = await venues.countLinkedEvents(trx, id);
    throw new ConflictError('in-use', `Venue ${id} is linked to ${linked} event(s); unlink or delete them first.`);
  });
}

export async function listVenues(context: EventServiceContext, query: ListQuery): Promise<Page<VenueRow>> {
  const limit = query.limit ?? 100;
  const offset = query.offset ?? 0;
  const { rows, total } = await venues.selectVenuePage(context.db, limit, offset);
  const page: Page<VenueRow> = { items: rows.slice(0, limit), links: {}, total };
  if (rows.length > limit) page.links.next = { offset: String(offset + limit) };
  if (offset > 0) page.links.prev = { offset: String(Math.max(0, offset - limit)) };
  return page;
}
