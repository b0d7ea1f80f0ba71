/** Starts ticket-service from the environment: config, build, listen, shut down on SIGTERM/SIGINT. */
import { TicketServiceConfigSchema, loadConfig } from '../platform/config.js';
import { exitOnStartupError, listenUntilSignalled, warnAboutExposure } from '../platform/server.js';
import { buildTicketApp } from './app.js';

try {
  const config = loadConfig(TicketServiceConfigSchema, process.env);
  const app = await buildTicketApp(config, { prettyLogs: process.stdout.isTTY === true });
  warnAboutExposure(app, config.HOST, config.ADMIN_TOKEN);
  await listenUntilSignalled(app, config.HOST, config.TICKET_SERVICE_PORT);
} catch (error) {
  exitOnStartupError('ticket-service', error);
}
