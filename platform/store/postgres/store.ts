/**
 * A service's database on PostgreSQL (`EVENT_DATABASE_URL` / `TICKET_DATABASE_URL`), through kysely's
 * PostgresDialect over a `pg` pool. PostgreSQL batches concurrent commits itself, so each change is its
 * own transaction (no group committer), and a commit is durable when it returns: every connection sets
 * `synchronous_commit = on` rather than trusting the server's setting. Conflicts PostgreSQL resolves by
 * aborting one side (serialisation failure 40001, deadlock 40P01) are retried with a short jittered
 * pause; a change whose connection was lost is not retried (its commit may have happened) and answers
 * 503. Several replicas may open the same database: migrations run once, under an advisory lock.
 */
import pg from 'pg';
import { Kysely, Migrator, PostgresDialect, type CompiledQuery, type Migration, type QueryResult, type Transaction } from 'kysely';
import { ConfigError } from '../../config.js';
import type { ServiceStore } from '../service-store.js';
import { isConnectionLost, isRetryableConflict } from './errors.js';

export interface PostgresStoreOptions {
  url: string;
  /** The environment variable the URL came from, named in every start-up error. */
  variable: string;
  migrations: Record<string, Migration>;
  /** Connections in the pool. */
  poolSize?: number;
  /** Errors of connections the server ended (a terminated backend): logged, never fatal. */
  onConnectionError?: (error: Error) => void;
}

const MAX_ATTEMPTS = 5;
/** One key for every EventSync migration: replicas starting together migrate one after the other. */
const MIGRATION_LOCK = 7_314_590_221;

/** The URL without its password, for messages. */
function shown(url: URL): string {
  const copy = new URL(url.toString());
  if (copy.password) copy.password = '***';
  return copy.toString();
}

function parseUrl(options: PostgresStoreOptions): URL {
  let url: URL;
  try {
    url = new URL(options.url);
  } catch {
    throw new ConfigError([`${options.variable} is not a URL: expected postgres://user@host:5432/database`]);
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new ConfigError([`${options.variable} = ${shown(url)}: expected a postgres:// URL`]);
  }
  return url;
}

/**
 * bigint columns (ids, which the API allows up to 2^53 − 1, and money in minor units) and COUNT come
 * back as JS numbers, as they do from SQLite, instead of pg's default strings: every such value of
 * EventSync stays within Number.MAX_SAFE_INTEGER.
 */
const types: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => (oid === pg.types.builtins.INT8 ? Number : pg.types.getTypeParser(oid, format))) as typeof pg.types.getTypeParser,
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function openPostgresStore<DB>(options: PostgresStoreOptions): Promise<ServiceStore<DB> & { migrated: string[] }> {
  const url = parseUrl(options);
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.poolSize ?? 20,
    connectionTimeoutMillis: 5000,
    idleTimeoutMillis: 30_000,
    // Durability is not left to the server's configuration.
    options: '-c synchronous_commit=on',
    types,
  });
  const connectionFailed = (error: Error) => options.onConnectionError?.(error);
  pool.on('error', connectionFailed);
  // A connection ended while checked out (pg_terminate_backend between two queries of a transaction)
  // emits 'error' on its client; without a listener that would crash the process. The query in
  // flight fails on its own, and the pool drops the broken client.
  pool.on('connect', (client) => client.on('error', connectionFailed));
  const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool }) });
  let migrated: string[];
  try {
    migrated = await migrateUnderLock(pool, db, options.migrations);
  } catch (error) {
    await db.destroy().catch(() => undefined);
    if (error instanceof Error && !(error instanceof ConfigError) && (isConnectionLost(error) || 'code' in error)) {
      throw new ConfigError([`${options.variable} = ${shown(url)}: cannot use the database: ${error.message}`]);
    }
    throw error;
  }
  return {
    dialect: 'postgres',
    db,
    migrated,
    write: async <T>(work: (trx: Transaction<DB>) => Promise<T>): Promise<T> => {
      for (let attempt = 1; ; attempt += 1) {
        try {
          return await db.transaction().execute(work);
        } catch (error) {
          if (!isRetryableConflict(error) || attempt >= MAX_ATTEMPTS) throw error;
          await sleep(Math.random() * 5 * attempt);
        }
      }
    },
    // Outside a transaction block PostgreSQL runs a statement as its own transaction, committed (and,
    // with synchronous_commit = on, durable) before it answers.
    writeStatement: async <Row>(statement: CompiledQuery<Row>): Promise<QueryResult<Row>> => {
      for (let attempt = 1; ; attempt += 1) {
        try {
          return await db.executeQuery(statement);
        } catch (error) {
          if (!isRetryableConflict(error) || attempt >= MAX_ATTEMPTS) throw error;
          await sleep(Math.random() * 5 * attempt);
        }
      }
    },
    // A commit that returned is durable (synchronous_commit = on): reads need no barrier.
    settled: async () => undefined,
    reachable: async () => {
      try {
        await pool.query('SELECT 1');
        return true;
      } catch {
        return false;
      }
    },
    close: () => db.destroy(),
  };
}

/**
 * kysely's Migrator already runs PostgreSQL migrations in one transaction under a transaction-level
 * advisory lock; the session lock taken here also covers its creation of the migration tables, which
 * two replicas starting at once could otherwise race on.
 */
async function migrateUnderLock<DB>(pool: pg.Pool, db: Kysely<DB>, migrations: Record<string, Migration>): Promise<string[]> {
  const client = await pool.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    try {
      const migrator = new Migrator({ db: db as unknown as Kysely<unknown>, provider: { getMigrations: async () => migrations } });
      const { error, results } = await migrator.migrateToLatest();
      if (error) throw error instanceof Error ? error : new Error(String(error));
      return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]);
    }
  } finally {
    client.release();
  }
}
