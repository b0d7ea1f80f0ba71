/**
 * The waiting list (DESIGN.md "Waiting list"): its entries, and per event the gate ticket-service
 * owns (the seats the list asks for, with a sequence that only grows, and the last sequence
 * event-service acknowledged, so that a value not yet sent is found and sent again).
 */
import { sql, type ColumnDefinitionBuilder, type Kysely, type Migration } from 'kysely';
import type { StoreDialect } from '../../../platform/store/service-store.js';

export const forDialect = (dialect: StoreDialect): Migration => ({ up: (db) => up(db, dialect), down });

const neverReusedId = (dialect: StoreDialect) => (c: ColumnDefinitionBuilder) =>
  dialect === 'postgres' ? c.primaryKey().generatedByDefaultAsIdentity() : c.primaryKey().autoIncrement();

async function up(db: Kysely<unknown>, dialect: StoreDialect): Promise<void> {
  await db.schema
    .createTable('waitlist_entries')
    .addColumn('id', 'integer', neverReusedId(dialect))
    .addColumn('event_id', 'integer', (c) => c.notNull())
    .addColumn('customer_name', 'text', (c) => c.notNull())
    .addColumn('customer_email', 'text', (c) => c.notNull())
    .addColumn('quantity', 'integer', (c) => c.notNull().check(sql`quantity > 0`))
    .addColumn('status', 'text', (c) =>
      c.notNull().check(sql`status IN ('WAITING', 'OFFERING', 'OFFERED', 'CONFIRMED', 'DECLINED', 'EXPIRED', 'LEFT', 'CLOSED')`),
    )
    .addColumn('reference', 'text', (c) => c.notNull().unique())
    .addColumn('offer_reference', 'text', (c) => c.unique())
    .addColumn('ticket_id', 'integer')
    .addColumn('offer_expires_at', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  // One open entry per event and email, whatever the case: the join's insert claims it.
  await sql`CREATE UNIQUE INDEX waitlist_entries_open_email ON waitlist_entries (event_id, lower(customer_email)) WHERE status IN ('WAITING', 'OFFERING', 'OFFERED')`.execute(db);
  await db.schema.createIndex('waitlist_entries_event_status').on('waitlist_entries').columns(['event_id', 'status', 'id']).execute();
  await db.schema.createIndex('waitlist_entries_status').on('waitlist_entries').columns(['status', 'updated_at']).execute();
  await db.schema.createIndex('waitlist_entries_ticket').on('waitlist_entries').column('ticket_id').where(sql.ref('ticket_id'), 'is not', null).execute();

  await db.schema
    .createTable('waitlist_gates')
    .addColumn('event_id', 'integer', (c) => c.primaryKey())
    .addColumn('reserved', 'integer', (c) => c.notNull().check(sql`reserved >= 0`))
    .addColumn('sequence', 'integer', (c) => c.notNull())
    .addColumn('sent_sequence', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
}

async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of ['waitlist_gates', 'waitlist_entries']) await sql`DROP TABLE IF EXISTS ${sql.ref(table)}`.execute(db);
}
