/**
 * Group commit: state changes that arrive while the database is busy share one transaction and one
 * fsync. Each change runs in its own savepoint (its failure rolls back only itself), and each caller
 * is answered only after the whole transaction is durably committed. On SQLite at synchronous=FULL a
 * commit costs an fsync, so under load this turns N fsyncs into one without weakening durability.
 *
 * `durable`, when given, is awaited after each COMMIT before its callers are answered (the WAL flush
 * of platform/store/sqlite/wal-sync.ts). Changes that arrive while a flush is under way gather for the
 * next commit, which runs as soon as that flush ends (or at once, once `maxBatch` have gathered):
 * their answers would wait for the next flush anyway, and one commit for all of them costs less than
 * one each (`node dist/bench/ab.js`, 3 runs: ticket-service 0.92–0.97 and event-service 0.91–0.95 of
 * the CPU per purchase at 16 connections, 15–24% more purchases/s; at 64 connections 0.94–1.03 and
 * 0.86–0.95). Since the WAL is a log, a later batch is never on disk without the earlier ones.
 * Refusals wait for the flush too (they may rest on state committed a moment ago), and so do reads,
 * through `settled`.
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

export interface GroupCommitOptions {
  maxBatch?: number;
  /** Makes everything committed so far durable (the WAL flush of platform/store/sqlite/wal-sync.ts). */
  durable?: () => Promise<void>;
  /**
   * Called once if `durable` fails. Committed data may then be lost, and on Linux a later flush can
   * report success for pages an earlier failure dropped, so nothing more is written: the service
   * should stop (SQLite recovers from the WAL on restart).
   */
  onFatal?: (error: unknown) => void;
  /** Told each batch's size and each durable flush's latency (metrics). */
  instruments?: { batchCommitted(size: number): void; walFlushed(seconds: number): void };
}

export class GroupCommitter<DB> {
  private queue: Job<DB>[] = [];
  private flushing: Promise<void> | undefined;
  /** Commits that may be visible but are not yet durable: their flushes. */
  private settling = new Set<Promise<void>>();
  private failure: unknown;
  private closed = false;

  constructor(
    private readonly db: Kysely<DB>,
    private readonly options: GroupCommitOptions = {},
  ) {}

  /** Runs `work` atomically (in a savepoint of a shared transaction); resolves once it is durable. */
  run<T>(work: (trx: Transaction<DB>) => Promise<T>): Promise<T> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new Error('the database is closing: no more changes are taken'));
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ work, resolve: resolve as (value: unknown) => void, reject });
      // Start on the next turn of the event loop so that changes arriving together share a batch.
      this.flushing ??= new Promise<void>((done) => setImmediate(done)).then(() => this.flush());
    });
  }

  /**
   * Resolves once everything committed so far is durable. A read answers only after it: what it
   * read may have been committed a moment ago, and at synchronous=FULL nobody sees a change before
   * it is on disk.
   */
  async settled(): Promise<void> {
    if (this.settling.size > 0) await Promise.allSettled([...this.settling]);
  }

  /** Refuses new changes, then resolves when everything queued so far is committed and durable (for shutdown). */
  async drain(): Promise<void> {
    this.closed = true;
    while (this.flushing || this.settling.size > 0) {
      await this.flushing;
      await Promise.allSettled([...this.settling]);
    }
  }

  private async flush(): Promise<void> {
    const maxBatch = this.options.maxBatch ?? 256;
    try {
      while (this.queue.length > 0) {
        // While the last commit's flush runs, changes gather for the next commit.
        if (this.queue.length < maxBatch) await this.settled();
        const batch = this.queue.splice(0, maxBatch);
        await this.commitBatch(batch);
      }
    } finally {
      this.flushing = undefined;
    }
  }

  private async commitBatch(batch: Job<DB>[]): Promise<void> {
    this.options.instruments?.batchCommitted(batch.length);
    if (batch.length === 1) {
      // Alone: a plain transaction, no savepoint needed.
      const [job] = batch as [Job<DB>];
      const committed = this.expectCommit();
      try {
        const value = await this.db.transaction().execute(job.work);
        committed.done();
        this.answer(batch, [{ ok: true, value }], committed.durable);
      } catch (error) {
        // Nothing was written, but the refusal may rest on state committed a moment ago.
        committed.done();
        this.answer(batch, [{ ok: false, value: error }], committed.durable);
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
    const committed = this.expectCommit();
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
      committed.done();
      for (const job of batch) job.reject(error);
      return;
    }
    committed.done();
    this.answer(batch, outcomes, committed.durable);
  }

  /**
   * Registers a commit before it happens, so that a read running between the COMMIT and the flush
   * request already waits for it; `done` (after COMMIT, or after a rollback) starts the flush.
   */
  private expectCommit(): { durable: Promise<void>; done: () => void } {
    if (!this.options.durable) return { durable: Promise.resolve(), done: () => undefined };
    let done!: () => void;
    const durable = new Promise<void>((resolve) => (done = resolve)).then(() => this.makeDurable());
    this.settling.add(durable);
    void durable.then(
      () => this.settling.delete(durable),
      () => this.settling.delete(durable),
    );
    return { durable, done };
  }

  private async makeDurable(): Promise<void> {
    if (this.failure !== undefined) throw this.failure;
    try {
      const started = performance.now();
      await this.options.durable?.();
      this.options.instruments?.walFlushed((performance.now() - started) / 1000);
    } catch (error) {
      if (this.failure === undefined) {
        this.failure = error;
        this.options.onFatal?.(error);
      }
      throw error;
    }
  }

  /** Answers a batch once what it committed (or read) is durable; if that fails, nobody is told it is done. */
  private answer(batch: Job<DB>[], outcomes: Outcome[], durable: Promise<void>): void {
    durable.then(
      () =>
        batch.forEach((job, index) => {
          const outcome = outcomes[index];
          if (outcome?.ok) job.resolve(outcome.value);
          else job.reject(outcome?.value);
        }),
      (error: unknown) => {
        for (const job of batch) job.reject(error);
      },
    );
  }
}
