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
import type { ServiceStore, StoreInstruments } from '../service-store.js';
import { isConnectionLost, isRetryableConflict } from './errors.js';
import { isStalePreparedStatement, namedStatementPool } from './named-statements.js';

export interface PostgresStoreOptions {
  url: string;
  /** The environment variable the URL came from, named in every start-up error. */
  variable: string;
  migrations: Record<string, Migration>;
  /** Connections in the pool (DATABASE_POOL_SIZE); 10 by default. */
  poolSize?: number;
  /** Processes of the service, each with a pool of its own (WORKERS); 1 by default. */
  processes?: number;
  /** Errors of connections the server ended (a terminated backend): logged, never fatal. */
  onConnectionError?: (error: Error) => void;
  instruments?: StoreInstruments;
}

const MAX_ATTEMPTS = 5;
const DEFAULT_POOL_SIZE = 10;
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

/** Runs `run` again, after a short jittered pause, while it fails in a way `retryable` says is safe to repeat (at most MAX_ATTEMPTS times). */
async function retried<T>(run: () => Promise<T>, retryable: (error: unknown) => boolean): Promise<T> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await run();
    } catch (error) {
      if (!retryable(error) || attempt >= MAX_ATTEMPTS) throw error;
      await sleep(Math.random() * 5 * attempt);
    }
  }
}

export async function openPostgresStore<DB>(options: PostgresStoreOptions): Promise<ServiceStore<DB> & { migrated: string[]; warnings: string[] }> {
  const url = parseUrl(options);
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.poolSize ?? DEFAULT_POOL_SIZE,
    connectionTimeoutMillis: 5000,
    idleTimeoutMillis: 30_000,
    // Durability is not left to the server's configuration; plans stay per execution with named
    // statements (named-statements.ts).
    options: '-c synchronous_commit=on -c plan_cache_mode=force_custom_plan',
    types,
  });
  const connectionFailed = (error: Error) => options.onConnectionError?.(error);
  pool.on('error', connectionFailed);
  // A connection ended while checked out (pg_terminate_backend between two queries of a transaction)
  // emits 'error' on its client; without a listener that would crash the process. The query in
  // flight fails on its own, and the pool drops the broken client.
  pool.on('connect', (client) => client.on('error', connectionFailed));
  const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool: namedStatementPool(pool) }) });
  options.instruments?.postgres(() => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount }));
  let migrated: string[];
  let warnings: string[];
  try {
    warnings = await checkConnectionLimit(pool, options, url);
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
    warnings,
    // A stale prepared statement inside a transaction ended it: the transaction runs again (named-statements.ts).
    write: <T>(work: (trx: Transaction<DB>) => Promise<T>): Promise<T> =>
      retried(() => db.transaction().execute(work), (error) => isRetryableConflict(error) || isStalePreparedStatement(error)),
    // Outside a transaction block PostgreSQL runs a statement as its own transaction, committed (and,
    // with synchronous_commit = on, durable) before it answers.
    writeStatement: <Row>(statement: CompiledQuery<Row>): Promise<QueryResult<Row>> => retried(() => db.executeQuery(statement), isRetryableConflict),
    // A commit that returned is durable (synchronous_commit = on): reads need no barrier.
    settled: async () => undefined,
    reachable: async () => {
      try {
        await db.selectNoFrom((eb) => eb.lit(1).as('one')).execute();
        return true;
      } catch {
        return false;
      }
    },
    close: () => db.destroy(),
  };
}

/**
 * The connections this service may open (WORKERS × DATABASE_POOL_SIZE, each process its own pool)
 * against those the server lets a client open: max_connections less the slots kept for superusers
 * (and, from PostgreSQL 16, reserved_connections), or the database's or role's CONNECTION LIMIT if
 * lower. More than that can never be served: at the limit new connections are refused and requests
 * fail, so start-up refuses it, naming the variables and the numbers. More than half (the two
 * services usually share one server, and other clients use it too) is allowed with a warning.
 */
async function checkConnectionLimit(pool: pg.Pool, options: PostgresStoreOptions, url: URL): Promise<string[]> {
  const size = options.poolSize ?? DEFAULT_POOL_SIZE;
  const processes = options.processes ?? 1;
  const wanted = size * processes;
  const { rows } = await pool.query<{ max: number; superuser: number; reserved: number; database: number; role: number; rolsuper: boolean }>(
    `SELECT current_setting('max_connections')::int AS max,
       current_setting('superuser_reserved_connections')::int AS superuser,
       coalesce(current_setting('reserved_connections', true)::int, 0) AS reserved,
       (SELECT datconnlimit FROM pg_database WHERE datname = current_database()) AS database,
       rolconnlimit AS role, rolsuper
     FROM pg_roles WHERE rolname = current_user`,
  );
  const limits = rows[0];
  if (!limits) return [];
  // The reserved slots are left to administrators even when the service connects as a superuser.
  const reservedNote = `max_connections ${limits.max} less ${limits.superuser + limits.reserved} reserved`;
  const candidates: Array<[number, string]> = [[limits.max - limits.superuser - limits.reserved, reservedNote]];
  // CONNECTION LIMITs do not apply to superusers.
  if (limits.database >= 0 && !limits.rolsuper) candidates.push([limits.database, `the database's CONNECTION LIMIT ${limits.database}`]);
  if (limits.role >= 0 && !limits.rolsuper) candidates.push([limits.role, `the role's CONNECTION LIMIT ${limits.role}`]);
  const [allowed, why] = candidates.reduce((lowest, next) => (next[0] < lowest[0] ? next : lowest));
  const opens = `WORKERS = ${processes} × DATABASE_POOL_SIZE = ${size}: the service may open ${wanted} connections to ${shown(url)}`;
  if (wanted > allowed) {
    throw new ConfigError([`${opens}, but the server allows ${allowed} (${why}); lower DATABASE_POOL_SIZE or WORKERS, or raise the server's limit`]);
  }
  if (wanted * 2 > allowed) {
    return [`${opens}, more than half of the ${allowed} the server allows (${why}); the other service and other clients share them, and a request that finds none free answers 503`];
  }
  return [];
}

/**
 * kysely's Migrator (0.28) already runs PostgreSQL migrations in one transaction, under a session-level
 * advisory lock (`pg_advisory_lock`, PostgresAdapter.acquireMigrationLock) on that transaction's
 * connection; but it creates its migration tables before taking that lock, which two replicas starting
 * at once could race on. The session lock taken here, on a connection of its own, covers both.
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
