/**
 * The PostgreSQL store sends parameterised statements as named prepared statements (each connection
 * parses one once), and a schema change another replica makes under a prepared `SELECT *` costs no
 * error: the statement is prepared again (platform/store/postgres/named-statements.ts).
 */
import t from 'tap';
import pg from 'pg';
import { sql, type Generated, type Kysely } from 'kysely';
import { openPostgresStore } from '../platform/store/postgres/store.js';
import { createTestDatabase, testStores } from './helpers/postgres.js';

interface TestDatabase {
  items: { id: Generated<number>; name: string };
}

const migrations = {
  '001': {
    up: async (db: Kysely<unknown>) => {
      await db.schema.createTable('items').addColumn('id', 'integer', (c) => c.primaryKey().generatedByDefaultAsIdentity()).addColumn('name', 'text', (c) => c.notNull()).execute();
    },
  },
};

async function otherReplica(url: string, statement: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}

if (!(await testStores()).includes('postgres')) {
  t.pass('PostgreSQL is not reachable here: these tests are skipped (see the line above)');
} else {
  t.test('a parameterised statement is prepared once per connection and then only bound, with a plan made for each execution', async (t) => {
    const url = await createTestDatabase(t, 'named');
    const store = await openPostgresStore<TestDatabase>({ url, variable: 'TEST_DATABASE_URL', migrations, poolSize: 2 });
    t.teardown(() => store.close());
    await store.write((trx) => trx.insertInto('items').values({ name: 'a' }).execute());
    for (let i = 0; i < 3; i += 1) await store.db.selectFrom('items').select('name').where('id', '=', 1).execute();
    const prepared = await store.write(
      async (trx) => (await sql<{ statement: string }>`SELECT statement FROM pg_prepared_statements WHERE statement LIKE ${'select "name" from "items"%'}`.execute(trx)).rows,
    );
    t.equal(prepared.length, 1, 'the connection holds the statement prepared, once');
    const mode = await store.write(async (trx) => (await sql<{ plan_cache_mode: string }>`SHOW plan_cache_mode`.execute(trx)).rows[0]?.plan_cache_mode);
    t.equal(mode, 'force_custom_plan', 'and plans it for the values of each execution');
  });

  t.test('a column another replica adds under a prepared SELECT * is answered with the new columns, outside and inside a transaction', async (t) => {
    const url = await createTestDatabase(t, 'named_stale');
    const store = await openPostgresStore<TestDatabase>({ url, variable: 'TEST_DATABASE_URL', migrations, poolSize: 2 });
    t.teardown(() => store.close());
    await store.write((trx) => trx.insertInto('items').values({ name: 'a' }).execute());
    const read = () => store.db.selectFrom('items').selectAll().where('id', '=', 1).executeTakeFirst();
    const readInWrite = () => store.write((trx) => trx.selectFrom('items').selectAll().where('id', '=', 1).executeTakeFirst());
    t.same(await read(), { id: 1, name: 'a' });
    t.same(await readInWrite(), { id: 1, name: 'a' });

    await otherReplica(url, 'ALTER TABLE items ADD COLUMN colour text');
    t.same(await read(), { id: 1, name: 'a', colour: null }, 'outside a transaction');
    await otherReplica(url, 'ALTER TABLE items ADD COLUMN size integer');
    t.same(await readInWrite(), { id: 1, name: 'a', colour: null, size: null }, 'inside a transaction (run again by write)');
  });
}
