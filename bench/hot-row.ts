/**
 * An ESTIMATE for docs/SCALING.md, not product code: what split seat counters would give one event
 * under a mega on-sale on PostgreSQL. Against a scratch database (created on TEST_DATABASE_URL's
 * server, dropped at the end, also on failure or Ctrl-C), 64 connections run hold statements shaped
 * as event-service's (insert the hold and take its seat in one statement, its own transaction,
 * synchronous_commit = on) for a few seconds each, in interleaved rounds:
 * - `spread`: over 100 events (the purchase storm's shape: no two holds wait for one row);
 * - `one row`: every hold on one event's counter row (today's mega on-sale: they queue on its lock);
 * - `split N`: one event whose counter is split into N rows, each hold taking a seat from one picked
 *   at random (a hold would then fall back to the other rows when its row is empty; not measured here).
 * Database work only (no HTTP, no services): it says how much the row lock costs, not what a purchase
 * costs. `node dist/bench/hot-row.js [--seconds S] [--rounds R] [--connections C] [--splits 4,16]`
 */
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { createBenchDatabases, type BenchDatabases } from './databases.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '2' },
    connections: { type: 'string', default: '64' },
    splits: { type: 'string', default: '4,16' },
  },
});
const SECONDS = Math.min(Math.max(Number(values.seconds), 1), 30);
const ROUNDS = Math.min(Math.max(Number(values.rounds), 1), 5);
const CONNECTIONS = Math.min(Math.max(Number(values.connections), 1), 64);
const SPLITS = values.splits.split(',').map(Number).filter((n) => Number.isInteger(n) && n >= 2 && n <= 256);
const SPREAD_EVENTS = 100;

const SCHEMA = `
  CREATE TABLE counters (event_id bigint, slot int, available int NOT NULL CHECK (available >= 0), held int NOT NULL DEFAULT 0, updated_at text, PRIMARY KEY (event_id, slot));
  CREATE TABLE holds (hold_id text PRIMARY KEY, event_id bigint, slot int, quantity int NOT NULL, state text NOT NULL, created_at text NOT NULL);`;

/** The hold and its seat in one statement, as event-service's (store/holds.ts), on one counter row. */
const HOLD = `
  WITH held AS (
    INSERT INTO holds (hold_id, event_id, slot, quantity, state, created_at)
    SELECT $1, event_id, slot, 1, 'HELD', $4 FROM counters WHERE event_id = $2 AND slot = $3 AND available >= 1
    ON CONFLICT (hold_id) DO NOTHING RETURNING event_id, slot
  ), taken AS (
    UPDATE counters SET available = available - 1, held = held + 1, updated_at = $4
    WHERE (event_id, slot) = (SELECT event_id, slot FROM held) AND available >= 1 RETURNING 1
  )
  SELECT 1 / (SELECT count(*) FROM taken)::integer AS taken FROM held`;

interface Layout {
  name: string;
  /** The counter row a hold takes its seat from. */
  pick: () => [eventId: number, slot: number];
}

const layouts: Layout[] = [
  { name: `spread over ${SPREAD_EVENTS} events`, pick: () => [1 + Math.floor(Math.random() * SPREAD_EVENTS), 0] },
  { name: 'one event, one counter row', pick: () => [1_000, 0] },
  ...SPLITS.map((n) => ({ name: `one event, counter split in ${n} rows`, pick: (): [number, number] => [2_000 + n, Math.floor(Math.random() * n)] })),
];

async function run(pool: pg.Pool, layout: Layout): Promise<{ perSecond: number; p99Ms: number }> {
  const latencies: number[] = [];
  const end = performance.now() + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      const client = await pool.connect();
      try {
        while (performance.now() < end) {
          const [eventId, slot] = layout.pick();
          const began = performance.now();
          await client.query({ text: HOLD, values: [randomUUID(), eventId, slot, new Date().toISOString()] });
          latencies.push(performance.now() - began);
        }
      } finally {
        client.release();
      }
    }),
  );
  latencies.sort((a, b) => a - b);
  return { perSecond: latencies.length / SECONDS, p99Ms: latencies[Math.floor(latencies.length * 0.99)] ?? 0 };
}

async function main(): Promise<void> {
  let databases: BenchDatabases | undefined;
  const stop = () => void databases?.drop().finally(() => process.exit(130));
  process.once('SIGINT', stop);
  // Bounded: whatever happens, the run ends (and drops its databases) within a few minutes.
  const limit = setTimeout(stop, (layouts.length * ROUNDS * (SECONDS + 5) + 60) * 1000);
  limit.unref();
  databases = await createBenchDatabases();
  const pool = new pg.Pool({ connectionString: databases.eventUrl, max: CONNECTIONS, options: '-c synchronous_commit=on' });
  try {
    await pool.query(SCHEMA);
    const seats = 10_000_000;
    await pool.query(`INSERT INTO counters (event_id, slot, available) SELECT g, 0, ${seats} FROM generate_series(1, ${SPREAD_EVENTS}) g`);
    await pool.query(`INSERT INTO counters (event_id, slot, available) VALUES (1000, 0, ${seats})`);
    for (const n of SPLITS) await pool.query(`INSERT INTO counters (event_id, slot, available) SELECT ${2_000 + n}, s, ${Math.floor(seats / n)} FROM generate_series(0, ${n - 1}) s`);
    process.stdout.write(`hold statements per second, ${CONNECTIONS} connections, ${SECONDS} s per layout, ${ROUNDS} interleaved rounds (database work only: an estimate)\n`);
    const results = new Map<string, Array<{ perSecond: number; p99Ms: number }>>();
    for (let round = 1; round <= ROUNDS; round += 1) {
      for (const layout of layouts) {
        const result = await run(pool, layout);
        results.set(layout.name, [...(results.get(layout.name) ?? []), result]);
        process.stdout.write(`  round ${round}  ${layout.name.padEnd(36)} ${result.perSecond.toFixed(0).padStart(6)}/s  p99 ${result.p99Ms.toFixed(1)} ms\n`);
      }
    }
    const mean = (name: string) => {
      const runs = results.get(name) ?? [];
      return runs.reduce((sum, r) => sum + r.perSecond, 0) / Math.max(runs.length, 1);
    };
    const spread = mean(layouts[0]?.name ?? '');
    process.stdout.write('mean over the rounds, and as a share of the spread layout:\n');
    for (const layout of layouts) process.stdout.write(`  ${layout.name.padEnd(36)} ${mean(layout.name).toFixed(0).padStart(6)}/s  ${((mean(layout.name) / spread) * 100).toFixed(0)}%\n`);
  } finally {
    await pool.end();
    await databases.drop();
    clearTimeout(limit);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`hot-row: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
