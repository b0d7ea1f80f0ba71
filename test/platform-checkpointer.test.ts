/**
 * WAL checkpoints off the event loop (platform/store/sqlite/checkpointer.ts): a worker thread copies
 * committed pages into the database file while the service's own connection checkpoints only past
 * the valve; closing stops the worker first, so the service's connection is the last and removes the
 * WAL; a checkpointer that cannot work says so.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { sql, type Generated, type Migration } from 'kysely';
import t from 'tap';
import { VALVE_PAGES, WalCheckpointer } from '../platform/store/sqlite/checkpointer.js';
import { openSqlite, openSqliteStore } from '../platform/store/sqlite/store.js';
import { sleep } from './helpers/event-api.js';
import { tempDir } from './helpers/event-app.js';

interface TestDatabase {
  blobs: { id: Generated<number>; body: string };
}

const migrations: Record<string, Migration> = {
  '001': {
    up: async (db) => {
      await sql`CREATE TABLE blobs (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL)`.execute(db);
    },
  },
};

t.test('a worker thread copies committed pages into the database file; the service connection checkpoints only past the valve', async (t) => {
  const path = join(tempDir(t), 'service.db');
  const store = await openSqliteStore<TestDatabase>({ path, synchronous: 'FULL', migrations, onCheckpointError: (error) => t.fail(error.message) });
  t.teardown(() => store.close());
  t.equal(store.database.pragma('wal_autocheckpoint', { simple: true }), VALVE_PAGES, 'the service connection checkpoints only past the valve');
  // About 2 MB, well below the valve (and below SQLite's default of 1,000 pages, 4 MB): only the worker copies it.
  const before = statSync(path).size;
  for (let i = 0; i < 100; i += 1) await store.write((trx) => trx.insertInto('blobs').values({ body: `${i}`.padEnd(20_000, 'x') }).execute());
  const deadline = Date.now() + 10_000;
  while (statSync(path).size < before + 2_000_000 && Date.now() < deadline) await sleep(20);
  t.ok(statSync(path).size >= before + 2_000_000, `the database file took the pages (${before} → ${statSync(path).size} bytes)`);
});

t.test('closing stops the worker before the service connection, which removes the WAL as the last one', async (t) => {
  const path = join(tempDir(t), 'service.db');
  const store = await openSqliteStore<TestDatabase>({ path, synchronous: 'FULL', migrations });
  await store.write((trx) => trx.insertInto('blobs').values({ body: 'one' }).execute());
  t.ok(existsSync(`${path}-wal`), 'a WAL while open');
  await store.close();
  t.notOk(existsSync(`${path}-wal`), 'no WAL once closed');
  const reopened = openSqlite({ path, synchronous: 'NORMAL' });
  t.equal((reopened.prepare('SELECT count(*) AS n FROM blobs').get() as { n: number }).n, 1, 'and the change is in the file');
  reopened.close();
});

t.test('a checkpointer that cannot open its database reports it', async (t) => {
  const path = join(tempDir(t), 'service.db');
  const database = openSqlite({ path, synchronous: 'NORMAL' });
  t.teardown(() => database.close());
  const errors: Error[] = [];
  const checkpointer = new WalCheckpointer(database, join(tempDir(t), 'missing.db'), (error) => errors.push(error), 10);
  await checkpointer.close();
  t.equal(errors.length, 1, 'one error reported');
  t.match(errors[0]?.message, /unable to open|no such file|does not exist/i, `it says what failed: ${errors[0]?.message}`);
});
