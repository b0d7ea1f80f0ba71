import { sql, type ColumnDefinitionBuilder, type Kysely, type Migration } from 'kysely';
import type { StoreDialect } from '../../../platform/store/service-store.js';

export const forDialect = (dialect: StoreDialect): Migration => ({ up: (db) => up(db, dialect), down: (db) => down(db, dialect) });

/**
 * Where the engines must differ. Ids: SQLite's AUTOINCREMENT and PostgreSQL's identity columns both
 * never reuse an id, even after the newest row is deleted; on PostgreSQL ids and money are bigint
 * (the API allows ids up to 2^53 − 1 and prices up to 10^11 minor units; SQLite's integer is 64-bit).
 */
function columnTypes(dialect: StoreDialect) {
  const postgres = dialect === 'postgres';
  return {
    id: postgres ? ('bigint' as const) : ('integer' as const),
    money: postgres ? ('bigint' as const) : ('integer' as const),
    primaryId: (c: ColumnDefinitionBuilder) => (postgres ? c.primaryKey().generatedByDefaultAsIdentity() : c.primaryKey().autoIncrement()),
  };
}

async function up(db: Kysely<unknown>, dialect: StoreDialect): Promise<void> {
  const type = columnTypes(dialect);
  await db.schema
    .createTable('venues')
    .addColumn('id', type.id, type.primaryId)
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
    .addColumn('id', type.id, type.primaryId)
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('event_date', 'text', (c) => c.notNull())
    .addColumn('venue', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('venue_id', type.id, (c) => c.references('venues.id').onDelete('restrict'))
    .addColumn('total_tickets', 'integer', (c) => c.notNull().check(sql`total_tickets >= 0`))
    .addColumn('available_tickets', 'integer', (c) => c.notNull().check(sql`available_tickets >= 0`))
    .addColumn('held_tickets', 'integer', (c) => c.notNull().defaultTo(0).check(sql`held_tickets >= 0`))
    .addColumn('sold_tickets', 'integer', (c) => c.notNull().defaultTo(0).check(sql`sold_tickets >= 0`))
    .addColumn('manual_reserved_tickets', 'integer', (c) => c.notNull().defaultTo(0).check(sql`manual_reserved_tickets >= 0`))
    .addColumn('ticket_price', type.money, (c) => c.notNull().check(sql`ticket_price >= 0`))
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
  if (dialect === 'sqlite') {
    // Replaced by the lower(venue) index of 002 (one form both engines use); kept so 001 stays what it was.
    await sql`CREATE INDEX events_venue_nocase ON events (venue COLLATE NOCASE, event_date)`.execute(db);
    await createFts5Search(db);
  } else {
    await createTsvectorSearch(db);
  }

  // Holds are not foreign-keyed to events: their tombstones outlive a deleted event.
  await db.schema
    .createTable('holds')
    .addColumn('hold_id', 'text', (c) => c.primaryKey())
    .addColumn('event_id', type.id)
    .addColumn('quantity', 'integer', (c) => c.notNull().check(sql`quantity >= 0`))
    .addColumn('state', 'text', (c) => c.notNull().check(sql`state IN ('HELD', 'COMMITTED', 'RELEASED', 'EXPIRED')`))
    .addColumn('expires_at', 'text', (c) => c.notNull())
    .addColumn('unit_price', type.money)
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
    .addColumn('id', type.id, type.primaryId)
    .addColumn('event_id', type.id, (c) => c.notNull().references('events.id').onDelete('cascade'))
    .addColumn('delta', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('manual_adjustments_event').on('manual_adjustments').column('event_id').execute();
}

/** Full-text search over name, description and venue (SQLite FTS5, kept in step by triggers). */
async function createFts5Search(db: Kysely<unknown>): Promise<void> {
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
}

/**
 * The same search on PostgreSQL (store/search.ts): a GIN index over the words of name, description
 * and venue (stored per event in `event_search`), folded as FTS5's `unicode61 remove_diacritics 2` folds them. Words are runs of letters
 * and digits (PostgreSQL's own text-search parser would keep `node.js`, `AC/DC` or `1.5` whole), in
 * lower case, and Latin letters lose their diacritics (é → e, ǖ → u) by decomposition, as in FTS5:
 * letters without a decomposition (ø, ł, ß) and other scripts keep theirs. No extension is needed
 * (the `unaccent` extension would also fold ø, ł and ß, which FTS5 does not). Needs a UTF8 database
 * (`normalize`) whose LC_CTYPE knows Unicode (C.UTF-8, en_US.UTF-8, …: letters beyond ASCII are
 * `[:alnum:]`), as PostgreSQL's own packages set up.
 */
async function createTsvectorSearch(db: Kysely<unknown>): Promise<void> {
  await sql`CREATE FUNCTION event_search_words(text) RETURNS text[] LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT array_remove(regexp_split_to_array(
      lower(normalize(regexp_replace(normalize($1, NFD), '(?<=[A-Za-z])[\u0300-\u036f]+', '', 'g'), NFC)),
      '[^[:alnum:]]+'), '') $$`.execute(db);
  await sql`CREATE FUNCTION event_search_document(name text, description text, venue text) RETURNS tsvector LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT array_to_tsvector(event_search_words(name || ' ' || description || ' ' || venue)) $$`.execute(db);
  // Every word as a prefix, all required; NULL (matching nothing) when the text has no words.
  await sql`CREATE FUNCTION event_search_query(text) RETURNS tsquery LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT string_agg(quote_literal(word) || ':*', ' & ')::tsquery FROM unnest(event_search_words($1)) AS word $$`.execute(db);
  // The documents live in a table of their own, kept in step by a trigger as FTS5's table is: a query
  // then reads stored tsvectors through the GIN index instead of folding each candidate event's text
  // again (an expression index made every search cost tens of milliseconds on 100,000 events), and
  // `SELECT *` on events carries no search column.
  await sql`CREATE TABLE event_search (
    event_id bigint PRIMARY KEY REFERENCES events (id) ON DELETE CASCADE,
    document tsvector NOT NULL
  )`.execute(db);
  await sql`CREATE INDEX event_search_document_index ON event_search USING gin (document)`.execute(db);
  await sql`CREATE FUNCTION event_search_sync() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO event_search (event_id, document) VALUES (NEW.id, event_search_document(NEW.name, NEW.description, NEW.venue))
        ON CONFLICT (event_id) DO UPDATE SET document = EXCLUDED.document;
      RETURN NULL;
    END $$`.execute(db);
  await sql`CREATE TRIGGER events_search_sync AFTER INSERT OR UPDATE OF name, description, venue ON events
    FOR EACH ROW EXECUTE FUNCTION event_search_sync()`.execute(db);
}

async function down(db: Kysely<unknown>, dialect: StoreDialect): Promise<void> {
  for (const table of ['manual_adjustments', 'holds', 'events_fts', 'event_search', 'events', 'venues']) {
    await sql`DROP TABLE IF EXISTS ${sql.ref(table)}`.execute(db);
  }
  if (dialect === 'postgres') {
    for (const fn of ['event_search_sync', 'event_search_query', 'event_search_document', 'event_search_words']) await sql`DROP FUNCTION IF EXISTS ${sql.ref(fn)}`.execute(db);
  }
}
