/**
 * PostgreSQL for the tests of the second store (DESIGN.md, Store and scale-out): a server found
 * through TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres), on which each test
 * creates and drops databases of its own. Where no server answers, PostgreSQL tests are skipped with
 * one loud line; under CI=true that is a failure instead.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Migration } from 'kysely';
import pg from 'pg';
import tap, { type Test } from 'tap';
import { repoRoot } from '../../openapi/spec.js';
import type { openPostgresStore } from '../../platform/store/postgres/store.js';

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

/** A service whose schema a test database can be created with. */
export type MigratedService = 'event-service' | 'ticket-service';

/** Unused templates of another schema version are dropped once this old. */
const STALE_TEMPLATE_MS = 3600_000;
const TEMPLATE_PREFIX = 'eventsync_template_';

/**
 * Names the schema a service's migrations build, as the services run them (the compiled dist/): a hash
 * of its migration files, the migration runner and kysely's version. A new or changed migration makes
 * a new name, so a template is never used for another schema.
 */
function schemaVersion(service: MigratedService): string {
  const hash = createHash('sha256');
  const migrations = join(repoRoot, 'dist', service, 'store', 'migrations');
  for (const file of readdirSync(migrations).filter((name) => name.endsWith('.js')).sort()) hash.update(`${file}\0`).update(readFileSync(join(migrations, file)));
  hash.update(readFileSync(join(repoRoot, 'dist', 'platform', 'store', 'postgres', 'store.js')));
  hash.update(readFileSync(join(repoRoot, 'node_modules', 'kysely', 'package.json')));
  return hash.digest('hex').slice(0, 16);
}

interface CompiledStore {
  openPostgresStore: typeof openPostgresStore;
}
interface CompiledMigrations {
  migrations: (dialect: 'postgres') => Record<string, Migration>;
}

/** The service's own migrations and migration runner, from dist/ (what its process runs). */
async function compiledMigrator(service: MigratedService): Promise<CompiledStore & CompiledMigrations> {
  const load = (path: string): Promise<unknown> => import(pathToFileURL(join(repoRoot, 'dist', path)).href);
  const store = (await load('platform/store/postgres/store.js')) as CompiledStore;
  const module = (await load(`${service}/store/migrations/index.js`)) as Record<string, CompiledMigrations['migrations']>;
  const migrations = module[service === 'event-service' ? 'eventMigrations' : 'ticketMigrations'];
  if (!migrations) throw new Error(`dist/${service}/store/migrations/index.js exports no migrations: run \`npm run build\``);
  return { openPostgresStore: store.openPostgresStore, migrations };
}

const templates = new Map<MigratedService, Promise<string>>();

/**
 * A database migrated to the service's current schema, to copy test databases from (CREATE DATABASE
 * … TEMPLATE is a file copy; running the migrations in every test database costs more). Built once per
 * schema version under an advisory lock, so parallel test processes build it once; built under a
 * temporary name and renamed when complete, so a crash never leaves a half-migrated template. Templates
 * of other schema versions are dropped once unused for an hour (another branch may still use its own).
 */
function migratedTemplate(service: MigratedService): Promise<string> {
  let template = templates.get(service);
  if (!template) {
    template = buildTemplate(service);
    templates.set(service, template);
    // A failure is reported to the test that asked; the next one tries again.
    template.catch(() => templates.delete(service));
  }
  return template;
}

async function buildTemplate(service: MigratedService): Promise<string> {
  const prefix = `${TEMPLATE_PREFIX}${service === 'event-service' ? 'events' : 'tickets'}_`;
  const name = `${prefix}${schemaVersion(service)}`;
  const stale = await admin(async (client) => {
    await client.query('SELECT pg_advisory_lock(hashtext($1))', [prefix]);
    try {
      const now = Date.now();
      const existing = await client.query<{ datname: string; used: string | null }>(
        "SELECT datname, shobj_description(oid, 'pg_database') AS used FROM pg_database WHERE datname LIKE $1",
        [`${prefix}%`],
      );
      if (!existing.rows.some((row) => row.datname === name)) {
        const building = `${name}_${randomBytes(4).toString('hex')}`;
        await client.query(`CREATE DATABASE ${building}`);
        try {
          const { openPostgresStore: open, migrations } = await compiledMigrator(service);
          const url = new URL(TEST_DATABASE_URL);
          url.pathname = `/${building}`;
          const store = await open({ url: url.toString(), variable: 'TEST_DATABASE_URL', migrations: migrations('postgres') });
          await store.close();
          await client.query(`ALTER DATABASE ${building} RENAME TO ${name}`);
        } catch (error) {
          await client.query(`DROP DATABASE IF EXISTS ${building}`).catch(() => undefined);
          throw error;
        }
      }
      // The last use of each template is noted on it, so that a template still in use elsewhere is kept.
      await client.query(`COMMENT ON DATABASE ${name} IS '${now}'`);
      return existing.rows.filter((row) => row.datname !== name && now - Number(row.used ?? 0) > STALE_TEMPLATE_MS).map((row) => row.datname);
    } finally {
      await client.query('SELECT pg_advisory_unlock(hashtext($1))', [prefix]);
    }
  });
  for (const old of stale) dropLater(old);
  return name;
}

