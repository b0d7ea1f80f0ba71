/**
 * PostgreSQL for the tests of the second store (DESIGN.md, Store and scale-out): a server found
 * through TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres), on which each test
 * creates and drops databases of its own. Where no server answers, PostgreSQL tests are skipped with
 * one loud line; under CI=true that is a failure instead.
 */
import { randomBytes } from 'node:crypto';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
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

/** A TCP proxy in front of the test server, which can hold back or cut the connections made through it. */
export interface PostgresProxy {
  /** The same database, reached through the proxy. */
  through(databaseUrl: string): string;
  /** Holds back what clients send (their queries wait, unanswered) until `pass()`. */
  hold(): void;
  /** Sends on what was held back, and everything after it. */
  pass(): void;
  /** Connections on which the server has answered before and a query is now held back: a request in flight on a live backend. */
  heldQueries(): number;
  /** The database is gone: every connection is ended and new ones are refused, until `restore()`. */
  cut(): void;
  restore(): void;
}

export async function startPostgresProxy(t: Test): Promise<PostgresProxy> {
  const target = new URL(TEST_DATABASE_URL);
  interface Link {
    client: Socket;
    server: Socket;
    answered: boolean;
    held: Buffer[];
  }
  const links = new Set<Link>();
  let holding = false;
  let refusing = false;
  const proxy = createServer((client) => {
    if (refusing) {
      client.destroy();
      return;
    }
    const server = connect(Number(target.port || '5432'), target.hostname);
    const link: Link = { client, server, answered: false, held: [] };
    links.add(link);
    client.on('data', (chunk: Buffer) => (holding ? link.held.push(chunk) : server.write(chunk)));
    server.on('data', (chunk: Buffer) => {
      link.answered = true;
      client.write(chunk);
    });
    // Whatever the server said last (the FATAL of pg_terminate_backend) reaches the client before the end.
    server.on('close', () => {
      links.delete(link);
      client.end();
    });
    client.on('close', () => {
      links.delete(link);
      server.destroy();
    });
    server.on('error', () => undefined);
    client.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const endAll = () => {
    for (const link of links) {
      link.client.destroy();
      link.server.destroy();
    }
  };
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        endAll();
        proxy.close(() => resolve());
      }),
  );
  const port = String((proxy.address() as AddressInfo).port);
  return {
    through: (databaseUrl) => {
      const url = new URL(databaseUrl);
      url.hostname = '127.0.0.1';
      url.port = port;
      return url.toString();
    },
    hold: () => {
      holding = true;
    },
    pass: () => {
      holding = false;
      for (const link of links) for (const chunk of link.held.splice(0)) link.server.write(chunk);
    },
    heldQueries: () => [...links].filter((link) => link.answered && link.held.length > 0).length,
    cut: () => {
      refusing = true;
      endAll();
    },
    restore: () => {
      refusing = false;
    },
  };
}
