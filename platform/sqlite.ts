/** Embedded SQLite behind kysely: WAL, busy timeout, foreign keys, configurable durability, migrations. */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { Kysely, Migrator, SqliteDialect, type Migration, type SqliteDatabase } from 'kysely';

export interface SqliteOptions {
  path: string;
  synchronous: 'FULL' | 'EXTRA' | 'NORMAL';
}

export function openSqlite({ path, synchronous }: SqliteOptions): Database.Database {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('busy_timeout = 5000');
  db.pragma('foreign_keys = ON');
  db.pragma(`synchronous = ${synchronous}`);
  return db;
}

/**
 * kysely prepares every query anew; this hands its SqliteDialect a database whose `prepare` reuses
 * statements by SQL text (bounded, least recently used first out), which saves most of SQLite's
 * per-query parse and plan work on the hot paths.
 */
export function statementCachingDatabase(database: Database.Database, capacity = 500): SqliteDatabase {
  const cache = new Map<string, Database.Statement>();
  return {
    close: () => database.close(),
    prepare: (sql: string) => {
      let statement = cache.get(sql);
      if (statement) {
        cache.delete(sql);
      } else {
        statement = database.prepare(sql);
        if (cache.size >= capacity) {
          const oldest = cache.keys().next().value;
          if (oldest !== undefined) cache.delete(oldest);
        }
      }
      cache.set(sql, statement);
      return statement;
    },
  };
}

export function createKysely<DB>(database: Database.Database): Kysely<DB> {
  return new Kysely<DB>({ dialect: new SqliteDialect({ database: statementCachingDatabase(database) }) });
}

/** Brings the schema up to date with kysely's Migrator; migrations are modules imported by the service. */
export async function migrateToLatest<DB>(db: Kysely<DB>, migrations: Record<string, Migration>): Promise<string[]> {
  // Migrations see the schema as it is being built, not the service's row types.
  const migrator = new Migrator({ db: db as unknown as Kysely<unknown>, provider: { getMigrations: async () => migrations } });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error instanceof Error ? error : new Error(String(error));
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

/** True when the database answers a trivial query. */
export function databaseReachable(database: Database.Database): boolean {
  try {
    database.prepare('SELECT 1').get();
    return true;
  } catch {
    return false;
  }
}
