/** The store layer under both services: durable group commit over the WAL, and prepared queries. */
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { Kysely, type Generated } from 'kysely';
import { GroupCommitter } from '../platform/store/sqlite/group-commit.js';
import { prepareQuery } from '../platform/store/prepared.js';
import { createKysely, openSqliteStore, openSqlite } from '../platform/store/sqlite/store.js';
import { WalSync } from '../platform/store/sqlite/wal-sync.js';
import { tempDir } from './helpers/event-app.js';
import { sleep } from './helpers/event-api.js';

interface TestDatabase {
  items: { id: Generated<number>; name: string; size: number };
}

const migrations = {
  '001': {
    up: async (db: Kysely<unknown>) => {
      await db.schema
        .createTable('items')
        .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('size', 'integer', (c) => c.notNull())
        .execute();
    },
  },
};

const synchronousLevel = (value: unknown) => Number((value as Array<{ synchronous: number }>)[0]?.synchronous);

function deferred(): { promise: Promise<void>; resolve: () => void; reject: (error: Error) => void } {
  let resolve!: () => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<void>((ok, fail) => {
    resolve = ok;
    reject = fail;
  });
  return { promise, resolve, reject };
}

/** A migrated test database at NORMAL, closed when the test ends. */
async function itemsDatabase(t: Test, name: string): Promise<Kysely<TestDatabase>> {
  const db = createKysely<TestDatabase>(openSqlite({ path: join(tempDir(t), `${name}.db`), synchronous: 'NORMAL' }));
  t.teardown(() => db.destroy());
  await migrations['001'].up(db as unknown as Kysely<unknown>);
  return db;
}

/**
 * A group committer whose flushes the test finishes (or fails) by hand, in the order they were asked
 * for; `batches` has the size of each batch committed.
 */
function committerWithHeldFlushes(db: Kysely<TestDatabase>): { committer: GroupCommitter<TestDatabase>; flushes: Array<ReturnType<typeof deferred>>; batches: number[] } {
  const flushes: Array<ReturnType<typeof deferred>> = [];
  const batches: number[] = [];
  const committer = new GroupCommitter(db, {
    durable: () => {
      const flush = deferred();
      flushes.push(flush);
      return flush.promise;
    },
    instruments: { batchCommitted: (size) => batches.push(size), walFlushed: () => undefined },
  });
  return { committer, flushes, batches };
}

const turns = async (count: number) => {
  for (let i = 0; i < count; i += 1) await new Promise((resolve) => setImmediate(resolve));
};

t.test('at synchronous=FULL a service database runs its connection at NORMAL and flushes the WAL itself before answering', async (t) => {
  const dir = tempDir(t);
  const store = await openSqliteStore<TestDatabase>({ path: join(dir, 'full.db'), synchronous: 'FULL', migrations });
  t.teardown(() => store.close());
  t.same(store.migrated, ['001'], 'the migrations ran');
  t.equal(synchronousLevel(store.database.pragma('synchronous')), 1, 'the connection itself is at NORMAL (1): COMMIT does not fsync on the event loop');

  // Every fdatasync is held until the test lets it go (a spy on Node's FileHandle, which WalSync uses).
  const probe = await open(join(dir, 'probe'), 'w');
  const handles = Object.getPrototypeOf(probe) as { datasync: (this: FileHandle) => Promise<void> };
  await probe.close();
  const datasync = handles.datasync;
  const held: Array<() => void> = [];
  handles.datasync = function (this: FileHandle) {
    return new Promise<void>((resolve) => held.push(resolve)).then(() => datasync.call(this));
  };
  t.teardown(() => {
    handles.datasync = datasync;
  });
  let answered = false;
  const writing = store.write((trx) => trx.insertInto('items').values({ name: 'a', size: 1 }).returningAll().executeTakeFirstOrThrow()).then((row) => {
    answered = true;
    return row;
  });
  const deadline = Date.now() + 5000;
  while (held.length === 0 && !answered && Date.now() < deadline) await sleep(5);
  t.ok(held.length > 0, 'a flush of the WAL starts after the commit');
  await sleep(50);
  const peer = openSqlite({ path: join(dir, 'full.db'), synchronous: 'NORMAL' });
  t.equal((peer.prepare('SELECT count(*) AS n FROM items').get() as { n: number }).n, 1, 'the change is committed in SQLite');
  peer.close();
  t.notOk(answered, 'but not answered while the WAL flush after its commit is under way');
  handles.datasync = datasync;
  for (const release of held) release();
  const row = await writing;
  t.match(row, { name: 'a', size: 1 }, 'it is answered once the flush is done');
  const rows = await Promise.all(Array.from({ length: 20 }, (_, i) => store.write((trx) => trx.insertInto('items').values({ name: `b${i}`, size: i }).returning('id').executeTakeFirstOrThrow())));
  t.equal(new Set(rows.map((r) => r.id)).size, 20, 'changes arriving together are all committed');
});

