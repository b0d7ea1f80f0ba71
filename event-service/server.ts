/** Starts event-service from the environment: config, build, listen, shut down on SIGTERM/SIGINT (with WORKERS above 1, a primary supervises that many workers). */
import { EventServiceConfigSchema, loadConfig, type EventServiceConfig } from '../platform/config.js';
import { exitOnStartupError, listenUntilSignalled, warnAboutExposure } from '../platform/server.js';
import { checkWorkers, superviseWorkers } from '../platform/workers.js';
import { eventFigureGauges } from './metrics.js';
import { buildEventApp } from './app.js';

try {
  const config = loadConfig(EventServiceConfigSchema, process.env);
  checkWorkers(config.WORKERS, config.EVENT_DATABASE_URL, 'EVENT_DATABASE_URL');
  if (!superviseWorkers('event-service', config.WORKERS, config.LOG_LEVEL, config.METRICS === 'on' ? eventFigureGauges : undefined)) await serve(config);
} catch (error) {
  exitOnStartupError('event-service', error);
}

async function serve(config: EventServiceConfig): Promise<void> {
  const app = await buildEventApp(config, { prettyLogs: process.stdout.isTTY === true });
  warnAboutExposure(app, config.HOST, config.ADMIN_TOKEN);
  await listenUntilSignalled(app, config.HOST, config.EVENT_SERVICE_PORT);
}
