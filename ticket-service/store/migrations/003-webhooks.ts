/** Webhook subscriptions, the transactional outbox of ticket changes, and one delivery per (event, subscription). */
import { sql, type ColumnDefinitionBuilder, type Kysely, type Migration } from 'kysely';
import type { StoreDialect } from '../../../platform/store/service-store.js';

export const forDialect = (dialect: StoreDialect): Migration => ({ up: (db) => up(db, dialect), down });

const neverReusedId = (dialect: StoreDialect) => (c: ColumnDefinitionBuilder) =>
  dialect === 'postgres' ? c.primaryKey().generatedByDefaultAsIdentity() : c.primaryKey().autoIncrement();

async function up(db: Kysely<unknown>, dialect: StoreDialect): Promise<void> {
  await db.schema
    .createTable('webhook_subscriptions')
    .addColumn('id', 'integer', neverReusedId(dialect))
    .addColumn('url', 'text', (c) => c.notNull())
    .addColumn('events', 'text', (c) => c.notNull())
    .addColumn('description', 'text')
    .addColumn('enabled', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('disabled_reason', 'text')
    .addColumn('secret', 'text', (c) => c.notNull())
    .addColumn('previous_secret', 'text')
    .addColumn('previous_secret_until', 'text')
    .addColumn('expires_at', 'text')
    .addColumn('failing_since', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('webhook_subscriptions_expires').on('webhook_subscriptions').column('expires_at').where(sql.ref('expires_at'), 'is not', null).execute();

  await db.schema
    .createTable('webhook_events')
    .addColumn('id', 'integer', neverReusedId(dialect))
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('message_id', 'text', (c) => c.notNull())
    .addColumn('ticket_id', 'integer')
    .addColumn('payload', 'text', (c) => c.notNull())
    .addColumn('fanned_out', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
  // Only the rows still to fan out are indexed: the dispatcher's poll stays cheap however many events are kept.
  await db.schema.createIndex('webhook_events_unsent').on('webhook_events').column('id').where(sql.ref('fanned_out'), '=', 0).execute();
  await db.schema.createIndex('webhook_events_created').on('webhook_events').column('created_at').execute();

  await db.schema
    .createTable('webhook_deliveries')
    .addColumn('id', 'integer', neverReusedId(dialect))
    .addColumn('event_id', 'integer', (c) => c.notNull())
    .addColumn('subscription_id', 'integer', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status IN ('pending', 'delivered', 'failed')`))
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('next_attempt_at', 'text', (c) => c.notNull())
    .addColumn('lease_until', 'text')
    .addColumn('retry_until', 'text', (c) => c.notNull())
    .addColumn('first_attempt_at', 'text')
    .addColumn('last_attempt_at', 'text')
    .addColumn('last_status_code', 'integer')
    .addColumn('last_error', 'text')
    .addColumn('response_excerpt', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    // One delivery per (event, subscription), whichever replica fans out.
    .addUniqueConstraint('webhook_deliveries_event_subscription', ['event_id', 'subscription_id'])
    .execute();
  await db.schema.createIndex('webhook_deliveries_due').on('webhook_deliveries').columns(['status', 'next_attempt_at']).execute();
  await db.schema.createIndex('webhook_deliveries_log').on('webhook_deliveries').columns(['subscription_id', 'status', 'id']).execute();
  await db.schema.createIndex('webhook_deliveries_updated').on('webhook_deliveries').columns(['status', 'updated_at']).execute();
}

async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of ['webhook_deliveries', 'webhook_events', 'webhook_subscriptions']) await sql`DROP TABLE IF EXISTS ${sql.ref(table)}`.execute(db);
}
