/**
 * `node dist/bench/floor.js [--rounds N] [--seconds S] [--without-delivery]`: the purchase storm's floor against the
 * reference (bench/floor-server.ts): how close to two bare Fastify hops a purchase can come on this
 * machine when it writes, durably, the rows EventSync's purchase writes, with none of its own
 * bookkeeping. Like `npm run bench`'s storms, the floor delivers each `ticket.reserved` to one webhook
 * subscriber (a receiver in this process that answers 204 at once), unless `--without-delivery`.
 * Rounds at 64 and 16 connections, the reference then the floor right after it (the
 * machine drifts), reported as the median ratio with the CPU each floor purchase cost by process.
 * Then the floor of `GET /events/{id}`: a bare route reading the row against the same process's
 * bare `/health`, in interleaved rounds. `npm run bench` runs the same floor in its storm rounds (beside
 * the reference and the storm); this runs it alone, with or without delivery, and the read floor.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startCpuAccounting, sumAccounts, purchaseCosts, type CpuAccount } from './accounting.js';
import type { CannonResult, CannonSpec } from './load-worker.js';
import { runWorker, startServer, stopAllChildren, stopServer, type RunningServer } from './processes.js';
import { floorSideName, startFloor } from './floor-pair.js';
import { median } from './median.js';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' }, seconds: { type: 'string', default: '6' }, 'without-delivery': { type: 'boolean', default: false } } });
const ROUNDS = Number(values.rounds);
const SECONDS = Number(values.seconds);
const CONNECTIONS = [64, 16] as const;

const number = (value: number, digits = 0) => value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

async function pair(script: string, backArgs: string[], frontArgs: (backUrl: string) => string[]): Promise<{ back: RunningServer; front: RunningServer }> {
  const env = { NODE_ENV: 'production' };
  const back = await startServer({ name: `${script} back`, script, args: ['back', ...backArgs], env });
  const front = await startServer({ name: `${script} front`, script, args: ['front', ...frontArgs(back.url)], env });
  return { back, front };
}

async function main(): Promise<void> {
  const directory = mkdtempSync(join(os.tmpdir(), 'eventsync-floor-'));
  try {
    const reference = await pair('bench/reference-server.js', [], (url) => [url]);
    const floor = await startFloor({ directory, delivery: !values['without-delivery'] });
    process.stdout.write(values['without-delivery'] ? 'floor without webhook delivery\n' : 'floor with one webhook subscriber (every ticket.reserved delivered)\n');
    const countTickets = () => floor.tickets();
    const spec = (url: string, connections: number, eventIds: number[]): CannonSpec => ({ kind: 'cannon', url, connections, durationSeconds: SECONDS, warmupSeconds: 1, plan: { kind: 'purchase', path: '/tickets', eventIds } });
    const timeout = (SECONDS + 31) * 1000;
    for (const connections of CONNECTIONS) {
      const ratios: number[] = [];
      const p99s: number[] = [];
      const accounts: Array<CpuAccount | undefined> = [];
      let purchases = 0;
      for (let round = 0; round < ROUNDS; round += 1) {
        const referenceRun = await runWorker<CannonResult>(spec(reference.front.url, connections, floor.eventIds), timeout);
        const ticketsBefore = countTickets();
        const cpu = startCpuAccounting({ services: { 'event-service': floor.back.process.pid, 'ticket-service': floor.front.process.pid } });
        const floorRun = await runWorker<CannonResult>(spec(floor.url, connections, floor.eventIds), timeout);
        accounts.push(cpu.end(floorRun.cpuSeconds));
        // Every ticket the window made (the warm-up's too, which the CPU window also covers).
        purchases += countTickets() - ticketsBefore;
        ratios.push(floorRun.okPerSecond / referenceRun.okPerSecond);
        p99s.push(floorRun.latencyMs.p99);
        process.stdout.write(`round ${round + 1}, ${connections} connections: reference ${number(referenceRun.okPerSecond)} req/s, floor ${number(floorRun.okPerSecond)} purchases/s (p99 ${floorRun.latencyMs.p99} ms, errors ${floorRun.non2xx + floorRun.errors}) = ${ratios.at(-1)?.toFixed(2)}\n`);
      }
      const costs = purchaseCosts(purchases, sumAccounts(accounts), os.cpus().length);
      const perProcess = Object.entries(costs.cpuMsPerPurchase)
        .map(([group, msEach]) => `${floorSideName(group)} ${msEach.toFixed(3)}`)
        .join(', ');
      process.stdout.write(`floor at ${connections} connections: median ratio ${median(ratios).toFixed(2)}, median p99 ${median(p99s)} ms; CPU per purchase (ms): ${perProcess}\n`);
    }
    const readerServer = await startServer({ name: 'floor reader', script: 'bench/floor-server.js', args: ['reader', floor.eventsPath], env: { NODE_ENV: 'production' } });
    const readRatios: number[] = [];
    for (let round = 0; round < ROUNDS; round += 1) {
      const read = (plan: CannonSpec['plan']) => runWorker<CannonResult>({ kind: 'cannon', url: readerServer.url, connections: 64, durationSeconds: 4, warmupSeconds: 1, plan } satisfies CannonSpec, 40_000);
      const health = await read({ kind: 'get', path: '/health' });
      const byId = await read({ kind: 'get-by-id', pathPrefix: '/events/', minId: floor.catalogue.firstId, maxId: floor.catalogue.lastId });
      readRatios.push(byId.okPerSecond / health.okPerSecond);
      process.stdout.write(`round ${round + 1}, reads: /health ${number(health.okPerSecond)} req/s, GET /events/{id} ${number(byId.okPerSecond)} req/s = ${readRatios.at(-1)?.toFixed(2)}\n`);
    }
    process.stdout.write(`floor of GET /events/{id}: median ratio to /health ${median(readRatios).toFixed(2)}\n`);
    await stopServer(readerServer);
    const received = await floor.stop();
    await stopServer(reference.front);
    await stopServer(reference.back);
    if (!values['without-delivery']) process.stdout.write(`webhook deliveries received: ${number(received)}\n`);
  } finally {
    await stopAllChildren();
    rmSync(directory, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error('floor:', error);
  process.exitCode = 1;
});