t.test('at NORMAL or EXTRA the connection keeps the level asked for', async (t) => {
  const dir = tempDir(t);
  for (const [level, expected] of [['NORMAL', 1], ['EXTRA', 3]] as const) {
    const store = await openSqliteStore<TestDatabase>({ path: join(dir, `${level}.db`), synchronous: level, migrations });
    t.equal(synchronousLevel(store.database.pragma('synchronous')), expected, `${level} stays ${level}`);
    await store.write((trx) => trx.insertInto('items').values({ name: 'x', size: 1 }).execute());
    await store.close();
  }
});

t.test('group commit answers a batch only once it is durable; changes arriving during its flush share the next commit, right after it; drain waits for the flushes', async (t) => {
  const db = await itemsDatabase(t, 'group');
  const { committer, flushes, batches } = committerWithHeldFlushes(db);
  const insert = (name: string) => committer.run((trx) => trx.insertInto('items').values({ name, size: 1 }).execute());
  const count = async () => (await db.selectFrom('items').selectAll().execute()).length;

  let firstAnswered = false;
  const first = insert('first').then(() => (firstAnswered = true));
  while (flushes.length < 1) await turns(1);
  t.equal(await count(), 1, 'the first change is committed');
  t.notOk(firstAnswered, 'but not answered while its flush runs');

  // Three changes, each in a turn of its own, while the first flush runs.
  const later: Array<Promise<unknown>> = [];
  for (const name of ['second', 'third', 'fourth']) {
    later.push(insert(name));
    await turns(3);
  }
  t.equal(flushes.length, 1, 'no commit while the flush runs');
  t.equal(await count(), 1, 'the changes that arrived meanwhile wait');
  flushes[0]?.resolve();
  await first;
  t.ok(firstAnswered, 'the first change is answered once its flush is done');
  while (flushes.length < 2) await turns(1);
  t.equal(await count(), 4, 'then they are committed');
  t.same(batches, [1, 3], 'together, in one commit');

  let drained = false;
  const draining = committer.drain().then(() => (drained = true));
  await sleep(20);
  t.notOk(drained, 'drain waits for the flush under way');
  flushes[1]?.resolve();
  await Promise.all(later);
  await draining;
  t.ok(drained, 'and ends once it is done');
});

t.test('changes past maxBatch do not wait for the flush under way', async (t) => {
  const db = await itemsDatabase(t, 'full-batch');
  const flushes: Array<ReturnType<typeof deferred>> = [];
  const batches: number[] = [];
  const committer = new GroupCommitter(db, {
    maxBatch: 2,
    durable: () => {
      const flush = deferred();
      flushes.push(flush);
      return flush.promise;
    },
    instruments: { batchCommitted: (size) => batches.push(size), walFlushed: () => undefined },
  });
  const insert = (name: string) => committer.run((trx) => trx.insertInto('items').values({ name, size: 1 }).execute());
  const all = [insert('a')];
  while (flushes.length < 1) await turns(1);
  all.push(insert('b'), insert('c'));
  while (flushes.length < 2) await turns(1);
  t.same(batches, [1, 2], 'a full batch commits while the first flush still runs');
  for (const flush of flushes) flush.resolve();
  await Promise.all(all);
});

