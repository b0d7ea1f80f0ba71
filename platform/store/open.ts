/**
 * Opens a service's store, choosing the engine once, at start-up: PostgreSQL when the service's
 * `*_DATABASE_URL` is set, else its SQLite file. Migrations are given per engine (they differ only
 * where they must: identity columns, the text-search index).
 */
import type { Migration } from 'kysely';
import type { ServiceStore, StoreDialect, StoreInstruments } from './service-store.js';
import { openSqliteStore } from './sqlite/store.js';

export interface StoreOptions {
  /** A postgres:// URL, or undefined for the SQLite file. */
  databaseUrl: string | undefined;
  /** The variable the URL comes from, for messages. */
  urlVariable: string;
  sqlitePath: string;
  synchronous: 'FULL' | 'EXTRA' | 'NORMAL';
  migrations: (dialect: StoreDialect) => Record<string, Migration>;
  /** The store can no longer keep its promises (a failed fsync): the service must stop. */
  onFatal: (error: unknown) => void;
  /** A connection of the pool was lost: worth a log line, nothing more (the pool replaces it). */
  onConnectionError: (error: Error) => void;
  /** SQLite: a checkpoint of the worker thread failed (platform/store/sqlite/checkpointer.ts): worth a log line, nothing more. */
  onCheckpointError?: (error: Error) => void;
  /** Where the store reports batches, flushes or pool usage (metrics). */
  instruments?: StoreInstruments;
  /** PostgreSQL: connections per process (DATABASE_POOL_SIZE), and processes of the service (WORKERS). */
  pool?: { size: number; processes: number };
}

/** What the store says at start-up beside its migrations: warnings worth a log line (a pool near the server's connection limit). */
export async function openServiceStore<DB>(options: StoreOptions): Promise<ServiceStore<DB> & { migrated: string[]; warnings: string[] }> {
  if (options.databaseUrl !== undefined) {
    // Loaded only for PostgreSQL: `pg` and its engine cost a SQLite service's start-up about 0.2 s of CPU.
    const { openPostgresStore } = await import('./postgres/store.js');
    return openPostgresStore<DB>({
      url: options.databaseUrl,
      variable: options.urlVariable,
      migrations: options.migrations('postgres'),
      onConnectionError: options.onConnectionError,
      ...(options.pool ? { poolSize: options.pool.size, processes: options.pool.processes } : {}),
      ...(options.instruments ? { instruments: options.instruments } : {}),
    });
  }
  return {
    ...(await openSqliteStore<DB>({ path: options.sqlitePath, synchronous: options.synchronous, migrations: options.migrations('sqlite'), onFatal: options.onFatal, ...(options.onCheckpointError ? { onCheckpointError: options.onCheckpointError } : {}), ...(options.instruments ? { instruments: options.instruments } : {}) })),
    warnings: [],
  };
}
