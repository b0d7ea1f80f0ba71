/**
 * `node dist/bench/ab.js [--a DIST] [--b DIST] [--a-env NAME=VALUE ...] [--b-env NAME=VALUE ...] [--without-subscriber A|B] [--rounds N] [--seconds S]`:
 * two builds (or two configurations) of EventSync side by side, for an optimisation's before and
 * after from one run. Each side runs its own event-service and ticket-service (SQLite, one webhook
 * subscriber each unless `--without-subscriber` names the side, metrics on, as `npm run bench` runs them) on a copy of one seeded catalogue. The
 * purchase storm runs at 64 and 16 connections in rounds that alternate the sides (A B, then B A, ...),
 * so both see the machine in the same minute; each round reports purchases/s, p99 and the CPU each
 * purchase cost in each service. The figures to trust are the medians of CPU per purchase: throughput
 * drifts with the machine, CPU per purchase much less. How much less: this build against itself
 * (4 rounds, 2026-12-01) gave ticket-service 0.98 and 1.05, event-service 0.94 and 1.03, throughput
 * 0.92 and 1.00 (64 and 16 connections), so a change under about 8% does not show; one round alone
 * varied by 20%.
 */
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startCpuAccounting } from './accounting.js';
import type { CannonResult, CannonSpec } from './load-worker.js';
import { runWorker, startServer, stopAllChildren, type RunningServer } from './processes.js';
import { median } from './median.js';
import { startWebhookSubscriber } from './receiver.js';
import { SMALL_CATALOGUE, seedEventDatabase } from './seed.js';
import { ticketCount } from './ticket-count.js';

const { values } = parseArgs({
  options: {
    a: { type: 'string' },
    b: { type: 'string' },
    'a-env': { type: 'string', multiple: true, default: [] },
    'b-env': { type: 'string', multiple: true, default: [] },
    rounds: { type: 'string', default: '4' },
    seconds: { type: 'string', default: '5' },
    'without-subscriber': { type: 'string', multiple: true, default: [] },
  },
});
const ROUNDS = Number(values.rounds);
const SECONDS = Number(values.seconds);
const CONNECTIONS = [64, 16] as const;

const pairs = (list: string[]): Record<string, string> =>
  Object.fromEntries(
    list.map((item) => {
      const at = item.indexOf('=');
      if (at < 1) throw new Error(`--a-env/--b-env take NAME=VALUE, not ${item}`);
      return [item.slice(0, at), item.slice(at + 1)];
    }),
  );

interface Side {
  name: 'A' | 'B';
  event: RunningServer;
  ticket: RunningServer;
  /** Stops its subscriber, if it has one. */
  stopSubscriber: () => Promise<unknown>;
}

interface Round {
  perSecond: number;
  p99: number;
  ticketMs: number;
  eventMs: number;
}

async function startSide(name: 'A' | 'B', directory: string, seededPath: string, root: string | undefined, extra: Record<string, string>): Promise<Side> {
  const eventDb = join(directory, `${name}-events.db`);
  copyFileSync(seededPath, eventDb);
  const env: Record<string, string> = {
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    SERVICE_TOKEN: randomBytes(32).toString('hex'),
    EVENT_DB_PATH: eventDb,
    TICKET_DB_PATH: join(directory, `${name}-tickets.db`),
    RESERVATION_TTL_SECONDS: '3600',
    ...extra,
  };
  const launch = (service: string) => ({ name: `${name} ${service}`, script: `${service}/server.js`, ...(root === undefined ? {} : { root: resolve(root) }), reportListening: true });
  const event = await startServer({ ...launch('event-service'), env: { ...env, EVENT_SERVICE_PORT: '0' } });
  const ticket = await startServer({ ...launch('ticket-service'), env: { ...env, EVENT_SERVICE_URL: event.url, TICKET_SERVICE_PORT: '0' } });
  const subscriber = values['without-subscriber'].includes(name) ? undefined : await startWebhookSubscriber(ticket.url, `bench ab: side ${name}`);
  return { name, event, ticket, stopSubscriber: async () => subscriber?.stop() };
}

