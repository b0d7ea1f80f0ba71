/**
 * `node dist/bench/deliveries.js [--connections N] [--seconds S] [--subscribers K] [--backlog B] [--profile DIR] [--services-from DIST]`:
 * how webhook delivery keeps up with purchases, and what one delivery costs.
 * 1. The storm: purchases at N connections for S seconds (SQLite, metrics on, K receivers that answer
 *    204 at once, each subscribed to every event), with purchases and deliveries counted each second;
 *    then the catch-up after it, with ticket-service's CPU per delivery while it delivers alone.
 * 2. The backlog (with B > 0): ticket-service is stopped, B copies of the storm's last webhook event
 *    are written to its database (not fanned out yet), and it starts again and delivers them, nothing
 *    else running: deliveries/s and ticket-service's CPU per delivery, fan-out included. With
 *    `--profile DIR`, that start runs under `--cpu-prof` and its profile is summarised: it holds
 *    little but delivery.
 * `--services-from DIST` runs the services of another compiled tree (a build before a change);
 * `--env NAME=VALUE` (repeatable) sets the services' environment.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { startCpuAccounting } from './accounting.js';
import type { CannonResult, CannonSpec } from './load-worker.js';
import { runWorker, startServer, stopAllChildren, stopServer, type RunningServer } from './processes.js';
import { summariseProfile } from './profile-summary.js';
import { startWebhookSubscriber } from './receiver.js';
import { SMALL_CATALOGUE, seedEventDatabase } from './seed.js';
import { ticketCount } from './ticket-count.js';

const { values } = parseArgs({
  options: {
    connections: { type: 'string', default: '64' },
    seconds: { type: 'string', default: '8' },
    subscribers: { type: 'string', default: '1' },
    backlog: { type: 'string', default: '0' },
    profile: { type: 'string' },
    'services-from': { type: 'string' },
    env: { type: 'string', multiple: true, default: [] },
  },
});
const CONNECTIONS = Number(values.connections);
const SECONDS = Number(values.seconds);
const SUBSCRIBERS = Number(values.subscribers);
const BACKLOG = Number(values.backlog);
const CATCH_UP_LIMIT_MS = 120_000;
const STALL_MS = 10_000;

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

interface Subscriber {
  received: () => number;
  stop: () => Promise<number>;
}

/** Waits until the subscribers took `goal` deliveries in all (or stalled for 10 s, or 2 minutes passed); the seconds it took. */
async function caughtUp(received: () => number, goal: number): Promise<number> {
  const started = performance.now();
  let last = received();
  let lastProgress = started;
  while (received() < goal && performance.now() - started < CATCH_UP_LIMIT_MS && performance.now() - lastProgress < STALL_MS) {
    await sleep(50);
    if (received() > last) {
      last = received();
      lastProgress = performance.now();
    }
  }
  if (received() < goal) console.log(`  (stopped waiting: ${goal - received()} deliveries missing)`);
  return (performance.now() - started) / 1000;
}