t.test('WalSync flushes a real WAL file, shares flushes asked for while one runs, and refuses after close', async (t) => {
  const path = join(tempDir(t), 'wal.db');
  const database = openSqlite({ path, synchronous: 'NORMAL' });
  t.teardown(() => database.close());
  database.exec('CREATE TABLE x (v INTEGER)');
  database.prepare('INSERT INTO x VALUES (1)').run();
  const wal = new WalSync(`${path}-wal`);
  await wal.flush();
  t.pass('a flush of the WAL file completes');
  const together = await Promise.allSettled(Array.from({ length: 10 }, () => wal.flush()));
  t.ok(
    together.every((r) => r.status === 'fulfilled'),
    'ten flushes asked for at once all complete',
  );
  await wal.close();
  await t.rejects(wal.flush(), /closed/, 'a flush after close is refused');

  const missing = new WalSync(join(tempDir(t), 'nothing-here.db-wal'));
  await t.rejects(missing.flush(), /ENOENT/, 'a missing WAL file is an error, not a silent success');
});

t.test('a prepared query is compiled once and runs with new values each time; constants in it stay', async (t) => {
  const database = openSqlite({ path: ':memory:', synchronous: 'NORMAL' });
  const db = createKysely<TestDatabase>(database);
  t.teardown(() => db.destroy());
  await migrations['001'].up(db as unknown as Kysely<unknown>);
  let builds = 0;
  const insert = prepareQuery<TestDatabase, { name: string; size: number }, { id: number; name: string; size: number }>((db, param) => {
    builds += 1;
    return db.insertInto('items').values({ name: param('name'), size: param('size') }).returningAll();
  });
  const bigOnes = prepareQuery<TestDatabase, { size: number }, { name: string }>((db, param) =>
    db.selectFrom('items').select('name').where('size', '>=', param('size')).where('name', '!=', 'ignored').orderBy('size'),
  );
  const a = await insert.takeFirst(db, { name: 'a', size: 1 });
  const b = await insert.takeFirst(db, { name: 'b', size: 5 });
  await insert.execute(db, { name: 'ignored', size: 9 });
  t.match(a, { name: 'a', size: 1 });
  t.match(b, { name: 'b', size: 5 });
  t.equal(builds, 1, 'the query was built and compiled once for three runs');
  t.same((await bigOnes.execute(db, { size: 2 })).rows, [{ name: 'b' }], 'the constant (name != ignored) is kept, the value (size >= 2) filled in');
  t.same((await bigOnes.execute(db, { size: 0 })).rows, [{ name: 'a' }, { name: 'b' }], 'and a new value gives a new answer');
  const inTransaction = await db.transaction().execute((trx) => insert.takeFirst(trx, { name: 'c', size: 3 }));
  t.match(inTransaction, { name: 'c', size: 3 }, 'it runs inside a transaction too');
  t.equal(await bigOnes.takeFirst(db, { size: 100 }), undefined, 'takeFirst of no rows is undefined');
});

