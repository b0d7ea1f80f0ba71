/**
 * Group commit: state changes that arrive while the database is busy share one transaction and one
 * fsync. Each change runs in its own savepoint (its failure rolls back only itself), and each caller
 * is answered only after the whole transaction is durably committed. On SQLite at synchronous=FULL a
 * commit costs an fsync, so under load this turns N fsyncs into one without weakening durability.
 */
import type { Kysely, Transaction } from 'kysely';

interface Job<DB> {
  work: (trx: Transaction<DB>) => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

interface Outcome {
  ok: boolean;
  value: unknown;
}

export class GroupCommitter<DB> {
  private queue: Job<DB>[] = [];
  private flushing: Promise<void> | undefined;

  constructor(
    private readonly db: Kysely<DB>,
    private readonly maxBatch = 256,
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
    while (this.flushing) await this.flushing;
  }

  private async flush(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, this.maxBatch);
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
        job.resolve(await this.db.transaction().execute(job.work));
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
        const name = `change_${index}`;
        const savepoint = await trx.savepoint(name).execute();
        try {
          outcomes.push({ ok: true, value: await job.work(savepoint) });
          await savepoint.releaseSavepoint(name).execute();
        } catch (error) {
          outcomes.push({ ok: false, value: error });
          await savepoint.rollbackToSavepoint(name).execute();
          await savepoint.releaseSavepoint(name).execute();
        }
      }
      await trx.commit().execute();
    } catch (error) {
      await trx.rollback().execute().catch(() => undefined);
      for (const job of batch) job.reject(error);
      return;
    }
    batch.forEach((job, index) => {
      const outcome = outcomes[index];
      if (outcome?.ok) job.resolve(outcome.value);
      else job.reject(outcome?.value);
    });
  }
}
