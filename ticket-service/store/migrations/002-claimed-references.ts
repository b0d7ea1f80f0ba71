import { sql, type Kysely, type Migration } from 'kysely';

/**
 * One table of claimed references (DESIGN.md, the reconciler): whoever inserts a reference first owns
 * it, a ticket write or the reconciler's release of an orphan hold, so a late ticket write can never
 * sell a hold the reconciler released. The same SQL on both engines.
 */
export const migration: Migration = { up, down };

async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('claimed_references')
    .addColumn('reference', 'text', (c) => c.primaryKey())
    .addColumn('claimant', 'text', (c) => c.notNull().check(sql`claimant IN ('ticket', 'reconciler')`))
    .addColumn('claimed_at', 'text', (c) => c.notNull())
    .execute();
  // Every ticket written before this table existed owns its reference.
  await sql`INSERT INTO claimed_references (reference, claimant, claimed_at) SELECT reference, 'ticket', created_at FROM tickets`.execute(db);
}

async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('claimed_references').ifExists().execute();
}