async function storm(side: Side, eventIds: number[], connections: number): Promise<Round> {
  const spec: CannonSpec = { kind: 'cannon', url: side.ticket.url, connections, durationSeconds: SECONDS, warmupSeconds: 1, plan: { kind: 'purchase', path: '/tickets', eventIds } };
  const before = await ticketCount(side.ticket.url);
  const cpu = startCpuAccounting({ services: { 'event-service': side.event.process.pid, 'ticket-service': side.ticket.process.pid } });
  const result = await runWorker<CannonResult>(spec, (SECONDS + 31) * 1000);
  const account = cpu.end(result.cpuSeconds);
  // Every ticket the window made (the warm-up's too, which the CPU window also covers).
  const purchases = (await ticketCount(side.ticket.url)) - before;
  const cpuMs = (group: string) => ((account?.cpuSeconds[group] ?? 0) * 1000) / Math.max(1, purchases);
  return { perSecond: result.okPerSecond, p99: result.latencyMs.p99, ticketMs: cpuMs('ticket-service'), eventMs: cpuMs('event-service') };
}

async function main(): Promise<void> {
  const directory = mkdtempSync(join(os.tmpdir(), 'eventsync-ab-'));
  try {
    const seededPath = join(directory, 'seed.db');
    const seeded = await seedEventDatabase({ store: 'sqlite', path: seededPath }, SMALL_CATALOGUE);
    const sides = [await startSide('A', directory, seededPath, values.a, pairs(values['a-env'])), await startSide('B', directory, seededPath, values.b, pairs(values['b-env']))] as const;
    console.log(`A: ${values.a ?? 'this dist/'} ${values['a-env'].join(' ')}\nB: ${values.b ?? 'this dist/'} ${values['b-env'].join(' ')}`);
    for (const connections of CONNECTIONS) {
      const rounds: Record<'A' | 'B', Round[]> = { A: [], B: [] };
      for (let round = 0; round < ROUNDS; round += 1) {
        const order = round % 2 === 0 ? sides : ([sides[1], sides[0]] as const);
        for (const side of order) {
          const result = await storm(side, seeded.stormEventIds, connections);
          rounds[side.name].push(result);
          console.log(
            `round ${round + 1}, ${connections} connections, ${side.name}: ${result.perSecond.toFixed(0)} purchases/s, p99 ${result.p99.toFixed(1)} ms, CPU per purchase ticket-service ${result.ticketMs.toFixed(3)} ms + event-service ${result.eventMs.toFixed(3)} ms`,
          );
        }
      }
      const summary = (name: 'A' | 'B') => {
        const list = rounds[name];
        return {
          perSecond: median(list.map((r) => r.perSecond)),
          p99: median(list.map((r) => r.p99)),
          ticketMs: median(list.map((r) => r.ticketMs)),
          eventMs: median(list.map((r) => r.eventMs)),
        };
      };
      const a = summary('A');
      const b = summary('B');
      console.log(
        `${connections} connections, medians: A ${a.perSecond.toFixed(0)}/s p99 ${a.p99.toFixed(1)} ms CPU ${a.ticketMs.toFixed(3)} + ${a.eventMs.toFixed(3)} ms; ` +
          `B ${b.perSecond.toFixed(0)}/s p99 ${b.p99.toFixed(1)} ms CPU ${b.ticketMs.toFixed(3)} + ${b.eventMs.toFixed(3)} ms; ` +
          `B/A throughput ${(b.perSecond / a.perSecond).toFixed(2)}, ticket-service CPU ${(b.ticketMs / a.ticketMs).toFixed(2)}, event-service CPU ${(b.eventMs / a.eventMs).toFixed(2)}`,
      );
    }
    for (const side of sides) await side.stopSubscriber();
  } finally {
    await stopAllChildren();
    rmSync(directory, { recursive: true, force: true });
  }
}

main().catch(async (error: unknown) => {
  console.error(error);
  await stopAllChildren();
  process.exitCode = 1;
});