/** Drops started by teardowns, awaited before the test process ends. */
const pendingDrops = new Set<Promise<void>>();

/**
 * Drops a database in the background: DROP DATABASE waits for a checkpoint (a second or more on a busy
 * server), which the test's next step need not wait for. The test process ends only after every drop.
 */
function dropLater(name: string): void {
  if (pendingDrops.size === 0) tap.teardown(() => Promise.all(pendingDrops).then(() => undefined));
  const drop = admin(async (client) => {
    await client.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [name]);
    await client.query(`DROP DATABASE IF EXISTS ${name}`);
  }).catch((error: unknown) => console.error(`could not drop test database ${name}: ${error instanceof Error ? error.message : String(error)}`));
  pendingDrops.add(drop);
}

export interface TestDatabaseOptions {
  /** Created with this service's schema already migrated (copied from a template): what the service would make of an empty one. */
  migratedFor?: MigratedService;
}

/**
 * A new database for this test, empty (or migrated for a service), dropped (its connections ended
 * first) after the test ends; its URL.
 */
export async function createTestDatabase(t: Test, label: string, options: TestDatabaseOptions = {}): Promise<string> {
  const name = `eventsync_${label.replace(/[^a-z0-9]/gi, '_').toLowerCase()}_${randomBytes(4).toString('hex')}`;
  const service = options.migratedFor;
  const create = async () => {
    const template = service ? await migratedTemplate(service) : undefined;
    await admin((client) => client.query(template ? `CREATE DATABASE ${name} TEMPLATE ${template}` : `CREATE DATABASE ${name}`));
  };
  try {
    await create();
  } catch (error) {
    // 3D000: the template was dropped meanwhile (a run of another schema version found it stale): build it again.
    if (!service || !(error instanceof Error && 'code' in error && error.code === '3D000')) throw error;
    templates.delete(service);
    await create();
  }
  t.teardown(() => dropLater(name));
  const url = new URL(TEST_DATABASE_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

/** Ends every connection to the database but the caller's: a lost connection, as the service sees it. */
export async function terminateBackends(databaseUrl: string, sparing: number[] = []): Promise<number> {
  const name = new URL(databaseUrl).pathname.slice(1);
  return admin(async (client) => {
    const result = await client.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() AND pid <> ALL($2::int[])', [name, sparing]);
    return result.rowCount ?? 0;
  });
}

/** A TCP proxy in front of the test server, which can hold back or cut the connections made through it. */
export interface PostgresProxy {
  /** The same database, reached through the proxy. */
  through(databaseUrl: string): string;
  /**
   * Holds back what clients send inside a transaction (its BEGIN passes, the statements after it wait,
   * unanswered) until `pass()`: a change in flight on a live backend.
   */
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
    /** The client's last simple-query BEGIN has not been followed by COMMIT or ROLLBACK yet. */
    inTransaction: boolean;
    held: Buffer[];
  }
  const links = new Set<Link>();
  const forward = (link: Link, chunk: Buffer) => {
    link.server.write(chunk);
    const text = chunk.toString('latin1').toLowerCase();
    if (text.includes('begin\0')) link.inTransaction = true;
    if (text.includes('commit\0') || text.includes('rollback\0')) link.inTransaction = false;
  };
  let holding = false;
  let refusing = false;
  const proxy = createServer((client) => {
    if (refusing) {
      client.destroy();
      return;
    }
    const server = connect(Number(target.port || '5432'), target.hostname);
    const link: Link = { client, server, answered: false, inTransaction: false, held: [] };
    links.add(link);
    client.on('data', (chunk: Buffer) => {
      if (holding && link.inTransaction) {
        link.held.push(chunk);
        return;
      }
      forward(link, chunk);
    });
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
      for (const link of links) for (const chunk of link.held.splice(0)) forward(link, chunk);
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
