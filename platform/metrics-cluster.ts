/**
 * One scrape for all workers (WORKERS above 1). The worker that received `GET /metrics` asks the
 * primary over the cluster's IPC channel; the primary asks every worker for its registry as JSON and
 * its database figures, aggregates the metrics as prom-client's AggregatorRegistry does (counters and
 * histograms summed; Node's process metrics by their own aggregators) and answers with the text. No
 * extra port: the scrape reaches whichever worker the shared socket hands it to, as any request does.
 *
 * Database figures are never multiplied by the number of workers. Each worker counts only its own
 * changes (which may be negative: it can cancel a ticket another worker sold), and reports its
 * start-up read to the primary, which keeps the read that finished first: no worker serves anything
 * before its own read finished, so that read contains none of the changes the workers count, and
 * figure = earliest read + Σ every worker's changes, exactly. Workers also push their changes to the
 * primary every second, so a worker that dies takes at most its last second of changes with it (the
 * primary keeps the rest). The figures count the changes made through this service's processes: a
 * second host behind a load balancer has figures of its own.
 */
import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry, Registry, type MetricObjectWithValues, type MetricValue } from 'prom-client';

type MetricJson = MetricObjectWithValues<MetricValue<string>>;
import { FigureSet, registerFigureGauges, type FigureGauge, type FigureSnapshot } from './metrics-figures.js';
import type { ServiceMetrics } from './metrics.js';

const SCRAPE = 'eventsync:metrics:scrape';
const TEXT = 'eventsync:metrics:text';
const COLLECT = 'eventsync:metrics:collect';
const REPORT = 'eventsync:metrics:report';
const BASELINE = 'eventsync:metrics:baseline';
const FIGURES = 'eventsync:metrics:figures';

/** How long the primary waits for workers' reports; a worker that does not answer is left out of that scrape. */
const COLLECT_TIMEOUT_MS = 3000;
const PUSH_INTERVAL_MS = 1000;

type Message =
  | { type: typeof SCRAPE; id: number }
  | { type: typeof TEXT; id: number; text?: string; error?: string }
  | { type: typeof COLLECT; id: number }
  | { type: typeof REPORT; id: number; metrics: MetricJson[]; figures: FigureSnapshot }
  | { type: typeof BASELINE; readAt: number; figures: FigureSnapshot }
  | { type: typeof FIGURES; figures: FigureSnapshot };

const isMessage = (value: unknown): value is Message =>
  typeof value === 'object' && value !== null && typeof (value as { type?: unknown }).type === 'string' && (value as { type: string }).type.startsWith('eventsync:metrics:');

// Worker side

let scrapes = 0;
const waitingScrapes = new Map<number, { resolve: (text: string) => void; reject: (error: Error) => void }>();

/** In a worker: answers the primary's requests for this worker's metrics, and pushes its figures every second. */
export function answerPrimary(metrics: ServiceMetrics): void {
  process.on('message', (message: unknown) => {
    if (!isMessage(message)) return;
    if (message.type === COLLECT) {
      void metrics.registry.getMetricsAsJSON().then((json) => process.send?.({ type: REPORT, id: message.id, metrics: json, figures: metrics.figures.snapshot() }));
    } else if (message.type === TEXT) {
      const waiting = waitingScrapes.get(message.id);
      waitingScrapes.delete(message.id);
      if (message.text !== undefined) waiting?.resolve(message.text);
      else waiting?.reject(new Error(message.error ?? 'the primary could not collect the metrics'));
    }
  });
  let pushed = -1;
  setInterval(() => {
    if (metrics.figures.changes === pushed) return;
    pushed = metrics.figures.changes;
    process.send?.({ type: FIGURES, figures: metrics.figures.snapshot() });
  }, PUSH_INTERVAL_MS).unref();
}

/** In a worker: the start-up read of the database figures, for the primary. */
export function reportFiguresBaseline(figures: FigureSnapshot, readAt: number): void {
  process.send?.({ type: BASELINE, readAt, figures });
}

/** In a worker: every worker's metrics, aggregated by the primary. */
export function scrapeThroughPrimary(): Promise<string> {
  scrapes += 1;
  const id = scrapes;
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      waitingScrapes.delete(id);
      reject(new Error('the primary did not answer a metrics scrape in time'));
    }, COLLECT_TIMEOUT_MS * 2);
    waitingScrapes.set(id, {
      resolve: (text) => {
        clearTimeout(timer);
        resolve(text);
      },
      reject: (error) => {
        clearTimeout(timer);
        reject(error);
      },
    });
    process.send?.({ type: SCRAPE, id });
  });
}

// Primary side

/** In the primary: serves workers' scrapes with every worker's metrics, and keeps the database figures. */
export function aggregateWorkerMetrics(figureGauges: FigureGauge[]): void {
  let baseline: { readAt: number; figures: FigureSnapshot } | undefined;
  /** Each live worker's changes, as last reported. */
  const changes = new Map<number, FigureSnapshot>();
  /** The changes of workers that have exited. */
  const retired = new FigureSet();
  let collections = 0;
  const collecting = new Map<number, (worker: Worker, report: Extract<Message, { type: typeof REPORT }>) => void>();

  // The database-derived gauges, registered once: each scrape sets the figures they read.
  let figures = new FigureSet();
  const own = new Registry();
  registerFigureGauges(own, figureGauges, () => figures);
  const collect = async (): Promise<string> => {
    collections += 1;
    const id = collections;
    const workers = Object.values(cluster.workers ?? {}).filter((worker): worker is Worker => worker !== undefined && worker.isConnected());
    const reports = await new Promise<MetricJson[][]>((resolve) => {
      const received: MetricJson[][] = [];
      const finish = () => {
        clearTimeout(timer);
        collecting.delete(id);
        resolve(received);
      };
      const timer = setTimeout(finish, COLLECT_TIMEOUT_MS);
      collecting.set(id, (worker, report) => {
        changes.set(worker.id, report.figures);
        received.push(report.metrics);
        if (received.length === workers.length) finish();
      });
      for (const worker of workers) worker.send({ type: COLLECT, id });
      if (workers.length === 0) finish();
    });
    figures = new FigureSet();
    if (baseline) figures.merge(baseline.figures);
    figures.merge(retired.snapshot());
    for (const snapshot of changes.values()) figures.merge(snapshot);
    return Registry.merge([AggregatorRegistry.aggregate(reports), own]).metrics();
  };

  cluster.on('message', (worker: Worker, message: unknown) => {
    if (!isMessage(message)) return;
    if (message.type === REPORT) collecting.get(message.id)?.(worker, message);
    else if (message.type === FIGURES) changes.set(worker.id, message.figures);
    else if (message.type === BASELINE) {
      if (baseline === undefined || message.readAt < baseline.readAt) baseline = { readAt: message.readAt, figures: message.figures };
    } else if (message.type === SCRAPE) {
      collect().then(
        (text) => worker.isConnected() && worker.send({ type: TEXT, id: message.id, text }),
        (error: unknown) => worker.isConnected() && worker.send({ type: TEXT, id: message.id, error: error instanceof Error ? error.message : String(error) }),
      );
    }
  });
  cluster.on('exit', (worker) => {
    const last = changes.get(worker.id);
    if (last) retired.merge(last);
    changes.delete(worker.id);
  });
}
