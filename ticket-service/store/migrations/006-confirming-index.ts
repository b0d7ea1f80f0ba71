import { sql, type Kysely, type Migration } from 'kysely';

/**
 * The sweeper's read of interrupted confirms (`status = 'RESERVED' AND confirming_at < cutoff`, in
 * `confirming_at` order) gets an index with both columns. With `confirming_at` alone, SQLite took the
 * (status, created_at) index instead and sorted every RESERVED ticket each round. Still partial: only
 * tickets with a confirm under way are in it. The same SQL on both engines.
 */
export const migration: Migration = { up, down };

async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('tickets_confirming').execute();
  await db.schema.createIndex('tickets_confirming').on('tickets').columns(['status', 'confirming_at']).where(sql.ref('confirming_at'), 'is not', null).execute();
}

async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('tickets_confirming').execute();
  await db.schema.createIndex('tickets_confirming').on('tickets').columns(['confirming_at']).where(sql.ref('confirming_at'), 'is not', null).execute();
}
