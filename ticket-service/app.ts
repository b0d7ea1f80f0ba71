/** The ticket-service app factory: builds a Fastify instance over its database; nothing listens here. */
import type { FastifyInstance } from 'fastify';
import type { TicketServiceConfig } from '../platform/config.js';
import { corsOrigins } from '../platform/config.js';
import { createServiceApp, stopOnLostDurability, writeRateLimit } from '../platform/service-app.js';
import { registerOperations } from '../platform/openapi-routes.js';
import { openServiceStore } from '../platform/store/open.js';
import { holdBatchingEventServiceClient } from '../openapi/hold-batcher.js';
import type { operations } from '../openapi/generated/ticket-service.js';
import { ticketMigrations } from './store/migrations/index.js';
import type { TicketDatabase } from './store/schema.js';
import { ticketServiceHandlers } from './routes/handlers.js';
import { EventSummaries } from './domain/event-summaries.js';
import { holdCallTimeoutMs, type TicketServiceContext } from './domain/context.js';
import { runMaintenance } from './domain/maintenance.js';
import { readTicketFigures } from './store/figures.js';
import { TicketMetrics, ticketChanges } from './metrics.js';
import { metricsHandler } from '../platform/metrics.js';
import { WebhookDispatcher } from './domain/webhooks-dispatcher.js';

export interface BuildOptions {
  prettyLogs?: boolean;
  /** Run the sweeper, outbox and reconciler every SWEEP_INTERVAL_SECONDS (on by default). */
  background?: boolean;
}

export async function buildTicketApp(config: TicketServiceConfig, options: BuildOptions = {}): Promise<FastifyInstance> {
  const app = createServiceApp({
    service: 'ticket-service',
    logLevel: config.LOG_LEVEL,
    prettyLogs: options.prettyLogs ?? false,
    bodyLimit: config.BODY_LIMIT_BYTES,
    corsOrigins: corsOrigins(config),
    host: config.HOST,
    port: config.TICKET_SERVICE_PORT,
    rateLimitWritesPerMinute: config.RATE_LIMIT_WRITES_PER_MINUTE,
    otherSpecs: [{ name: 'event-service', url: `${(config.EVENT_SERVICE_URL.split(',')[0] ?? '').trim().replace(/\/$/, '')}/openapi.json` }],
  });
  // METRICS=off keeps none at all: no process metrics, no request timing, no counters, no figures.
  const metrics = config.METRICS === 'on' ? new TicketMetrics() : undefined;
  metrics?.service.instrument(app);
  metrics?.countPurchases(app);
  const store = await openServiceStore<TicketDatabase>({
    databaseUrl: config.TICKET_DATABASE_URL,
    urlVariable: 'TICKET_DATABASE_URL',
    sqlitePath: config.TICKET_DB_PATH,
    synchronous: config.SQLITE_SYNCHRONOUS,
    migrations: ticketMigrations,
    onFatal: (error) => stopOnLostDurability(app, error),
    // The message only: pg attaches the whole client to the error.
    onConnectionError: (error) => app.log.warn({ error: error.message }, 'a database connection was lost; the pool replaces it'),
    onCheckpointError: (error) => app.log.warn({ error: error.message }, 'a WAL checkpoint failed; it is tried again'),
    instruments: metrics?.service.storeInstruments(),
    pool: { size: config.DATABASE_POOL_SIZE, processes: config.WORKERS },
  });
  const { db } = store;
  for (const warning of store.warnings) app.log.warn(warning);
  // Read once before anything is served; from here on each committed change moves them.
  if (metrics) metrics.service.startFrom(await readTicketFigures(db), Date.now());
  if (config.RECONCILE_SETTLE_SECONDS < config.EVENT_SERVICE_TIMEOUT_SECONDS) {
    app.log.info(
      { settle: config.RECONCILE_SETTLE_SECONDS, timeout: config.EVENT_SERVICE_TIMEOUT_SECONDS },
      'RECONCILE_SETTLE_SECONDS is below EVENT_SERVICE_TIMEOUT_SECONDS: with replicas, a purchase without an Idempotency-Key slower than the settle window may find its hold released by another replica and answer 503 (never a seat sold twice)',
    );
  }
  if (store.migrated.length > 0) app.log.info({ migrations: store.migrated }, 'database migrated');
  // Holds asked for together go to event-service together (openapi/hold-batcher.ts).
  const events = holdBatchingEventServiceClient({ baseUrl: config.EVENT_SERVICE_URL, token: config.SERVICE_TOKEN, timeoutMs: holdCallTimeoutMs(config) });
  const stopping = new AbortController();
  const context: TicketServiceContext = {
    db,
    config,
    write: metrics ? ticketChanges.track(store.write, metrics) : store.write,
    events,
    summaries: new EventSummaries(events),
    purchasesInFlight: new Set(),
    orphanScan: {},
    stopping: stopping.signal,
    log: app.log,
    metrics,
  };
  // Plugins whose onRoute hooks shape routes (rate limits) must be loaded before the routes exist.
  await app.after();
  registerOperations<operations>(app, {
    service: 'ticket-service',
    handlers: { ...ticketServiceHandlers(context, store), getMetrics: metricsHandler(metrics?.service) },
    tokens: { serviceToken: config.SERVICE_TOKEN, adminToken: config.ADMIN_TOKEN, paymentToken: config.PAYMENT_TOKEN, metricsToken: config.METRICS_TOKEN },
    routeOptions: writeRateLimit(config.RATE_LIMIT_WRITES_PER_MINUTE),
    readBarrier: store.settled,
  });

  const webhooks = new WebhookDispatcher(context);
  if (metrics) webhooks.reports.push(({ outcome }) => metrics.webhookAttempts.inc({ outcome }));
  app.decorate('webhookDispatcher', webhooks);
  let webhookTimer: NodeJS.Timeout | undefined;

  let timer: NodeJS.Timeout | undefined;
  let round: Promise<void> | undefined;
  const tick = () => {
    if (round) return; // the previous round is still running
    round = runMaintenance(context).finally(() => {
      round = undefined;
    });
  };
  if (options.background ?? true) {
    app.addHook('onReady', async () => {
      tick();
      timer = setInterval(tick, config.SWEEP_INTERVAL_SECONDS * 1000);
      timer.unref();
      // Webhooks poll on their own loop, at least every second: a slow receiver never holds up the sweeper.
      webhookTimer = setInterval(() => webhooks.tick(), Math.min(config.SWEEP_INTERVAL_SECONDS, 1) * 1000);
      webhookTimer.unref();
      webhooks.tick();
    });
  }
  // Background work stops between items and abandons its calls at once; what it had not done stays in its table.
  app.addHook('preClose', async () => {
    if (timer) clearInterval(timer);
    if (webhookTimer) clearInterval(webhookTimer);
    stopping.abort(new Error('ticket-service is shutting down'));
  });
  app.addHook('onClose', async () => {
    await round;
    await webhooks.close();
    await events.close();
    await store.close();
  });
  return app;
}
