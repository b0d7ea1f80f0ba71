/** The PostgreSQL store (platform/store/postgres/): durability per connection, retries, migrations among replicas, bad URLs. */
import t from 'tap';
import pg from 'pg';
import { sql, type Generated, type Kysely } from 'kysely';
import { ConfigError } from '../platform/config.js';
import { openPostgresStore } from '../platform/store/postgres/store.js';
import { createTestDatabase, terminateBackends, testStores } from './helpers/postgres.js';

interface TestDatabase {
  items: { id: Generated<number>; name: string; size: number };
}

const migrations = {
  '001': {
    up: async (db: Kysely<unknown>) => {
      await db.schema
        .createTable('items')
        .addColumn('id', 'integer', (c) => c.primaryKey().generatedByDefaultAsIdentity())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('size', 'integer', (c) => c.notNull())
        .execute();
    },
  },
};

const open = (url: string) => openPostgresStore<TestDatabase>({ url, variable: 'TEST_DATABASE_URL', migrations });

if (!(await testStores()).includes('postgres')) {
  t.pass('PostgreSQL is not reachable here: these tests are skipped (see the line above)');
} else {
  t.test('every connection commits with synchronous_commit = on, whatever the server or database says', async (t) => {
    const url = await createTestDatabase(t, 'durability');
    const name = new URL(url).pathname.slice(1);
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    await admin.query(`ALTER DATABASE ${name} SET synchronous_commit = off`);
    await admin.end();
    const store = await open(url);
    t.teardown(() => store.close());
    const settings = await Promise.all(Array.from({ length: 5 }, () => store.write(async (trx) => (await sql<{ synchronous_commit: string }>`SHOW synchronous_commit`.execute(trx)).rows[0]?.synchronous_commit)));
    t.same(settings, ['on', 'on', 'on', 'on', 'on'], 'each connection of the pool says on');
  });

  t.test('two replicas starting together on an empty database migrate once and both start', async (t) => {
    const url = await createTestDatabase(t, 'migrate');
    const [a, b] = await Promise.all([open(url), open(url)]);
    t.teardown(async () => {
      await a.close();
      await b.close();
    });
    t.same([...a.migrated, ...b.migrated], ['001'], 'the migration ran once in all');
    const row = await a.write((trx) => trx.insertInto('items').values({ name: 'x', size: 1 }).returning('id').executeTakeFirstOrThrow());
    t.ok(row.id >= 1, 'and both see the same schema');
    t.equal((await b.db.selectFrom('items').select('name').execute()).length, 1);
  });

  t.test('a change that deadlocks with another is retried and both commit', async (t) => {
    const url = await createTestDatabase(t, 'deadlock');
    const store = await open(url);
    t.teardown(() => store.close());
    await store.write((trx) => trx.insertInto('items').values([{ name: 'a', size: 0 }, { name: 'b', size: 0 }]).execute());
    // Each change locks one row, waits until the other has locked its row, then wants the other's: PostgreSQL aborts one (40P01).
    let locked = 0;
    const bothLocked = async () => {
      locked += 1;
      while (locked < 2) await new Promise((resolve) => setTimeout(resolve, 5));
    };
    let attempts = 0;
    const change = (first: string, second: string) =>
      store.write(async (trx) => {
        attempts += 1;
        await trx.updateTable('items').set((eb) => ({ size: eb('size', '+', 1) })).where('name', '=', first).execute();
        if (attempts <= 2) await bothLocked();
        await trx.updateTable('items').set((eb) => ({ size: eb('size', '+', 1) })).where('name', '=', second).execute();
      });
    await Promise.all([change('a', 'b'), change('b', 'a')]);
    t.ok(attempts >= 3, `the change PostgreSQL aborted ran again (${attempts} attempts for 2 changes)`);
    const sizes = await store.db.selectFrom('items').select(['name', 'size']).orderBy('name').execute();
    t.same(sizes, [{ name: 'a', size: 2 }, { name: 'b', size: 2 }], 'both changes committed exactly once');
  });

  t.test('a change that fails to serialise against another (40001) is retried and both commit, as if one ran after the other', async (t) => {
    const url = await createTestDatabase(t, 'serialization');
    const store = await open(url);
    t.teardown(() => store.close());
    // Each change counts the items, waits until the other has counted too, then adds one sized by its
    // count: at SERIALIZABLE both cannot commit (write skew), so PostgreSQL aborts one (40001).
    let counted = 0;
    const bothCounted = async () => {
      counted += 1;
      while (counted < 2) await new Promise((resolve) => setTimeout(resolve, 5));
    };
    let attempts = 0;
    const change = (name: string) =>
      store.write(async (trx) => {
        attempts += 1;
        await sql`SET TRANSACTION ISOLATION LEVEL SERIALIZABLE`.execute(trx);
        const { items } = await trx.selectFrom('items').select((eb) => eb.fn.countAll<number>().as('items')).executeTakeFirstOrThrow();
        if (attempts <= 2) await bothCounted();
        await trx.insertInto('items').values({ name, size: items }).execute();
      });
    await Promise.all([change('a'), change('b')]);
    t.ok(attempts >= 3, `the change PostgreSQL aborted ran again (${attempts} attempts for 2 changes)`);
    const sizes = (await store.db.selectFrom('items').select('size').execute()).map((row) => row.size).sort();
    t.same(sizes, [0, 1], 'both committed once, the second seeing the first');
  });

  t.test('a lost connection fails the change in flight, and the store carries on without a restart', async (t) => {
    const url = await createTestDatabase(t, 'lost');
    const store = await open(url);
    t.teardown(() => store.close());
    await store.write((trx) => trx.insertInto('items').values({ name: 'before', size: 1 }).execute());
    const inFlight = store.write(async (trx) => {
      await trx.insertInto('items').values({ name: 'lost', size: 1 }).execute();
      await terminateBackends(url);
      await sql`SELECT 1`.execute(trx);
    });
    await t.rejects(inFlight, 'the change whose connection ended fails');
    t.ok(await store.reachable(), 'the store reaches the database again');
    await store.write((trx) => trx.insertInto('items').values({ name: 'after', size: 1 }).execute());
    const names = (await store.db.selectFrom('items').select('name').orderBy('id').execute()).map((row) => row.name);
    t.same(names, ['before', 'after'], 'the lost change left nothing behind, and later changes commit');
  });

  t.test('connections the server ended while idle in the pool are replaced: reads and changes right after succeed', async (t) => {
    const url = await createTestDatabase(t, 'stale');
    const store = await open(url);
    t.teardown(() => store.close());
    const reads = () => Promise.all(Array.from({ length: 6 }, () => store.db.selectFrom('items').select('name').execute()));
    const changes = (round: number) =>
      Promise.all(Array.from({ length: 6 }, (_, i) => store.write((trx) => trx.insertInto('items').values({ name: `r${round}-${i}`, size: 1 }).execute())));
    for (let round = 1; round <= 3; round += 1) {
      await reads(); // six idle connections in the pool
      await terminateBackends(url);
      await t.resolves(reads(), `round ${round}: reads on the ended connections succeed`);
      await reads();
      await terminateBackends(url);
      await t.resolves(changes(round), `round ${round}: changes on the ended connections commit`);
      t.ok(await store.reachable(), `round ${round}: reachable`);
    }
    const count = await store.db.selectFrom('items').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    t.equal(count.n, 18, 'every change committed once');
  });

  t.test('a URL that is malformed, unreachable or refused stops the store with a message naming the variable', async (t) => {
    const url = await createTestDatabase(t, 'refused');
    const cases: Array<[string, string, RegExp]> = [
      ['not a url', 'malformed', /TEST_DATABASE_URL is not a URL/],
      ['mysql://root@127.0.0.1/test', 'another engine', /TEST_DATABASE_URL = mysql:.*expected a postgres:\/\/ URL/],
      ['postgres://postgres@127.0.0.1:1/postgres', 'unreachable', /TEST_DATABASE_URL = postgres:\/\/postgres@127\.0\.0\.1:1\/postgres: cannot use the database/],
      [url.replace('postgres@', 'nobody_here:secret@'), 'refused credentials', /TEST_DATABASE_URL = postgres:\/\/nobody_here:\*\*\*@.*cannot use the database/],
    ];
    for (const [given, what, message] of cases) {
      const error = await open(given).then(
        () => undefined,
        (failure: unknown) => failure,
      );
      t.ok(error instanceof ConfigError, `${what}: a configuration error`);
      t.match((error as Error).message, message, `${what}: names the variable and the problem`);
      t.notMatch((error as Error).message, /secret/, `${what}: never the password`);
    }
  });
}
