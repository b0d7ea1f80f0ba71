/**
 * A service's database, whichever engine holds it: kysely over SQLite (the embedded default,
 * platform/store/sqlite/) or PostgreSQL (platform/store/postgres/). Domain and store code see only
 * this: kysely for queries, `write` for atomic changes, `settled` before answering a read.
 */
import type { CompiledQuery, Kysely, QueryResult, Transaction } from 'kysely';

export type StoreDialect = 'sqlite' | 'postgres';

export interface ServiceStore<DB> {
  dialect: StoreDialect;
  db: Kysely<DB>;
  /** Runs one atomic change; resolves once it is durable. */
  write: <T>(work: (trx: Transaction<DB>) => Promise<T>) => Promise<T>;
  /**
   * Runs a change that is one statement, atomic by itself; resolves once it is durable. PostgreSQL
   * sends it alone, as its own transaction (one round trip instead of BEGIN, the statement, COMMIT);
   * SQLite runs it as `write` runs any change.
   */
  writeStatement: <Row>(statement: CompiledQuery<Row>) => Promise<QueryResult<Row>>;
  /** Resolves once everything committed so far is durable: a read answers after it. */
  settled: () => Promise<void>;
  /** True when the database answers a trivial query (GET /ready). */
  reachable: () => Promise<boolean>;
  /** Finishes the changes under way, then closes the database. */
  close: () => Promise<void>;
}

/** Where a store reports how it works (platform/metrics.ts); each store calls only its own part. */
export interface StoreInstruments {
  sqlite(): { batchCommitted(size: number): void; walFlushed(seconds: number): void };
  postgres(stats: () => { total: number; idle: number; waiting: number }): void;
}
