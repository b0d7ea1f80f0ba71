import { sql, type ColumnDefinitionBuilder, type Kysely, type Migration } from 'kysely';
import type { StoreDialect } from '../../../platform/store/service-store.js';

export const forDialect = (dialect: StoreDialect): Migration => ({ up: (db) => up(db, dialect), down });

/** An id that is never reused: AUTOINCREMENT on SQLite, an identity column on PostgreSQL. */
const neverReusedId = (dialect: StoreDialect) => (c: ColumnDefinitionBuilder) =>
  dialect === 'postgres' ? c.primaryKey().generatedByDefaultAsIdentity() : c.primaryKey().autoIncrement();

async function up(db: Kysely<unknown>, dialect: StoreDialect): Promise<void> {
  // Money goes up to 10^11 minor units: SQLite's integer is 64-bit, PostgreSQL's is not.
  const money = dialect === 'postgres' ? 'bigint' : 'integer';
  await db.schema
    .createTable('tickets')
    .addColumn('id', 'integer', neverReusedId(dialect))
    .addColumn('event_id', 'integer', (c) => c.notNull())
    .addColumn('customer_name', 'text', (c) => c.notNull())
    .addColumn('customer_email', 'text', (c) => c.notNull())
    .addColumn('quantity', 'integer', (c) => c.notNull().check(sql`quantity > 0`))
    .addColumn('unit_price', money)
    .addColumn('total_price', money)
    .addColumn('currency', 'text')
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status IN ('PENDING', 'RESERVED', 'CONFIRMED', 'CANCELLED', 'ABANDONED')`))
    .addColumn('reference', 'text', (c) => c.notNull().unique())
    .addColumn('expires_at', 'text')
    .addColumn('cancellation_reason', 'text')
    .addColumn('payment_reference', 'text')
    .addColumn('confirming_at', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('tickets_status_expires').on('tickets').columns(['status', 'expires_at']).execute();
  await db.schema.createIndex('tickets_status_created').on('tickets').columns(['status', 'created_at']).execute();
  await db.schema.createIndex('tickets_event_status').on('tickets').columns(['event_id', 'status', 'id']).execute();
  await db.schema.createIndex('tickets_confirming').on('tickets').columns(['confirming_at']).where(sql.ref('confirming_at'), 'is not', null).execute();

  await db.schema
    .createTable('idempotency_keys')
    .addColumn('key', 'text', (c) => c.primaryKey())
    .addColumn('body_hash', 'text', (c) => c.notNull())
    .addColumn('ticket_id', 'integer')
    .addColumn('status_code', 'integer')
    .addColumn('response_body', 'text')
    .addColumn('locked_until', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('idempotency_keys_expires').on('idempotency_keys').column('expires_at').execute();

  await db.schema
    .createTable('release_outbox')
    .addColumn('id', 'integer', neverReusedId(dialect))
    .addColumn('hold_id', 'text', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('next_attempt_at', 'text', (c) => c.notNull())
    .addColumn('last_error', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('release_outbox_due').on('release_outbox').column('next_attempt_at').execute();
}

async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of ['release_outbox', 'idempotency_keys', 'tickets']) await sql`DROP TABLE IF EXISTS ${sql.ref(table)}`.execute(db);
}
