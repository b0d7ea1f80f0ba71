/**
 * PostgreSQL for the tests of the second store (DESIGN.md, Store and scale-out): a server found
 * through TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres), on which each test
 * creates and drops databases of its own. Where no server answers, PostgreSQL tests are skipped with
 * one loud line; under CI=true that is a failure instead.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Test } from 'tap';

export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

let reachable: Promise<string | undefined> | undefined;

/** Undefined when the server answers; otherwise why not. */
function serverProblem(): Promise<string | undefined> {
  reachable ??= (async () => {
    const client = new pg.Client({ connectionString: TEST_DATABASE_URL, connectionTimeoutMillis: 3000 });
    try {
      await client.connect();
      await client.query('SELECT 1');
      return undefined;
    } catch (error) {
      return error instanceof Error ? error.message : String(error);
    } finally {
      await client.end().catch(() => undefined);
    }
  })();
  return reachable;
}

/**
 * The stores a test runs on: always SQLite, and PostgreSQL when a server answers. Under CI=true an
 * unreachable server throws; elsewhere it is skipped with one loud line.
 */
export async function testStores(): Promise<Array<'sqlite' | 'postgres'>> {
  const problem = await serverProblem();
  if (problem === undefined) return ['sqlite', 'postgres'];
  if (process.env.CI === 'true') throw new Error(`PostgreSQL tests cannot run under CI=true: ${TEST_DATABASE_URL} does not answer (${problem})`);
  console.error(`\n*** SKIPPING PostgreSQL tests: ${TEST_DATABASE_URL} does not answer (${problem}); set TEST_DATABASE_URL to run them ***\n`);
  return ['sqlite'];
}

async function admin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** A new, empty database for this test, dropped (its connections ended first) when the test ends; its URL. */
export async function createTestDatabase(t: Test, label: string): Promise<string> {
  const name = `eventsync_${label.replace(/[^a-z0-9]/gi, '_').toLowerCase()}_${randomBytes(4).toString('hex')}`;
  await admin((client) => client.query(`CREATE DATABASE ${name}`));
  t.teardown(() =>
    admin(async (client) => {
      await client.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [name]);
      await client.query(`DROP DATABASE IF EXISTS ${name}`);
    }),
  );
  const url = new URL(TEST_DATABASE_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

/** Ends every connection to the database but the caller's: a lost connection, as the service sees it. */
export async function terminateBackends(databaseUrl: string): Promise<number> {
  const name = new URL(databaseUrl).pathname.slice(1);
  return admin(async (client) => {
    const result = await client.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [name]);
    return result.rowCount ?? 0;
  });
}
