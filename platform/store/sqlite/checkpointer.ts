/**
 * WAL checkpoints off the event loop. By default SQLite checkpoints inside the COMMIT that takes the
 * WAL past 1,000 pages: on the thread that runs it, the service's one event loop, it copies those
 * pages into the database file and syncs the WAL and the file (at NORMAL), serving nobody meanwhile.
 * Measured on the delivery rows of a purchase (.scratch microbench, 60,000 deliveries, 4 per
 * commit): the commit's share went from 65-83 µs to 25 µs per delivery without it.
 *
 * Here a worker thread with its own connection (checkpoint-worker.ts) runs PASSIVE checkpoints every
 * `intervalMs`. The service's connection still checkpoints on its own once the WAL passes
 * `VALVE_PAGES`: while writes never pause, the WAL can only start again from its beginning after a
 * checkpoint that nothing was written during, which the worker's rarely are under load; by then the
 * worker has copied nearly everything, so that checkpoint is short. It also bounds the WAL if the
 * worker fails (its errors are reported, not fatal: nothing answered depends on it).
 */
import { Worker } from 'node:worker_threads';
import type Database from 'better-sqlite3';

/** The WAL size, in pages, past which the service's own connection checkpoints (40 MB at 4 KiB pages). */
export const VALVE_PAGES = 10_000;

export class WalCheckpointer {
  private readonly worker: Worker;
  private readonly exited: Promise<void>;

  constructor(
    database: Database.Database,
    path: string,
    onError: (error: Error) => void,
    intervalMs = 100,
  ) {
    database.pragma(`wal_autocheckpoint = ${VALVE_PAGES}`);
    this.worker = new Worker(new URL('./checkpoint-worker.js', import.meta.url), { workerData: { path, intervalMs } });
    // It never keeps a process alive: a service stops it in close(), a test that forgets is not held up.
    this.worker.unref();
    this.worker.on('message', (message: { error?: string }) => {
      if (message.error) onError(new Error(`a WAL checkpoint failed (the service's own connection checkpoints past ${VALVE_PAGES} pages): ${message.error}`));
    });
    this.worker.on('error', (error: unknown) => onError(error instanceof Error ? error : new Error(`the WAL checkpointer stopped: ${String(error)}`)));
    this.exited = new Promise((resolve) => this.worker.once('exit', () => resolve()));
  }

  /** Stops the worker and closes its connection (before the service's own closes, so that one is the last and removes the WAL). */
  async close(): Promise<void> {
    // Held until it has gone (an unreferenced thread would let the process end first).
    this.worker.ref();
    this.worker.postMessage('stop');
    await this.exited;
  }
}
