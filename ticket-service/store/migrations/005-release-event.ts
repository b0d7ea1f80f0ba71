import type { Kysely, Migration } from 'kysely';

/**
 * The event a queued release belongs to, so that the waiting-list gate rides on it even when nothing
 * else in the database says (a deleted ticket, an orphan hold). Empty for releases queued before;
 * the same SQL on both engines.
 */
export const migration: Migration = { up, down };

async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('release_outbox').addColumn('event_id', 'integer').execute();
}

async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('release_outbox').dropColumn('event_id').execute();
}
