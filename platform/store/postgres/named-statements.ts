/**
 * Parameterised statements sent as named prepared statements: each connection parses and analyses a
 * statement once and afterwards only binds values (pg's `{ name, text, values }`), where kysely's
 * dialect sends every statement unnamed, to be parsed again each time. Plans stay per execution: the
 * connections run with `plan_cache_mode = force_custom_plan` (store.ts), so a search never gets a
 * generic plan chosen for other values. Names are process-wide (the same text, the same name on every
 * connection) and bounded: past MAX_NAMED distinct texts, statements go unnamed as before.
 *
 * A replica that migrated the schema under this one may change what a prepared `SELECT *` returns;
 * PostgreSQL then refuses the prepared statement ("cached plan must not change result type"). Its
 * text gets a new name, so every connection parses it afresh; outside a transaction the statement is
 * sent again at once (nothing of it ran), inside one the error ends the transaction and the store's
 * `write` runs it again (`isStalePreparedStatement`).
 *
 * A connection the server ended while it sat idle in the pool (a restart, pg_terminate_backend) may be
 * handed out before the pool has read its end. When the first statement of a checkout fails that way
 * and is one that cannot have changed anything (the `BEGIN` of a transaction, or a plain `SELECT`), the
 * broken connection is dropped and the statement sent again on another one, once: a read or a change
 * then succeeds instead of answering 503 because of a connection it never used.
 */
import type pg from 'pg';
import type { PostgresPool, PostgresPoolClient, PostgresQueryResult } from 'kysely';
import { isConnectionLost } from './errors.js';

const MAX_NAMED = 1000;

/** SQLSTATE 0A000 with this message: a prepared statement whose result columns a schema change altered. */
export function isStalePreparedStatement(error: unknown): boolean {
  return typeof error === 'object' && error !== null && 'code' in error && error.code === '0A000' && error instanceof Error && /cached plan must not change result type/.test(error.message);
}

class StatementNames {
  readonly #names = new Map<string, string>();
  #next = 0;

  nameFor(text: string): string | undefined {
    const known = this.#names.get(text);
    if (known !== undefined || this.#names.size >= MAX_NAMED) return known;
    const name = `eventsync_${(this.#next += 1)}`;
    this.#names.set(text, name);
    return name;
  }

  forget(text: string): void {
    this.#names.delete(text);
  }
}

/** Statements that change nothing when they fail first on a checkout, so sending them again is safe. */
const resendable = (text: string, command: string): boolean => command === 'begin' || /^\s*select\s/i.test(text);

/** The pool as kysely's PostgresDialect sees it, its clients naming their parameterised statements. */
export function namedStatementPool(pool: pg.Pool): PostgresPool {
  const names = new StatementNames();
  const checkout = (first: pg.PoolClient): PostgresPoolClient => {
    let client = first;
    // kysely opens and ends its transactions with these statements on the connection it holds.
    let inTransaction = false;
    let used = false;
    const send = async <R>(text: string, values: ReadonlyArray<unknown>): Promise<PostgresQueryResult<R>> => {
      const name = values.length > 0 ? names.nameFor(text) : undefined;
      if (name === undefined) return (await client.query(text, [...values])) as unknown as PostgresQueryResult<R>;
      return (await client.query({ name, text, values: [...values] })) as unknown as PostgresQueryResult<R>;
    };
    const sendOnLiveConnection = async <R>(text: string, command: string, values: ReadonlyArray<unknown>): Promise<PostgresQueryResult<R>> => {
      if (used) return send<R>(text, values);
      used = true;
      try {
        return await send<R>(text, values);
      } catch (error) {
        if (!isConnectionLost(error) || !resendable(text, command)) throw error;
        client.release(error instanceof Error ? error : true);
        client = await pool.connect();
        return send<R>(text, values);
      }
    };
    const query = async <R>(text: string, values: ReadonlyArray<unknown>): Promise<PostgresQueryResult<R>> => {
      const command = values.length === 0 ? text.trim().toLowerCase() : '';
      if (command === 'begin' || command.startsWith('start transaction')) inTransaction = true;
      try {
        return await sendOnLiveConnection<R>(text, command, values);
      } catch (error) {
        if (!isStalePreparedStatement(error)) throw error;
        names.forget(text);
        if (inTransaction) throw error;
        return send<R>(text, values);
      } finally {
        if (command === 'commit' || command === 'rollback') inTransaction = false;
      }
    };
    return {
      query: ((textOrCursor: unknown, values?: ReadonlyArray<unknown>) =>
        typeof textOrCursor === 'string' ? query(textOrCursor, values ?? []) : client.query(textOrCursor as never)) as PostgresPoolClient['query'],
      release: (destroy?: boolean) => client.release(destroy),
    };
  };
  return {
    connect: async () => checkout(await pool.connect()),
    end: () => pool.end(),
  };
}
