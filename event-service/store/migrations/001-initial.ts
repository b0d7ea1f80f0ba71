import { sql, type Kysely, type Migration } from 'kysely';
import type { StoreDialect } from '../../../platform/store/service-store.js';

export const forDialect = (dialect: StoreDialect): Migration => ({ up: (db) => up(db, dialect), down });

async function up(db: Kysely<unknown>, dialect: StoreDialect): Promise<void> {
  await db.schema
    .createTable('venues')
    .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('address', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('city', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('capacity', 'integer', (c) => c.notNull().check(sql`capacity > 0`))
    .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('venues_name').on('venues').columns(['name', 'id']).execute();

  await db.schema
    .createTable('events')
    // AUTOINCREMENT: an id is never reused, even after the newest event is deleted.
    .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('event_date', 'text', (c) => c.notNull())
    .addColumn('venue', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('venue_id', 'integer', (c) => c.references('venues.id').onDelete('restrict'))
    .addColumn('total_tickets', 'integer', (c) => c.notNull().check(sql`total_tickets >= 0`))
    .addColumn('available_tickets', 'integer', (c) => c.notNull().check(sql`available_tickets >= 0`))
    .addColumn('held_tickets', 'integer', (c) => c.notNull().defaultTo(0).check(sql`held_tickets >= 0`))
    .addColumn('sold_tickets', 'integer', (c) => c.notNull().defaultTo(0).check(sql`sold_tickets >= 0`))
    .addColumn('manual_reserved_tickets', 'integer', (c) => c.notNull().defaultTo(0).check(sql`manual_reserved_tickets >= 0`))
    .addColumn('ticket_price', 'integer', (c) => c.notNull().check(sql`ticket_price >= 0`))
    .addColumn('currency', 'text', (c) => c.notNull())
    .addColumn('timezone', 'text', (c) => c.notNull().defaultTo('UTC'))
    .addColumn('image_url', 'text')
    .addColumn('sales_start', 'text')
    .addColumn('sales_end', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull().defaultTo(1))
    .execute();
  await db.schema.createIndex('events_event_date').on('events').columns(['event_date', 'id']).execute();
  await db.schema.createIndex('events_name').on('events').columns(['name', 'id']).execute();
  await db.schema.createIndex('events_created_at').on('events').columns(['created_at', 'id']).execute();
  await db.schema.createIndex('events_venue_id').on('events').columns(['venue_id', 'event_date']).execute();
  await sql`CREATE INDEX events_venue_nocase ON events (venue COLLATE NOCASE, event_date)`.execute(db);

  // Full-text search over name, description and venue (SQLite FTS5, kept in step by triggers).
  await sql`CREATE VIRTUAL TABLE events_fts USING fts5(name, description, venue, content='events', content_rowid='id', tokenize='unicode61 remove_diacritics 2')`.execute(db);
  await sql`CREATE TRIGGER events_fts_insert AFTER INSERT ON events BEGIN
    INSERT INTO events_fts(rowid, name, description, venue) VALUES (new.id, new.name, new.description, new.venue);
  END`.execute(db);
  await sql`CREATE TRIGGER events_fts_delete AFTER DELETE ON events BEGIN
    INSERT INTO events_fts(events_fts, rowid, name, description, venue) VALUES ('delete', old.id, old.name, old.description, old.venue);
  END`.execute(db);
  await sql`CREATE TRIGGER events_fts_update AFTER UPDATE OF name, description, venue ON events BEGIN
    INSERT INTO events_fts(events_fts, rowid, name, description, venue) VALUES ('delete', old.id, old.name, old.description, old.venue);
    INSERT INTO events_fts(rowid, name, description, venue) VALUES (new.id, new.name, new.description, new.venue);
  END`.execute(db);

  // Holds are not foreign-keyed to events: their tombstones outlive a deleted event.
  await db.schema
    .createTable('holds')
    .addColumn('hold_id', 'text', (c) => c.primaryKey())
    .addColumn('event_id', 'integer')
    .addColumn('quantity', 'integer', (c) => c.notNull().check(sql`quantity >= 0`))
    .addColumn('state', 'text', (c) => c.notNull().check(sql`state IN ('HELD', 'COMMITTED', 'RELEASED', 'EXPIRED')`))
    .addColumn('expires_at', 'text', (c) => c.notNull())
    .addColumn('unit_price', 'integer')
    .addColumn('currency', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('holds_state_expires').on('holds').columns(['state', 'expires_at']).execute();
  await db.schema.createIndex('holds_state_created').on('holds').columns(['state', 'created_at']).execute();
  await db.schema.createIndex('holds_event_state').on('holds').columns(['event_id', 'state']).execute();
  await db.schema.createIndex('holds_created').on('holds').columns(['created_at', 'hold_id']).execute();

  await db.schema
    .createTable('manual_adjustments')
    .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
    .addColumn('event_id', 'integer', (c) => c.notNull().references('events.id').onDelete('cascade'))
    .addColumn('delta', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('manual_adjustments_event').on('manual_adjustments').column('event_id').execute();
}

async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of ['manual_adjustments', 'holds', 'events_fts', 'events', 'venues']) {
    await sql`DROP TABLE IF EXISTS ${sql.ref(table)}`.execute(db);
  }
}
