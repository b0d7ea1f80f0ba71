/**
 * The floor of the purchase storm, started for a run (bench/floor-server.ts says what it does and
 * leaves out): its own seeded events database, the back and front servers, and, with `delivery`,
 * a webhook receiver in this process that answers every delivery with 204 at once (the bench's own
 * subscriber does the same for the services). Used by `npm run bench`'s storm rounds and by
 * `node dist/bench/floor.js`.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { startServer, stopServer, type RunningServer } from './processes.js';
import { startReceiver } from './receiver.js';
import { SMALL_CATALOGUE, seedEventDatabase } from './seed.js';

export interface Floor {
  /** The front, where purchases go (`POST /tickets`). */
  url: string;
  /** Events with seats enough for any storm. */
  eventIds: number[];
  /** Its events database (the reader of bench/floor-server.ts reads it too), and the ids of its catalogue. */
  eventsPath: string;
  catalogue: { firstId: number; lastId: number };
  back: RunningServer;
  front: RunningServer;
  /** Tickets written so far. */
  tickets(): number;
  /** Webhook deliveries its receiver took so far (0 without delivery). */
  delivered(): number;
  /** Stops both servers and the receiver; how many deliveries the receiver took. */
  stop(): Promise<number>;
}

/** How the floor's processes are named in its CPU figures (bench/accounting.ts groups them as the services they stand for). */
export const floorSideName = (group: string): string => (group === 'ticket-service' ? 'front (ticket side)' : group === 'event-service' ? 'back (event side)' : group);

export async function startFloor(options: { directory: string; delivery: boolean }): Promise<Floor> {
  const eventsPath = join(options.directory, 'floor-events.db');
  const ticketsPath = join(options.directory, 'floor-tickets.db');
  const seeded = await seedEventDatabase({ store: 'sqlite', path: eventsPath }, SMALL_CATALOGUE);
  const receiver = options.delivery ? await startReceiver() : undefined;
  const env = { NODE_ENV: 'production' };
  const script = 'bench/floor-server.js';
  const back = await startServer({ name: 'floor back', script, args: ['back', eventsPath], env });
  let front: RunningServer;
  try {
    front = await startServer({ name: 'floor front', script, args: ['front', back.url, ticketsPath, ...(receiver ? [receiver.url] : [])], env });
  } catch (error) {
    await stopServer(back);
    receiver?.stop();
    throw error;
  }
  return {
    url: front.url,
    eventIds: seeded.stormEventIds,
    eventsPath,
    catalogue: { firstId: seeded.catalogue.firstId, lastId: seeded.catalogue.lastId },
    back,
    front,
    delivered: () => receiver?.received() ?? 0,
    tickets: () => {
      const db = new Database(ticketsPath, { readonly: true });
      try {
        return (db.prepare('SELECT count(*) AS n FROM tickets').get() as { n: number }).n;
      } finally {
        db.close();
      }
    },
    stop: async () => {
      await stopServer(front);
      await stopServer(back);
      return receiver?.stop() ?? 0;
    },
  };
}
