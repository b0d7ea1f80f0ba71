/** Starts ticket-service from the environment: config, build, listen, shut down on SIGTERM/SIGINT (with WORKERS above 1, a primary supervises that many workers). */
import { TicketServiceConfigSchema, loadConfig, type TicketServiceConfig } from '../platform/config.js';
import { exitOnStartupError, listenUntilSignalled, warnAboutExposure } from '../platform/server.js';
import { checkWorkers, superviseWorkers } from '../platform/workers.js';
import { ticketFigureGauges } from './metrics.js';
import { buildTicketApp } from './app.js';

try {
  const config = loadConfig(TicketServiceConfigSchema, process.env);
  checkWorkers(config.WORKERS, config.TICKET_DATABASE_URL, 'TICKET_DATABASE_URL');
  if (!superviseWorkers('ticket-service', config.WORKERS, config.LOG_LEVEL, config.METRICS === 'on' ? ticketFigureGauges : undefined)) await serve(config);
} catch (error) {
  exitOnStartupError('ticket-service', error);
}

async function serve(config: TicketServiceConfig): Promise<void> {
  const app = await buildTicketApp(config, { prettyLogs: process.stdout.isTTY === true });
  warnAboutExposure(app, config.HOST, config.ADMIN_TOKEN);
  await listenUntilSignalled(app, config.HOST, config.TICKET_SERVICE_PORT);
}
