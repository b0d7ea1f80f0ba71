/** The event-service app factory: builds a Fastify instance over its database; nothing listens here. */
import type { FastifyInstance } from 'fastify';
import type { EventServiceConfig } from '../platform/config.js';
import { corsOrigins, localUrl } from '../platform/config.js';
import { createServiceApp, stopOnLostDurability, writeRateLimit } from '../platform/service-app.js';
import { registerOperations } from '../platform/openapi-routes.js';
import { openServiceStore } from '../platform/store/open.js';
import type { operations } from '../openapi/generated/event-service.js';
import { eventMigrations } from './store/migrations/index.js';
import type { EventDatabase } from './store/schema.js';
import { eventServiceHandlers } from './routes/handlers.js';
import { expireLapsedHolds } from './domain/holds.js';
import type { EventServiceContext } from './domain/context.js';
import { ReadCache } from '../platform/read-cache.js';
import { textSearchFor } from './store/search.js';
import { readEventFigures } from './store/figures.js';
import { EventMetrics, eventChanges } from './metrics.js';
import { metricsHandler } from '../platform/metrics.js';
import { heldHoldCreationInWrite } from './store/holds.js';
import { heldHoldCreationInOneStatement } from './store/holds-postgres.js';

const ROUTINE_POLLS = new Set(['listHolds', 'getHold']);

export interface BuildOptions {
  /** Pretty log lines for a terminal. */
  prettyLogs?: boolean;
  /** Run the hold-expiry sweeper on `SWEEP_INTERVAL_SECONDS` (on by default). */
  sweeper?: boolean;
}

export async function buildEventApp(config: EventServiceConfig, options: BuildOptions = {}): Promise<FastifyInstance> {
  const app = createServiceApp({
    service: 'event-service',
    logLevel: config.LOG_LEVEL,
    prettyLogs: options.prettyLogs ?? false,
    bodyLimit: config.BODY_LIMIT_BYTES,
    corsOrigins: corsOrigins(config),
    host: config.HOST,
    port: config.EVENT_SERVICE_PORT,
    rateLimitWritesPerMinute: config.RATE_LIMIT_WRITES_PER_MINUTE,
    otherSpecs: [{ name: 'ticket-service', url: `${localUrl(config.HOST, config.TICKET_SERVICE_PORT)}/openapi.json` }],
  });
  // METRICS=off keeps none at all: no process metrics, no request timing, no counters, no figures.
  const metrics = config.METRICS === 'on' ? new EventMetrics() : undefined;
  metrics?.service.instrument(app);
  const store = await openServiceStore<EventDatabase>({
    databaseUrl: config.EVENT_DATABASE_URL,
    urlVariable: 'EVENT_DATABASE_URL',
    sqlitePath: config.EVENT_DB_PATH,
    synchronous: config.SQLITE_SYNCHRONOUS,
    migrations: eventMigrations,
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
  if (metrics) metrics.service.startFrom(await readEventFigures(db), Date.now());
  const tracked = metrics ? eventChanges.track(store.write, metrics) : store.write;
  if (store.migrated.length > 0) app.log.info({ migrations: store.migrated }, 'database migrated');
  // In-process caches are exact only while this process sees every write: off on PostgreSQL, where
  // other replicas may write. Pages of up to 100 events, 256 of them: bounded whatever searches come in.
  const cached = store.dialect === 'sqlite';
  const searchResults: EventServiceContext['searchResults'] = new ReadCache(cached ? 256 : 0);
  const write: EventServiceContext['write'] = (work) => searchResults.change(() => tracked(work));
  const context: EventServiceContext = {
    db,
    config,
    search: textSearchFor(store.dialect),
    write,
    // The engine's own way to create a hold (store/holds.ts `HeldHoldCreator`): one statement on PostgreSQL.
    createHeldHold:
      store.dialect === 'postgres'
        ? heldHoldCreationInOneStatement(db, { writeStatement: (statement) => searchResults.change(() => store.writeStatement(statement)), metrics })
        : heldHoldCreationInWrite(write),
    searchPages: new ReadCache(cached ? 1000 : 0),
    searchResults,
  };
  // Plugins whose onRoute hooks shape routes (rate limits) must be loaded before the routes exist.
  await app.after();
  registerOperations<operations>(app, {
    service: 'event-service',
    handlers: { ...eventServiceHandlers(context, store), getMetrics: metricsHandler(metrics?.service) },
    tokens: { serviceToken: config.SERVICE_TOKEN, adminToken: config.ADMIN_TOKEN, metricsToken: config.METRICS_TOKEN },
    routeOptions: writeRateLimit(config.RATE_LIMIT_WRITES_PER_MINUTE),
    // ticket-service's reconciler polls these every few seconds.
    routine: ROUTINE_POLLS,
    readBarrier: store.settled,
  });

  let sweeper: NodeJS.Timeout | undefined;
  let sweeping: Promise<void> = Promise.resolve();
  const sweep = () => {
    sweeping = expireLapsedHolds(context)
      .then((expired) => {
        if (expired > 0) app.log.info({ expired }, 'expired lapsed holds and returned their seats');
      })
      .catch((error: unknown) => app.log.error({ err: error }, 'hold expiry sweep failed'));
  };
  if (options.sweeper ?? true) {
    app.addHook('onReady', async () => {
      sweep();
      sweeper = setInterval(sweep, config.SWEEP_INTERVAL_SECONDS * 1000);
      sweeper.unref();
    });
  }
  app.addHook('onClose', async () => {
    if (sweeper) clearInterval(sweeper);
    await sweeping;
    await store.close();
  });
  return app;
}
