/** Queries on venues. */
import type { Insertable, Kysely, Updateable } from 'kysely';
import type { EventDatabase, VenueRow, VenueTable } from './schema.js';

type Db = Kysely<EventDatabase>;

export async function insertVenue(db: Db, row: Insertable<VenueTable>): Promise<VenueRow> {
  return db.insertInto('venues').values(row).returningAll().executeTakeFirstOrThrow();
}

export async function findVenue(db: Db, id: number): Promise<VenueRow | undefined> {
  return db.selectFrom('venues').selectAll().where('id', '=', id).executeTakeFirst();
}

/** The venue, its row locked against changes and deletion until the change that reads it commits. */
export async function findVenueForShare(db: Db, id: number): Promise<VenueRow | undefined> {
  return db.selectFrom('venues').selectAll().where('id', '=', id).forShare().executeTakeFirst();
}

/** Locks the venue row for a change of its own; false when there is no such venue. */
export async function lockVenue(db: Db, id: number): Promise<boolean> {
  return (await db.selectFrom('venues').select('id').where('id', '=', id).forUpdate().executeTakeFirst()) !== undefined;
}

export async function updateVenueRow(db: Db, id: number, changes: Updateable<VenueTable>): Promise<VenueRow | undefined> {
  return db.updateTable('venues').set(changes).where('id', '=', id).returningAll().executeTakeFirst();
}

/** Deletes the venue only if no event links to it; false when nothing was deleted. */
export async function deleteUnlinkedVenue(db: Db, id: number): Promise<boolean> {
  const result = await db
    .deleteFrom('venues')
    .where('id', '=', id)
    .where(({ not, exists, selectFrom }) => not(exists(selectFrom('events').select('events.id').where('events.venue_id', '=', id))))
    .executeTakeFirst();
  return result.numDeletedRows > 0n;
}

export async function countLinkedEvents(db: Db, venueId: number): Promise<number> {
  const row = await db
    .selectFrom('events')
    .select((eb) => eb.fn.countAll<number>().as('count'))
    .where('venue_id', '=', venueId)
    .executeTakeFirstOrThrow();
  return Number(row.count);
}

export async function selectVenuePage(db: Db, limit: number, offset: number): Promise<{ rows: VenueRow[]; total: number }> {
  const rows = await db.selectFrom('venues').selectAll().orderBy('name').orderBy('id').limit(limit + 1).offset(offset).execute();
  const total = await db.selectFrom('venues').select((eb) => eb.fn.countAll<number>().as('count')).executeTakeFirstOrThrow();
  return { rows, total: Number(total.count) };
}
