/**
 * `synchronous=FULL` without blocking the event loop. At FULL, SQLite fsyncs the WAL inside every
 * COMMIT, on the thread that runs it: here, the one event loop, which then serves nobody for the
 * length of an fsync (milliseconds on an ordinary disk). Instead, the connection runs at NORMAL (the
 * WAL is written at COMMIT, synced only before checkpoints) and this flushes the WAL file on libuv's
 * thread pool after each commit; the changes of a commit are answered only once a flush that started
 * after it has finished. An answered change is therefore on disk exactly as at FULL, while other
 * requests go on during the flush, and commits that end while a flush runs share the next one.
 *
 * The WAL file is not replaced while a connection is open (SQLite deletes it only when the last
 * connection closes), so one file handle serves the connection's lifetime. The first flush also
 * syncs the folder, so that a WAL file created at this start is itself on disk (SQLite at FULL does
 * the same). A failed flush is reported to every waiting change: their data may not be on disk, so
 * none of them is answered as done (and platform/store/sqlite/group-commit.ts stops taking changes).
 */
import { open, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';

export class WalSync {
  private handle: Promise<FileHandle> | undefined;
  /** The flush under way, if any. */
  private running: Promise<void> | undefined;
  /** The flush that will start when the running one ends; commits that end meanwhile wait for it. */
  private next: Promise<void> | undefined;
  private closed = false;
  private folderSynced = false;

  constructor(private readonly walPath: string) {}

  /** Resolves once everything written to the WAL before this call is on disk. */
  flush(): Promise<void> {
    if (this.closed) return Promise.reject(new Error('the database is closed'));
    if (this.running === undefined) return this.start();
    // A flush that is already running may have started before the caller's commit: wait for the next.
    this.next ??= this.running.then(
      () => this.start(),
      () => this.start(),
    );
    return this.next;
  }

  /** Waits for the flushes under way, then closes the file handle. */
  async close(): Promise<void> {
    await Promise.allSettled([this.running, this.next]);
    this.closed = true;
    const handle = await this.handle?.catch(() => undefined);
    await handle?.close();
  }

  private start(): Promise<void> {
    this.next = undefined;
    const flushing = this.sync().finally(() => {
      if (this.running === flushing) this.running = undefined;
    });
    this.running = flushing;
    return flushing;
  }

  private async sync(): Promise<void> {
    this.handle ??= open(this.walPath, 'r+');
    let handle: FileHandle;
    try {
      handle = await this.handle;
    } catch (error) {
      this.handle = undefined;
      throw error;
    }
    // fdatasync: the data and the file's size (what recovery needs), as SQLite itself uses on Linux.
    await handle.datasync();
    if (!this.folderSynced) {
      const folder = await open(dirname(this.walPath), 'r');
      try {
        await folder.sync();
      } finally {
        await folder.close();
      }
      this.folderSynced = true;
    }
  }
}
