/**
 * `WORKERS=N`: N processes of a service on one port (Node's cluster module shares the listening
 * socket). Only over PostgreSQL: SQLite has one writer per file, and several processes would each
 * keep their own group commit and caches over it. The primary only supervises: it starts the
 * workers, replaces one that dies after it was serving, stops everything if one cannot start (a bad
 * configuration fails the same way in every worker), and on SIGTERM/SIGINT stops the workers
 * gracefully (each within its own shutdown deadline) before it exits.
 */
import cluster, { type Worker } from 'node:cluster';
import { pino } from 'pino';
import { ConfigError } from './config.js';
import { aggregateWorkerMetrics } from './metrics-cluster.js';
import type { FigureGauge } from './metrics-figures.js';

/** Refuses WORKERS above 1 without PostgreSQL, saying why. */
export function checkWorkers(workers: number, databaseUrl: string | undefined, urlVariable: string): void {
  if (workers > 1 && databaseUrl === undefined) {
    throw new ConfigError([
      `WORKERS = ${workers}: more than one process needs PostgreSQL (set ${urlVariable}); SQLite has one writer per file, so a SQLite service runs as one process`,
    ]);
  }
}

/** A little longer than a worker's own shutdown deadline (platform/server.ts). */
const STOP_DEADLINE_MS = 12_000;

/**
 * True in the primary of a multi-process service: it has forked the workers and must not build an
 * app. It also answers the workers' metrics scrapes for all of them (platform/metrics-cluster.ts),
 * with the service's database figures (undefined with METRICS=off: no worker keeps metrics).
 */
export function superviseWorkers(service: string, workers: number, logLevel: string, figureGauges: FigureGauge[] | undefined): boolean {
  if (workers <= 1 || !cluster.isPrimary) return false;
  const log = pino({ level: logLevel, base: { service, role: 'primary' } });
  if (figureGauges) aggregateWorkerMetrics(figureGauges);
  let stopping = false;
  const listening = new WeakSet<Worker>();
  const start = () => {
    const worker = cluster.fork();
    worker.once('listening', () => listening.add(worker));
  };
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) {
      // process.exitCode says why (set when a worker could not start), else 0.
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit();
      return;
    }
    if (!listening.has(worker)) {
      // It never served: whatever stopped it (configuration, database) stops the others too.
      log.error({ pid: worker.process.pid, code, signal }, 'a worker could not start; stopping the service');
      stopping = true;
      for (const other of Object.values(cluster.workers ?? {})) other?.process.kill('SIGTERM');
      process.exitCode = code ?? 1;
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(code ?? 1);
      return;
    }
    log.warn({ pid: worker.process.pid, code, signal }, 'a worker died; starting another');
    start();
  });
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal, workers: Object.keys(cluster.workers ?? {}).length }, 'stopping the workers');
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM');
    setTimeout(() => {
      log.warn('workers did not stop in time; killing them');
      for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGKILL');
      process.exit(1);
    }, STOP_DEADLINE_MS).unref();
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  for (let i = 0; i < workers; i += 1) start();
  log.info({ workers }, `started ${workers} workers`);
  return true;
}
