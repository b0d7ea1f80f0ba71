/**
 * Seeds event-service's database, SQLite or PostgreSQL, through its own store code (the dialect's
 * migrations, then inserts in a few transactions) before the service starts: a catalogue of events of which about 1% mention "zephyr",
 * the "storm" events with a million seats each, and the small event of the sell-out race.
 */
import type Database from 'better-sqlite3';
import { sql } from 'kysely';
import { openServiceStore } from '../platform/store/open.js';
import { createKysely, migrateToLatest, openSqlite } from '../platform/store/sqlite/store.js';
import { eventMigrations } from '../event-service/store/migrations/index.js';
import { insertEvent } from '../event-service/store/events.js';
import type { EventDatabase, EventRow, NewEventRow } from '../event-service/store/schema.js';

export interface SeedPlan {
  catalogueEvents: number;
  stormEvents: number;
  stormSeats: number;
  raceSeats: number;
  /** Inserts per transaction. */
  batch: number;
  /** Page cache of the seeding connection. */
  cacheMebibytes: number;
}

/** A small catalogue with storm events whose seats never run out: the floor's and bench/ab.ts's. */
export const SMALL_CATALOGUE: SeedPlan = { catalogueEvents: 1000, stormEvents: 100, stormSeats: 1_000_000, raceSeats: 1, batch: 1000, cacheMebibytes: 64 };

export interface SeededEvents {
  catalogue: { firstId: number; lastId: number; count: number; zephyr: number };
  stormEventIds: number[];
  raceEventId: number;
  seconds: number;
}

export const SEARCH_WORD = 'zephyr';

const ADJECTIVES = ['Midnight', 'Golden', 'Electric', 'Silent', 'Crimson', 'Velvet', 'Northern', 'Urban', 'Acoustic', 'Grand', 'Neon', 'Summer', 'Winter', 'Autumn', 'Spring', 'Cosmic', 'Wild', 'Royal', 'Hidden', 'Open'];
const THEMES = ['Jazz', 'Rock', 'Opera', 'Comedy', 'Poetry', 'Cinema', 'Techno', 'Folk', 'Ballet', 'Chess', 'Robotics', 'Cooking', 'Design', 'Science', 'Startup', 'Blues', 'Gospel', 'Salsa', 'Theatre', 'Photography'];
const KINDS = ['Festival', 'Night', 'Conference', 'Showcase', 'Gala', 'Summit', 'Workshop', 'Marathon', 'Session', 'Fair'];
const CITIES = ['Springfield', 'Riverton', 'Lakeside', 'Hillcrest', 'Fairview', 'Oakdale', 'Maplewood', 'Brookfield', 'Harborview', 'Westfield'];
const PLACES = ['Convention Center', 'Arena', 'Town Hall', 'Opera House', 'Stadium', 'Club', 'Gallery', 'Park', 'Theatre', 'Warehouse'];

/** A small deterministic generator (mulberry32), so that every run seeds the same catalogue. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function word(list: readonly string[], next: () => number): string {
  return list[Math.floor(next() * list.length)] ?? '';
}

const FIRST_DATE = Date.parse('2026-01-01T00:00:00Z');
const DATE_SPAN_MS = 3 * 365 * 24 * 3600 * 1000;

function catalogueEvent(index: number, next: () => number, now: string): NewEventRow {
  const city = word(CITIES, next);
  const venue = `${city} ${word(PLACES, next)}`;
  let name = `${word(ADJECTIVES, next)} ${word(THEMES, next)} ${word(KINDS, next)} ${index + 1}`;
  let description = `A ${word(ADJECTIVES, next).toLowerCase()} evening of ${word(THEMES, next).toLowerCase()} in ${city}.`;
  // 1 in 100 mentions the search word, in the name or in the description.
  if (index % 100 === 42) {
    if (index % 200 === 42) name = `Zephyr ${name}`;
    else description = `${description} Presented by the Zephyr collective.`;
  }
  const total = 50 + Math.floor(next() * 5000);
  const eventDate = new Date(FIRST_DATE + Math.floor((next() * DATE_SPAN_MS) / 60_000) * 60_000).toISOString();
  return eventRow({ name, description, event_date: eventDate, venue, seats: total, ticket_price: 500 + Math.floor(next() * 200) * 100, now });
}

function bigEvent(name: string, seats: number, now: string): NewEventRow {
  return eventRow({ name, description: 'Load benchmark event.', event_date: '2027-06-15T19:00:00.000Z', venue: 'Bench Arena', seats, ticket_price: 10_000, now });
}

/** An event with all its seats for sale, no linked venue and no sales window. */
function eventRow(fields: { name: string; description: string; event_date: string; venue: string; seats: number; ticket_price: number; now: string }): NewEventRow {
  return {
    name: fields.name,
    description: fields.description,
    event_date: fields.event_date,
    venue: fields.venue,
    venue_id: null,
    total_tickets: fields.seats,
    available_tickets: fields.seats,
    ticket_price: fields.ticket_price,
    currency: 'USD',
    timezone: 'UTC',
    image_url: null,
    sales_start: null,
    sales_end: null,
    created_at: fields.now,
    updated_at: fields.now,
  };
}

interface SchemaObject {
  type: 'index' | 'trigger';
  name: string;
  sql: string;
}

/**
 * Bulk-load order: the events table's plain secondary indexes and the insert triggers that feed its
 * FTS table are set aside while rows go in (maintaining them row by row costs more than the rows),
 * then recreated from their own SQL and the FTS index rebuilt from the content table in one pass.
 * The file ends up as the migrations define it; only the order of the work differs.
 */
