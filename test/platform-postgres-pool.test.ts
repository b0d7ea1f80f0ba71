/**
 * Connection pools against the server's connection limit (README, Configuration: DATABASE_POOL_SIZE):
 * a service that may open more connections than the server allows does not start, one that may take
 * more than half of them starts with a warning, and a request that finds no connection slot free
 * answers 503, never 500. The limit is the test database's own CONNECTION LIMIT, so the shared
 * server's slots are never used up.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import pg from 'pg';
import t, { type Test } from 'tap';
import { repoRoot } from '../openapi/spec.js';
import { ConfigError } from '../platform/config.js';
import { openPostgresStore } from '../platform/store/postgres/store.js';
import { SERVICE_TOKEN, startEventApp, tempDir } from './helpers/event-app.js';
import { postEvent } from './helpers/event-api.js';
import { createTestDatabase, TEST_DATABASE_URL, testStores } from './helpers/postgres.js';

/**
 * The database's URL for a role of this test's own (not a superuser: CONNECTION LIMITs do not apply
 * to superusers), allowed `limit` connections; the role is dropped when the test ends.
 */
async function limitedRole(t: Test, url: string, limit: number): Promise<{ url: string; setLimit: (limit: number) => Promise<void> }> {
  const role = `eventsync_pool_${randomBytes(4).toString('hex')}`;
  const database = new URL(url).pathname.slice(1);
  const admin = async (work: (client: pg.Client) => Promise<unknown>, on = url) => {
    const client = new pg.Client({ connectionString: on });
    await client.connect();
    try {
      await work(client);
    } finally {
      await client.end();
    }
  };
  await admin(async (client) => {
    await client.query(`CREATE ROLE ${role} LOGIN CONNECTION LIMIT ${limit}`);
    await client.query(`GRANT ALL ON SCHEMA public TO ${role}`);
  });
  t.teardown(async () => {
    // Its backends first (the app has closed by now, a failed start may have left some), then what it owns.
    await admin((client) => client.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1', [role]), TEST_DATABASE_URL);
    await admin((client) => client.query(`DROP OWNED BY ${role}`)).catch(() => undefined);
    await admin((client) => client.query(`DROP ROLE IF EXISTS ${role}`), TEST_DATABASE_URL);
  });
  const roleUrl = new URL(url);
  roleUrl.username = role;
  roleUrl.pathname = `/${database}`;
  return { url: roleUrl.toString(), setLimit: (next) => admin((client) => client.query(`ALTER ROLE ${role} CONNECTION LIMIT ${next}`)) };
}

function runService(env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [join(repoRoot, 'dist', 'event-service', 'server.js')], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stderr })));
}

if (!(await testStores()).includes('postgres')) {
  t.pass('PostgreSQL is not reachable here: these tests are skipped (see the line above)');
} else {
  t.test('WORKERS × DATABASE_POOL_SIZE above the connections the server allows stops the service at start-up with one message naming both and the limit, not a stack trace', async (t) => {
    const { url } = await limitedRole(t, await createTestDatabase(t, 'pool_limit'), 8);
    const { code, stderr } = await runService({
      SERVICE_TOKEN,
      EVENT_DATABASE_URL: url,
      WORKERS: '3',
      DATABASE_POOL_SIZE: '3',
      EVENT_SERVICE_PORT: '0',
      EVENT_DB_PATH: join(tempDir(t), 'event_data.db'),
      LOG_LEVEL: 'silent',
    });
    t.equal(code, 1, 'it exits 1');
    t.match(stderr, /WORKERS = 3 × DATABASE_POOL_SIZE = 3: the service may open 9 connections to .*, but the server allows 8 \(the role's CONNECTION LIMIT 8\)/, 'naming both variables, the total and the limit');
    t.notMatch(stderr, /\n\s+at /, 'without a stack trace');
  });

  t.test('a pool within the limit but above half of it opens, with a warning that other clients share the connections', async (t) => {
    const { url } = await limitedRole(t, await createTestDatabase(t, 'pool_half'), 8);
    const open = (poolSize: number) => openPostgresStore({ url, variable: 'EVENT_DATABASE_URL', migrations: {}, poolSize, processes: 2 });
    const large = await open(3);
    t.teardown(() => large.close());
    t.match(large.warnings, [/WORKERS = 2 × DATABASE_POOL_SIZE = 3: the service may open 6 connections .*more than half of the 8 the server allows/], 'warned');
    const small = await open(2);
    t.teardown(() => small.close());
    t.same(small.warnings, [], 'half or less: no warning');
    await t.rejects(open(5), ConfigError, 'and 10 of 8 is refused');
  });

  t.test('a request that finds every connection slot of the database taken answers 503 unavailable, never 500', async (t) => {
    const role = await limitedRole(t, await createTestDatabase(t, 'pool_full'), 8);
    const app = await startEventApp(t, { DATABASE_POOL_SIZE: '8', EVENT_DATABASE_URL: role.url }, { store: 'postgres' });
    const event = await postEvent(app, { total_tickets: 10 });
    // No new connection from now on: the pool keeps the ones it has, and needs more under load.
    await role.setLimit(0);
    const answers = await Promise.all(Array.from({ length: 24 }, () => app.app.inject({ method: 'GET', url: `/events/${event.id}` })));
    const statuses = answers.map((answer) => answer.statusCode);
    t.ok(statuses.includes(503), 'some requests found no connection: 503');
    t.ok(statuses.every((status) => status === 200 || status === 503), `nothing else (got ${[...new Set(statuses)].join(', ')})`);
    const refused = answers.find((answer) => answer.statusCode === 503);
    t.match(refused?.json(), { type: 'urn:eventsync:problem:unavailable' }, 'as problem+json unavailable');
  });
}
