/**
 * The bench's PostgreSQL databases (`--store postgres`): two fresh ones (events, tickets) on the server
 * at TEST_DATABASE_URL, created for one run and dropped at its end, also when it fails or is stopped.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export const SERVER_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface BenchDatabases {
  eventUrl: string;
  ticketUrl: string;
  /** The two databases' names (for the server's statistics). */
  names: { event: string; ticket: string };
  /** Ends their connections and drops both; safe to call more than once. */
  drop: () => Promise<void>;
}

async function admin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: SERVER_URL, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

function urlOf(name: string): string {
  const url = new URL(SERVER_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

export async function createBenchDatabases(): Promise<BenchDatabases> {
  const suffix = randomBytes(4).toString('hex');
  const names = [`eventsync_bench_events_${suffix}`, `eventsync_bench_tickets_${suffix}`];
  const created: string[] = [];
  let dropped: Promise<void> | undefined;
  const drop = () =>
    (dropped ??= admin(async (client) => {
      for (const name of created) {
        await client.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [name]);
        await client.query(`DROP DATABASE IF EXISTS ${name}`);
      }
    }));
  try {
    await admin(async (client) => {
      for (const name of names) {
        await client.query(`CREATE DATABASE ${name}`);
        created.push(name);
      }
    });
  } catch (error) {
    await drop().catch(() => undefined);
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`cannot create the bench databases on ${new URL(SERVER_URL).host} (TEST_DATABASE_URL): ${reason}`);
  }
  const [events, tickets] = names as [string, string];
  return { eventUrl: urlOf(events), ticketUrl: urlOf(tickets), names: { event: events, ticket: tickets }, drop };
}
