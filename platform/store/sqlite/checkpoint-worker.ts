/**
 * The WAL checkpointer's thread (platform/store/sqlite/checkpointer.ts): its own connection to the
 * service's database, copying committed pages from the WAL into the database file every
 * `intervalMs`, with PASSIVE checkpoints (they wait for no reader or writer, and hold the writer up
 * not at all). The connection runs at NORMAL, where SQLite syncs the WAL before a checkpoint and the
 * database file after it: that I/O, and the copying, happen here, not on the service's event loop.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

const { path, intervalMs } = workerData as { path: string; intervalMs: number };
const port = parentPort;
if (!port) throw new Error('checkpoint-worker.js runs as a worker thread');

const describe = (error: unknown): string => (error instanceof Error ? error.message : String(error));

let database: Database.Database | undefined;
try {
  database = new Database(path, { fileMustExist: true });
  database.pragma('synchronous = NORMAL');
  // This connection makes no commits of its own, and a PASSIVE checkpoint waits for no lock.
  database.pragma('busy_timeout = 0');
} catch (error) {
  port.postMessage({ error: describe(error) });
  database = undefined;
}

let timer: NodeJS.Timeout | undefined;

function checkpoint(): void {
  try {
    database?.pragma('wal_checkpoint(PASSIVE)');
  } catch (error) {
    port?.postMessage({ error: describe(error) });
  }
  timer = setTimeout(checkpoint, intervalMs);
}

port.on('message', (message: unknown) => {
  if (message !== 'stop') return;
  clearTimeout(timer);
  database?.close();
  port.close();
});
if (database) timer = setTimeout(checkpoint, intervalMs);
