/** Embedded SQLite behind kysely (the default store): WAL, busy timeout, foreign keys, configurable durability, migrations. */
import { mkdirSync, realpathSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { Kysely, Migrator, SqliteDialect, type Migration, type SqliteDatabase } from 'kysely';
import type { ServiceStore, StoreInstruments } from '../service-store.js';
import { WalCheckpointer } from './checkpointer.js';
import { GroupCommitter } from './group-commit.js';
import { WalSync } from './wal-sync.js';
import { WithoutRowLocks } from './row-locks.js';

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
  return new Kysely<DB>({ dialect: new SqliteDialect({ database: statementCachingDatabase(database) }), plugins: [new WithoutRowLocks()] });
}

/** Brings the schema up to date with kysely's Migrator; migrations are modules imported by the service. */
export async function migrateToLatest<DB>(db: Kysely<DB>, migrations: Record<string, Migration>): Promise<string[]> {
  // Migrations see the schema as it is being built, not the service's row types.
  const migrator = new Migrator({ db: db as unknown as Kysely<unknown>, provider: { getMigrations: async () => migrations } });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error instanceof Error ? error : new Error(String(error));
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

/** A service's SQLite database: the store, and the connection under it (for tests and tools). */
export interface SqliteStore<DB> extends ServiceStore<DB> {
  database: Database.Database;
}

/**
 * Opens (creating it if need be) and migrates a service's database. At `synchronous=FULL` on a file,
 * the connection runs at NORMAL and each group commit's WAL is flushed off the event loop before its
 * changes are answered (platform/store/sqlite/wal-sync.ts): what is answered is on disk, as at FULL.
 */
export async function openSqliteStore<DB>(
  options: SqliteOptions & { migrations: Record<string, Migration>; onFatal?: (error: unknown) => void; onCheckpointError?: (error: Error) => void; instruments?: StoreInstruments },
): Promise<SqliteStore<DB> & { migrated: string[] }> {
  const flushOffThread = options.synchronous === 'FULL' && options.path !== ':memory:';
  const database = openSqlite({ path: options.path, synchronous: flushOffThread ? 'NORMAL' : options.synchronous });
  const db = createKysely<DB>(database);
  let migrated: string[];
  try {
    migrated = await migrateToLatest(db, options.migrations);
  } catch (error) {
    await db.destroy();
    throw error;
  }
  // SQLite names the WAL after the real path of the database file (symbolic links resolved).
  const wal = flushOffThread ? new WalSync(`${realpathSync(resolve(options.path))}-wal`) : undefined;
  try {
    // The migrations (and anything before the first change) reach the disk too.
    await wal?.flush();
  } catch (error) {
    await db.destroy();
    throw error;
  }
  // A file's WAL is copied into it by a worker thread, not inside the service's commits.
  const checkpointer = options.path === ':memory:' ? undefined : new WalCheckpointer(database, options.path, options.onCheckpointError ?? (() => undefined));
  const instruments = options.instruments?.sqlite();
  const committer = new GroupCommitter(db, {
    ...(wal ? { durable: () => wal.flush(), ...(options.onFatal ? { onFatal: options.onFatal } : {}) } : {}),
    ...(instruments ? { instruments } : {}),
  });
  return {
    dialect: 'sqlite',
    database,
    db,
    migrated,
    write: (work) => committer.run(work),
    writeStatement: (statement) => committer.run((trx) => trx.executeQuery(statement)),
    settled: () => committer.settled(),
    reachable: async () => databaseReachable(database),
    close: async () => {
      // Changes asked for from now on are refused; those under way finish and are flushed.
      await committer.drain();
      await wal?.close();
      await checkpointer?.close();
      await db.destroy();
    },
  };
}

/** True when the database answers a trivial query. */
function databaseReachable(database: Database.Database): boolean {
  try {
    database.prepare('SELECT 1').get();
    return true;
  } catch {
    return false;
  }
}
