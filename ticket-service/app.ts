/** The ticket-service app factory: builds a Fastify instance over its database; nothing listens here. */
import type { FastifyInstance } from 'fastify';
import type { TicketServiceConfig } from '../platform/config.js';
import { corsOrigins } from '../platform/config.js';
import { createServiceApp, stopOnLostDurability, writeRateLimit } from '../platform/service-app.js';
import { registerOperations } from '../platform/openapi-routes.js';
import { openServiceStore } from '../platform/store/open.js';
import { eventServiceClient } from '../openapi/client.js';
import type { operations } from '../openapi/generated/ticket-service.js';
import { ticketMigrations } from './store/migrations/index.js';
import type { TicketDatabase } from './store/schema.js';
import { ticketServiceHandlers } from './routes/handlers.js';
import { EventSummaries } from './domain/event-summaries.js';
import { holdCallTimeoutMs, type TicketServiceContext } from './domain/context.js';
import { runMaintenance } from './domain/maintenance.js';

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
  const store = await openServiceStore<TicketDatabase>({
    databaseUrl: config.TICKET_DATABASE_URL,
    urlVariable: 'TICKET_DATABASE_URL',
    sqlitePath: config.TICKET_DB_PATH,
    synchronous: config.SQLITE_SYNCHRONOUS,
    migrations: ticketMigrations,
    onFatal: (error) => stopOnLostDurability(app, error),
    // The message only: pg attaches the whole client to the error.
    onConnectionError: (error) => app.log.warn({ error: error.message }, 'a database connection was lost; the pool replaces it'),
    pool: { size: config.DATABASE_POOL_SIZE, processes: config.WORKERS },
  });
  const { db } = store;
  for (const warning of store.warnings) app.log.warn(warning);
  if (config.RECONCILE_SETTLE_SECONDS < config.EVENT_SERVICE_TIMEOUT_SECONDS) {
    app.log.info(
      { settle: config.RECONCILE_SETTLE_SECONDS, timeout: config.EVENT_SERVICE_TIMEOUT_SECONDS },
      'RECONCILE_SETTLE_SECONDS is below EVENT_SERVICE_TIMEOUT_SECONDS: right for one ticket-service process; with replicas a hold still in flight in another one could be released',
    );
  }
  if (store.migrated.length > 0) app.log.info({ migrations: store.migrated }, 'database migrated');
  const events = eventServiceClient({ baseUrl: config.EVENT_SERVICE_URL, token: config.SERVICE_TOKEN, timeoutMs: holdCallTimeoutMs(config) });
  const stopping = new AbortController();
  const context: TicketServiceContext = {
    db,
    config,
    write: store.write,
    events,
    summaries: new EventSummaries(events),
    purchasesInFlight: new Set(),
    orphanScan: {},
    stopping: stopping.signal,
    log: app.log,
  };
  // Plugins whose onRoute hooks shape routes (rate limits) must be loaded before the routes exist.
  await app.after();
  registerOperations<operations>(app, {
    service: 'ticket-service',
    handlers: ticketServiceHandlers(context, store),
    tokens: { serviceToken: config.SERVICE_TOKEN, adminToken: config.ADMIN_TOKEN, paymentToken: config.PAYMENT_TOKEN },
    routeOptions: writeRateLimit(config.RATE_LIMIT_WRITES_PER_MINUTE),
    readBarrier: store.settled,
  });

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
    });
  }
  // Background work stops between items and abandons its calls at once; what it had not done stays in its table.
  app.addHook('preClose', async () => {
    if (timer) clearInterval(timer);
    stopping.abort(new Error('ticket-service is shutting down'));
  });
  app.addHook('onClose', async () => {
    await round;
    await events.close();
    await store.close();
  });
  return app;
}
