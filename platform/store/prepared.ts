/**
 * Queries of the hot paths, built with kysely and compiled once, then run with new values. kysely
 * builds an immutable query tree and compiles it to SQL on every call; for a one-row lookup that costs
 * more than SQLite's own work. A prepared query is written with the query builder as usual, with
 * `param(name)` where a value goes; it is compiled the first time it runs (by the dialect of the
 * database it runs on, so the store stays dialect-neutral), and each later run only fills the values
 * into the compiled parameter list. Only for queries whose shape does not depend on the values (no
 * `in` lists of varying length, no optional clauses).
 */
import type { Compilable, CompiledQuery, Kysely, QueryResult } from 'kysely';

/** Stands for a value in a query being prepared; replaced by the value of that name at each run. */
class Placeholder {
  constructor(readonly name: string) {}
}

type Values = Record<string, unknown>;

export interface PreparedQuery<DB, P extends Values, Row> {
  execute(db: Kysely<DB>, values: P): Promise<QueryResult<Row>>;
  /** The first row, or undefined (as kysely's executeTakeFirst). */
  takeFirst(db: Kysely<DB>, values: P): Promise<Row | undefined>;
  /** The statement with these values, compiled for `db`'s dialect (for ServiceStore.writeStatement). */
  compile(db: Kysely<DB>, values: P): CompiledQuery<Row>;
}

interface Template {
  compiled: CompiledQuery;
  /** For each compiled parameter: the name of the value that goes there, or undefined for a constant. */
  slots: Array<string | undefined>;
}

export function prepareQuery<DB, P extends Values, Row>(
  build: (db: Kysely<DB>, param: <K extends keyof P & string>(name: K) => P[K]) => Compilable<Row>,
): PreparedQuery<DB, P, Row> {
  // One template per dialect adapter (a process normally has one).
  const templates = new Map<unknown, Template>();
  const template = (db: Kysely<DB>): Template => {
    const adapter = db.getExecutor().adapter.constructor;
    let found = templates.get(adapter);
    if (!found) {
      const compiled = build(db, (name) => new Placeholder(name) as never).compile();
      found = { compiled, slots: compiled.parameters.map((value) => (value instanceof Placeholder ? value.name : undefined)) };
      templates.set(adapter, found);
    }
    return found;
  };
  const compile = (db: Kysely<DB>, values: P): CompiledQuery<Row> => {
    const { compiled, slots } = template(db);
    const parameters = compiled.parameters.map((constant, index) => {
      const name = slots[index];
      return name === undefined ? constant : values[name];
    });
    return { ...compiled, parameters } as CompiledQuery<Row>;
  };
  const execute = (db: Kysely<DB>, values: P): Promise<QueryResult<Row>> => db.executeQuery<Row>(compile(db, values));
  return {
    execute,
    compile,
    takeFirst: async (db, values) => (await execute(db, values)).rows[0],
  };
}