function setAsideEventIndexes(database: Database.Database): SchemaObject[] {
  const objects = database
    .prepare(
      `SELECT type, name, sql FROM sqlite_master
       WHERE tbl_name = 'events' AND sql IS NOT NULL
         AND ((type = 'index' AND sql NOT LIKE 'CREATE UNIQUE%')
           OR (type = 'trigger' AND sql LIKE '%AFTER INSERT ON events%' AND sql LIKE '%events_fts%'))`,
    )
    .all() as SchemaObject[];
  for (const object of objects) database.exec(`DROP ${object.type.toUpperCase()} "${object.name}"`);
  return objects;
}

function restoreEventIndexes(database: Database.Database, objects: SchemaObject[]): void {
  database.transaction(() => {
    for (const object of objects) database.exec(object.sql);
    if (objects.some((object) => object.type === 'trigger')) database.exec(`INSERT INTO events_fts(events_fts) VALUES ('rebuild')`);
  })();
}

/** Where the rows go: one transaction per call of `insert`. */
interface Loader {
  insert: (rows: NewEventRow[]) => Promise<Array<Pick<EventRow, 'id' | 'name' | 'description'>>>;
  /** After the last row: what the bulk load put off (indexes, statistics). */
  finish: () => Promise<void>;
  close: () => Promise<void>;
}

/** SQLite: the migrations, then `insertEvent` row by row with the indexes set aside. */
async function sqliteLoader(path: string, plan: SeedPlan): Promise<Loader> {
  // The service's own default durability; seeding commits only a few transactions anyway.
  const database = openSqlite({ path, synchronous: 'FULL' });
  // A page cache big enough for the whole seeded file (this connection only).
  database.pragma(`cache_size = -${plan.cacheMebibytes * 1024}`);
  const db = createKysely<EventDatabase>(database);
  try {
    await migrateToLatest(db, eventMigrations('sqlite'));
  } catch (error) {
    await db.destroy();
    throw error;
  }
  const setAside = setAsideEventIndexes(database);
  return {
    insert: (rows) =>
      db.transaction().execute(async (trx) => {
        const inserted: EventRow[] = [];
        for (const row of rows) inserted.push(await insertEvent(trx, row));
        return inserted;
      }),
    finish: async () => restoreEventIndexes(database, setAside),
    close: () => db.destroy(),
  };
}

/** Rows per INSERT on PostgreSQL: 15 columns each, well under its 65,535 parameters per statement. */
const POSTGRES_ROWS_PER_INSERT = 2000;

/**
 * PostgreSQL: the store as event-service opens it (its migrations under the advisory lock), then
 * multi-row inserts, and ANALYZE so the service's first queries are planned on the loaded table.
 */
async function postgresLoader(url: string): Promise<Loader> {
  const store = await openServiceStore<EventDatabase>({
    databaseUrl: url,
    urlVariable: 'EVENT_DATABASE_URL',
    sqlitePath: '',
    synchronous: 'FULL',
    migrations: eventMigrations,
    onFatal: () => undefined,
    onConnectionError: () => undefined,
  });
  return {
    insert: (rows) =>
      store.write(async (trx) => {
        const inserted: Array<Pick<EventRow, 'id' | 'name' | 'description'>> = [];
        for (let start = 0; start < rows.length; start += POSTGRES_ROWS_PER_INSERT) {
          const chunk = rows.slice(start, start + POSTGRES_ROWS_PER_INSERT);
          inserted.push(...(await trx.insertInto('events').values(chunk).returning(['id', 'name', 'description']).execute()));
        }
        return inserted;
      }),
    finish: async () => {
      await sql`ANALYZE events`.execute(store.db);
    },
    close: () => store.close(),
  };
}

export type SeedTarget = { store: 'sqlite'; path: string } | { store: 'postgres'; url: string };

export async function seedEventDatabase(target: SeedTarget, plan: SeedPlan, signal?: AbortSignal): Promise<SeededEvents> {
  const started = performance.now();
  const loader = target.store === 'sqlite' ? await sqliteLoader(target.path, plan) : await postgresLoader(target.url);
  try {
    const next = random(20_250_615);
    const now = new Date().toISOString();
    let firstId = Number.POSITIVE_INFINITY;
    let lastId = 0;
    let zephyr = 0;
    for (let start = 0; start < plan.catalogueEvents; start += plan.batch) {
      signal?.throwIfAborted();
      const end = Math.min(plan.catalogueEvents, start + plan.batch);
      const rows: NewEventRow[] = [];
      for (let index = start; index < end; index += 1) rows.push(catalogueEvent(index, next, now));
      for (const row of await loader.insert(rows)) {
        firstId = Math.min(firstId, row.id);
        lastId = Math.max(lastId, row.id);
        if (`${row.name} ${row.description}`.toLowerCase().includes(SEARCH_WORD)) zephyr += 1;
      }
    }
    if (lastId - firstId + 1 !== plan.catalogueEvents) throw new Error(`catalogue ids are not contiguous (${firstId}..${lastId})`);
    signal?.throwIfAborted();
    const storm = Array.from({ length: plan.stormEvents }, (_, index) => bigEvent(`Storm Stadium Night ${index + 1}`, plan.stormSeats, now));
    const inserted = await loader.insert([...storm, bigEvent('Sell-out Race', plan.raceSeats, now)]);
    const raceEventId = inserted.at(-1)?.id;
    if (raceEventId === undefined) throw new Error('the storm and race events were not inserted');
    await loader.finish();
    return {
      catalogue: { firstId, lastId, count: plan.catalogueEvents, zephyr },
      stormEventIds: inserted.slice(0, -1).map((row) => row.id),
      raceEventId,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    await loader.close();
  }
}
