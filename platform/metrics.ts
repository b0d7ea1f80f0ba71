/**
 * `GET /metrics` (DESIGN.md, Observability): a prom-client registry per service with Node's process
 * metrics (event-loop lag, heap, GC), request durations by route template and status class, the
 * service's own counters, and the figures that come from its database (platform/metrics-figures.ts).
 * With WORKERS above 1 a scrape answers for every worker, through the primary (platform/metrics-cluster.ts).
 */
import cluster from 'node:cluster';
import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { FigureSet, registerFigureGauges, type FigureGauge } from './metrics-figures.js';
import { scrapeThroughPrimary, reportFiguresBaseline, answerPrimary } from './metrics-cluster.js';
import type { StoreInstruments } from './store/service-store.js';
import { NotFoundError, UnavailableError } from './errors.js';

const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** A route's template as the spec writes it (`/tickets/{id}`), never the URL asked for. */
const routeLabel = (url: string | undefined): string => (url === undefined ? 'unmatched' : url.replace(/:(\w+)/g, '{$1}'));

export class ServiceMetrics {
  readonly registry = new Registry();
  /** The database figures: in a worker of several, only this worker's changes (the primary adds the start-up read). */
  readonly figures = new FigureSet();
  private readonly requestDuration: Histogram<'method' | 'route' | 'status_class'>;
  /** Histogram children by label values: a request's observation costs a map look-up, not label hashing. */
  private readonly durationChildren = new Map<string, { observe: (value: number) => void }>();
  private readonly clustered = cluster.isWorker;

  constructor(readonly figureGauges: FigureGauge[] = []) {
    collectDefaultMetrics({ register: this.registry });
    this.requestDuration = this.histogram('eventsync_http_request_duration_seconds', 'HTTP requests by route template and status class', ['method', 'route', 'status_class'], DURATION_BUCKETS);
    // A worker's figures are only its own changes: the primary renders the sum (see metrics-cluster.ts).
    if (this.clustered) answerPrimary(this);
    else registerFigureGauges(this.registry, figureGauges, () => this.figures);
  }

  counter<L extends string>(name: string, help: string, labelNames: readonly L[] = []): Counter<L> {
    return new Counter({ name, help, labelNames, registers: [this.registry] });
  }

  histogram<L extends string>(name: string, help: string, labelNames: readonly L[], buckets: number[]): Histogram<L> {
    return new Histogram({ name, help, labelNames, buckets, registers: [this.registry] });
  }

  /** A gauge read when scraped (a connection pool's state): per process, so workers' values add up. */
  gauge<L extends string>(name: string, help: string, labelNames: readonly L[], read: () => Array<{ labels: Partial<Record<L, string>>; value: number }>): Gauge<L> {
    return new Gauge({
      name,
      help,
      labelNames,
      registers: [this.registry],
      collect() {
        for (const { labels, value } of read()) this.set(labels, value);
      },
    });
  }

  /**
   * The figures read from the database at start-up. Alone, they are this process's starting point;
   * in a worker of several they go to the primary, which keeps the earliest read (see metrics-cluster.ts).
   */
  startFrom(baseline: FigureSet, readAtMs: number): void {
    if (this.clustered) reportFiguresBaseline(baseline.snapshot(), readAtMs);
    else this.figures.merge(baseline.snapshot());
  }

  /** Times every request by its route template and status class (one map look-up and one observation). */
  instrument(app: FastifyInstance): void {
    app.addHook('onResponse', async (request, reply) => {
      const statusClass = `${Math.floor(reply.statusCode / 100)}xx`;
      const key = `${request.method} ${request.routeOptions.url ?? ''} ${statusClass}`;
      let child = this.durationChildren.get(key);
      if (!child) {
        child = this.requestDuration.labels({ method: request.method, route: routeLabel(request.routeOptions.url), status_class: statusClass });
        this.durationChildren.set(key, child);
      }
      child.observe(reply.elapsedTime / 1000);
    });
  }

  /** What a store reports: group-commit batches and WAL flushes (SQLite), pool usage (PostgreSQL); registered only for the store in use. */
  storeInstruments(): StoreInstruments {
    return {
      sqlite: () => {
        const batch = this.histogram('eventsync_sqlite_group_commit_batch_size', 'Changes committed together in one SQLite transaction', [], [1, 2, 4, 8, 16, 32, 64, 128, 256]);
        const flush = this.histogram('eventsync_sqlite_wal_flush_duration_seconds', 'Durable flushes of the SQLite WAL (fdatasync off the event loop)', [], DURATION_BUCKETS);
        return { batchCommitted: (size) => batch.observe(size), walFlushed: (seconds) => flush.observe(seconds) };
      },
      postgres: (stats) => {
        this.gauge('eventsync_pg_pool_connections', 'PostgreSQL pool connections: total, idle, and clients waiting for one', ['state'], () => {
          const { total, idle, waiting } = stats();
          return [
            { labels: { state: 'total' }, value: total },
            { labels: { state: 'idle' }, value: idle },
            { labels: { state: 'waiting' }, value: waiting },
          ];
        });
      },
    };
  }

  /** The exposition text: this process's metrics, or with several workers all of theirs, aggregated by the primary. */
  async scrape(): Promise<string> {
    return this.clustered ? scrapeThroughPrimary() : this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/**
 * The `getMetrics` operation of both services: the exposition text, 503 if the workers' metrics
 * cannot be gathered, 404 when the service keeps none (METRICS=off).
 */
export function metricsHandler(metrics: ServiceMetrics | undefined) {
  return async () => {
    if (!metrics) throw new NotFoundError('Metrics are off on this service (METRICS=off): it keeps none, so there is nothing to scrape.');
    let text: string;
    try {
      text = await metrics.scrape();
    } catch (error) {
      throw new UnavailableError(`The metrics could not be gathered: ${error instanceof Error ? error.message : String(error)}.`);
    }
    return { status: 200 as const, body: text, headers: { 'content-type': metrics.contentType } };
  };
}
