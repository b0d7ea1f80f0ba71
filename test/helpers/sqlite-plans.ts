/**
 * Plan checks for the queries a service runs over and over in the background: each store function
 * runs on a migrated SQLite database while its statements are recorded, and SQLite's
 * `EXPLAIN QUERY PLAN` of each, with the values it ran with, must not read a table that grows with
 * sales whole, nor every row in one state of it, nor sort the rows it matched.
 */
import Database from 'better-sqlite3';
import { Kysely, SqliteDialect, type Migration, type SqliteDatabase } from 'kysely';
import type { Test } from 'tap';
import { WithoutRowLocks } from '../../platform/store/sqlite/row-locks.js';
import { migrateToLatest } from '../../platform/store/sqlite/store.js';

export type Recorded = { sql: string; values: unknown[] };

/** A kysely SQLite database over `database` that records every statement it runs, with its values. */
function recordingDatabase(database: Database.Database, recorded: Recorded[]): SqliteDatabase {
  return {
    close: () => database.close(),
    prepare: (sql: string) => {
      const statement = database.prepare(sql);
      const record = (values: unknown[]) => recorded.push({ sql, values });
      return {
        reader: statement.reader,
        all: (values: readonly unknown[]) => (record([...values]), statement.all(...values)),
        run: (values: readonly unknown[]) => (record([...values]), statement.run(...values)),
        iterate: (values: readonly unknown[]) => (record([...values]), statement.iterate(...values)),
      };
    },
  };
}

/**
 * A migrated in-memory database (`database`, to run plans on), a kysely handle on it as the service
 * has one (row locks left out, as on SQLite), and the statements it has run since `recorded` was emptied.
 */
export async function recordedStore<DB>(t: Test, migrations: Record<string, Migration>): Promise<{ database: Database.Database; db: Kysely<DB>; recorded: Recorded[] }> {
  const database = new Database(':memory:');
  const recorded: Recorded[] = [];
  const db = new Kysely<DB>({ dialect: new SqliteDialect({ database: recordingDatabase(database, recorded) }), plugins: [new WithoutRowLocks()] });
  t.teardown(() => db.destroy());
  await migrateToLatest(db, migrations);
  return { database, db, recorded };
}

/**
 * What is wrong with a statement's plan: the lines that scan a growing table (other than through a
 * partial index, which holds only the rows the query is after); that search one only by its state or
 * status (every row in that state: every live reservation, say); or that sort rows (all that match,
 * before the limit applies). Sorting only the last term of the ORDER BY is allowed: rows come in the
 * index's order and only those that tie on it (one `created_at`) are sorted by their id, so the scan
 * still stops at the limit.
 */
export function planProblems(database: Database.Database, { sql, values }: Recorded, growing: readonly string[]): string[] {
  const partial = (database.prepare(`SELECT name FROM sqlite_master WHERE type = 'index' AND sql LIKE '% WHERE %'`).all() as Array<{ name: string }>).map((row) => row.name);
  const plan = database.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...values) as Array<{ detail: string }>;
  const details = plan.map((row) => row.detail);
  const wholeScan = (detail: string) => growing.some((table) => new RegExp(`^SCAN ${table}( |$)`).test(detail)) && !partial.some((index) => detail.endsWith(` INDEX ${index}`));
  const byStateAlone = (detail: string) => growing.some((table) => new RegExp(`^SEARCH ${table} USING (COVERING )?INDEX \\S+ \\((state|status)=\\?\\)$`).test(detail));
  const problems = details.filter((detail) => wholeScan(detail) || byStateAlone(detail) || (detail.startsWith('USE TEMP B-TREE') && !detail.startsWith('USE TEMP B-TREE FOR LAST TERM OF ORDER BY')));
  return problems.map((problem) => `${problem} (plan: ${details.join(' | ')})`);
}