async function main(): Promise<void> {
  const directory = mkdtempSync(join(os.tmpdir(), 'eventsync-deliveries-'));
  const root = values['services-from'] === undefined ? {} : { root: resolve(values['services-from']) };
  const subscribers: Subscriber[] = [];
  try {
    const eventDb = join(directory, 'events.db');
    const ticketDb = join(directory, 'tickets.db');
    const seeded = await seedEventDatabase({ store: 'sqlite', path: eventDb }, SMALL_CATALOGUE);
    const env: Record<string, string> = {
      NODE_ENV: 'production',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      SERVICE_TOKEN: randomBytes(32).toString('hex'),
      EVENT_DB_PATH: eventDb,
      TICKET_DB_PATH: ticketDb,
      RESERVATION_TTL_SECONDS: '3600',
      ...Object.fromEntries(
        values.env.map((pair) => {
          const at = pair.indexOf('=');
          if (at < 1) throw new Error(`--env takes NAME=VALUE, not ${pair}`);
          return [pair.slice(0, at), pair.slice(at + 1)];
        }),
      ),
    };
    const event = await startServer({ name: 'event-service', script: 'event-service/server.js', ...root, reportListening: true, env: { ...env, EVENT_SERVICE_PORT: '0' } });
    const startTicket = (nodeArgs: string[] = [], port = '0') =>
      startServer({ name: 'ticket-service', script: 'ticket-service/server.js', ...root, nodeArgs, reportListening: true, env: { ...env, EVENT_SERVICE_URL: event.url, TICKET_SERVICE_PORT: port } });
    let ticket: RunningServer = await startTicket();
    for (let i = 0; i < SUBSCRIBERS; i += 1) subscribers.push(await startWebhookSubscriber(ticket.url, `bench deliveries: receiver ${i + 1}`));
    const received = () => subscribers.reduce((total, subscriber) => total + subscriber.received(), 0);

    console.log(`storm: ${CONNECTIONS} connections for ${SECONDS} s, ${SUBSCRIBERS} subscriber(s)`);
    const spec: CannonSpec = { kind: 'cannon', url: ticket.url, connections: CONNECTIONS, durationSeconds: SECONDS, warmupSeconds: 0, plan: { kind: 'purchase', path: '/tickets', eventIds: seeded.stormEventIds } };
    const ticketsBefore = await ticketCount(ticket.url);
    const storm = runWorker<CannonResult>(spec, (SECONDS + 30) * 1000);
    const deliveredBefore = received();
    let finished = false;
    // Deliveries during the storm: counted when its load generator ends, not after the reads that follow.
    let deliveredInStorm = 0;
    void storm
      .finally(() => {
        finished = true;
        deliveredInStorm = received() - deliveredBefore;
      })
      .catch(() => undefined);
    const startedAt = performance.now();
    let lastDelivered = received();
    console.log('  second  deliveries in it');
    while (!finished) {
      await Promise.race([sleep(1000), storm.catch(() => undefined)]);
      const now = received();
      console.log(`  ${((performance.now() - startedAt) / 1000).toFixed(1).padStart(6)}  ${String(now - lastDelivered).padStart(15)}`);
      lastDelivered = now;
    }
    const result = await storm;
    const purchases = (await ticketCount(ticket.url)) - ticketsBefore;
    console.log(`  ${result.okPerSecond.toFixed(0)} purchases/s (p99 ${result.latencyMs.p99.toFixed(1)} ms); ${(deliveredInStorm / result.durationSeconds).toFixed(0)} deliveries/s during it; ${purchases * SUBSCRIBERS - deliveredInStorm} deliveries behind at its end`);
    const caughtUpBefore = received();
    const cpu = startCpuAccounting({ services: { 'event-service': event.process.pid, 'ticket-service': ticket.process.pid } });
    const seconds = await caughtUp(received, deliveredBefore + purchases * SUBSCRIBERS);
    const account = cpu.end();
    const caughtUpDeliveries = received() - caughtUpBefore;
    const ticketCpu = account?.cpuSeconds['ticket-service'] ?? 0;
    console.log(
      `  catch-up: ${caughtUpDeliveries} deliveries in ${seconds.toFixed(1)} s (${(caughtUpDeliveries / seconds).toFixed(0)}/s), ticket-service CPU ${((ticketCpu * 1000) / Math.max(1, caughtUpDeliveries)).toFixed(3)} ms per delivery (${ticketCpu.toFixed(2)} s)`,
    );

    if (BACKLOG > 0) {
      const port = String(ticket.port);
      await stopServer(ticket);
      const db = new Database(ticketDb);
      const template = db.prepare(`SELECT type, message_id, ticket_id, payload FROM webhook_events ORDER BY id DESC LIMIT 1`).get() as { type: string; message_id: string; ticket_id: number; payload: string } | undefined;
      if (!template) throw new Error('no webhook event to copy: the storm made no purchase');
      const insert = db.prepare(`INSERT INTO webhook_events (type, message_id, ticket_id, payload, fanned_out, created_at) VALUES (?, ?, ?, ?, 0, ?)`);
      const now = new Date().toISOString();
      db.transaction(() => {
        for (let i = 0; i < BACKLOG; i += 1) insert.run(template.type, `${template.message_id}-${i}`, template.ticket_id, template.payload, now);
      })();
      db.close();
      const profileDir = values.profile === undefined ? undefined : resolve(values.profile);
      if (profileDir) {
        rmSync(profileDir, { recursive: true, force: true });
        mkdirSync(profileDir, { recursive: true });
      }
      const before = received();
      const started = performance.now();
      ticket = await startTicket(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [], port);
      const backlogCpu = startCpuAccounting({ services: { 'event-service': event.process.pid, 'ticket-service': ticket.process.pid } });
      await caughtUp(received, before + BACKLOG * SUBSCRIBERS);
      const backlogAccount = backlogCpu.end();
      const took = (performance.now() - started) / 1000;
      const delivered = received() - before;
      const backlogTicketCpu = backlogAccount?.cpuSeconds['ticket-service'] ?? 0;
      console.log(
        `backlog: ${delivered} deliveries of ${BACKLOG} events in ${took.toFixed(1)} s from the start (${(delivered / took).toFixed(0)}/s), ticket-service CPU ${((backlogTicketCpu * 1000) / Math.max(1, delivered)).toFixed(3)} ms per delivery (${backlogTicketCpu.toFixed(2)} s)`,
      );
      if (profileDir) {
        await stopServer(ticket, 20_000);
        for (const file of readdirSync(profileDir)) if (file.endsWith('.cpuprofile')) console.log(summariseProfile(join(profileDir, file)));
      }
    }
  } finally {
    for (const subscriber of subscribers) await subscriber.stop().catch(() => undefined);
    await stopAllChildren();
    rmSync(directory, { recursive: true, force: true });
  }
}

main().catch(async (error: unknown) => {
  console.error(error);
  await stopAllChildren();
  process.exitCode = 1;
});