t.test('in a group commit a change that fails rolls back only its own writes', async (t) => {
  const db = await itemsDatabase(t, 'savepoints');
  const committer = new GroupCommitter(db);
  const results = await Promise.allSettled([
    committer.run((trx) => trx.insertInto('items').values({ name: 'first', size: 1 }).execute()),
    committer.run(async (trx) => {
      await trx.insertInto('items').values({ name: 'failing', size: 2 }).execute();
      throw new Error('refused after writing');
    }),
    committer.run((trx) => trx.insertInto('items').values({ name: 'third', size: 3 }).execute()),
  ]);
  t.same(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled'], 'each change is answered on its own');
  const names = (await db.selectFrom('items').select('name').orderBy('id').execute()).map((r) => r.name);
  t.same(names, ['first', 'third'], 'the failed change left nothing behind; the others are committed');
});

t.test('a refused change, and a read, wait for the flush of what was committed before them', async (t) => {
  const db = await itemsDatabase(t, 'barrier');
  const { committer, flushes } = committerWithHeldFlushes(db);
  const committed = committer.run((trx) => trx.insertInto('items').values({ name: 'first', size: 1 }).execute());
  while (flushes.length < 1) await new Promise((resolve) => setImmediate(resolve));

  let readAnswered = false;
  const read = committer.settled().then(() => (readAnswered = true));
  let refusalAnswered = false;
  const refused = committer
    .run(async (trx) => {
      const rows = await trx.selectFrom('items').selectAll().execute();
      throw new Error(`refused, having seen ${rows.length} item`);
    })
    .catch((error: unknown) => {
      refusalAnswered = true;
      return error;
    });
  await sleep(20);
  t.notOk(readAnswered, 'a read does not answer while the commit it may have seen is being flushed');
  t.notOk(refusalAnswered, 'nor does a refusal based on it');
  flushes[0]?.resolve();
  await Promise.all([committed, read]);
  // The refusal ran after that flush; it waits for its own batch's flush too.
  while (flushes.length < 2) await turns(1);
  t.notOk(refusalAnswered, 'a refusal waits for the flush of its own batch');
  flushes[1]?.resolve();
  t.match(await refused, /having seen 1 item/, 'both answer once it is durable');
  t.ok(readAnswered && refusalAnswered);
  await committer.settled();
  t.pass('with nothing in flight, settled() resolves at once');
});

t.test('a failed flush stops the committer: nobody is told a change is done, onFatal runs once, later changes are refused', async (t) => {
  const db = await itemsDatabase(t, 'fatal');
  const fatal: unknown[] = [];
  const committer = new GroupCommitter(db, {
    durable: () => Promise.reject(new Error('EIO: flush failed')),
    onFatal: (error) => fatal.push(error),
  });
  const changes = await Promise.allSettled([
    committer.run((trx) => trx.insertInto('items').values({ name: 'a', size: 1 }).execute()),
    committer.run((trx) => trx.insertInto('items').values({ name: 'b', size: 1 }).execute()),
  ]);
  t.same(changes.map((c) => c.status), ['rejected', 'rejected'], 'the changes of the batch are not answered as done');
  t.equal(fatal.length, 1, 'onFatal was called once');
  await t.rejects(committer.run(async () => 'more'), /EIO/, 'a later change is refused without running');
});

t.test('after drain starts, new changes are refused and the ones under way finish', async (t) => {
  const store = await openSqliteStore<TestDatabase>({ path: join(tempDir(t), 'drain.db'), synchronous: 'FULL', migrations });
  const underWay = store.write((trx) => trx.insertInto('items').values({ name: 'under way', size: 1 }).execute());
  const closing = store.close();
  await t.rejects(store.write(async () => 'late'), /closing/, 'a change asked for while closing is refused with a clear error');
  await underWay;
  await closing;
  t.pass('the change under way was committed before the database closed');
});

t.test('what a change records is applied only when it commits, also when changes share one group commit and one of them fails', async (t) => {
  const { changeRecorder } = await import('../platform/metrics-figures.js');
  const dir = tempDir(t);
  const store = await openSqliteStore<TestDatabase>({ path: join(dir, 'recorded.db'), synchronous: 'FULL', migrations });
  t.teardown(() => store.close());
  const recorder = changeRecorder<{ applied: string[] }>();
  const metrics = { applied: [] as string[] };
  const write = recorder.track(store.write, metrics);
  const change = (name: string, fail: boolean) =>
    write(async (trx) => {
      recorder.record(trx, (m) => m.applied.push(`${name} before`));
      await trx.insertInto('items').values({ name, size: 1 }).execute();
      await sleep(1); // the other changes of the batch wait meanwhile
      recorder.record(trx, (m) => m.applied.push(`${name} after`));
      if (fail) throw new Error(`${name} fails`);
    });
  const outcomes = await Promise.allSettled([change('a', false), change('b', true), change('c', false)]);
  t.same(outcomes.map((o) => o.status), ['fulfilled', 'rejected', 'fulfilled']);
  t.same(metrics.applied.sort(), ['a after', 'a before', 'c after', 'c before'], "each change's own records, none of the failed one's");
  const names = (await store.db.selectFrom('items').select('name').orderBy('name').execute()).map((row) => row.name);
  t.same(names, ['a', 'c'], 'the failed change left nothing behind');
  recorder.record(store.db, (m) => m.applied.push('outside'));
  t.notOk(metrics.applied.includes('outside'), 'a change outside a tracked write records nothing');
});
