/**
 * Group commit: state changes that arrive while the database is busy share one transaction and one
 * fsync. Each change runs in its own savepoint (its failure rolls back only itself), and each caller
 * is answered only after the whole transaction is durably committed. On SQLite at synchronous=FULL a
 * commit costs an fsync, so under load this turns N fsyncs into one without weakening durability.
 *
 * `durable`, when given, is awaited after each COMMIT before its callers are answered (the WAL flush
 * of platform/wal-sync.ts). The next batch does not wait for it: it runs while the flush is under way,
 * and since the WAL is a log, a later batch is never on disk without the earlier ones.
 */
import { CompiledQuery, type Kysely, type Transaction } from 'kysely';

interface Job<DB> {
  work: (trx: Transaction<DB>) => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/** Savepoint statements by position in a batch, built once (standard SQL: SQLite and PostgreSQL alike). */
const savepointStatements: Array<{ open: CompiledQuery; release: CompiledQuery; rollback: CompiledQuery }> = [];
function savepoint(index: number) {
  let statements = savepointStatements[index];
  if (!statements) {
    const name = `change_${index}`;
    statements = {
      open: CompiledQuery.raw(`SAVEPOINT ${name}`),
      release: CompiledQuery.raw(`RELEASE SAVEPOINT ${name}`),
      rollback: CompiledQuery.raw(`ROLLBACK TO SAVEPOINT ${name}`),
    };
    savepointStatements[index] = statements;
  }
  return statements;
}

interface Outcome {
  ok: boolean;
  value: unknown;
}

export class GroupCommitter<DB> {
  private queue: Job<DB>[] = [];
  private flushing: Promise<void> | undefined;
  /** Batches committed whose callers wait for `durable`. */
  private settling = new Set<Promise<void>>();

  constructor(
    private readonly db: Kysely<DB>,
    private readonly options: { maxBatch?: number; durable?: () => Promise<void> } = {},
  ) {}

  /** Runs `work` atomically (in a savepoint of a shared transaction); resolves once it is durable. */
  run<T>(work: (trx: Transaction<DB>) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ work, resolve: resolve as (value: unknown) => void, reject });
      // Start on the next turn of the event loop so that changes arriving together share a batch.
      this.flushing ??= new Promise<void>((done) => setImmediate(done)).then(() => this.flush());
    });
  }

  /** Resolves when everything queued so far is committed (for shutdown). */
  async drain(): Promise<void> {
    while (this.flushing || this.settling.size > 0) {
      await this.flushing;
      await Promise.all(this.settling);
    }
  }

  private async flush(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, this.options.maxBatch ?? 256);
        await this.commitBatch(batch);
      }
    } finally {
      this.flushing = undefined;
    }
  }

  private async commitBatch(batch: Job<DB>[]): Promise<void> {
    if (batch.length === 1) {
      // Alone: a plain transaction, no savepoint needed.
      const [job] = batch as [Job<DB>];
      try {
        const value = await this.db.transaction().execute(job.work);
        this.answer(batch, [{ ok: true, value }]);
      } catch (error) {
        job.reject(error);
      }
      return;
    }
    const outcomes: Outcome[] = [];
    let trx;
    try {
      trx = await this.db.startTransaction().execute();
    } catch (error) {
      for (const job of batch) job.reject(error);
      return;
    }
    try {
      for (const [index, job] of batch.entries()) {
        const statements = savepoint(index);
        await trx.executeQuery(statements.open);
        try {
          outcomes.push({ ok: true, value: await job.work(trx) });
          await trx.executeQuery(statements.release);
        } catch (error) {
          outcomes.push({ ok: false, value: error });
          await trx.executeQuery(statements.rollback);
          await trx.executeQuery(statements.release);
        }
      }
      await trx.commit().execute();
    } catch (error) {
      await trx.rollback().execute().catch(() => undefined);
      for (const job of batch) job.reject(error);
      return;
    }
    this.answer(batch, outcomes);
  }

  /** Answers a committed batch, once it is durable when that takes a flush. */
  private answer(batch: Job<DB>[], outcomes: Outcome[]): void {
    const settle = () =>
      batch.forEach((job, index) => {
        const outcome = outcomes[index];
        if (outcome?.ok) job.resolve(outcome.value);
        else job.reject(outcome?.value);
      });
    if (!this.options.durable) {
      settle();
      return;
    }
    const settling = this.options.durable().then(settle, (error: unknown) => {
      // Committed but perhaps not on disk: nobody is told that the change is done.
      for (const job of batch) job.reject(error);
    });
    this.settling.add(settling);
    void settling.finally(() => this.settling.delete(settling));
  }
}
