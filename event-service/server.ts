/** Starts event-service from the environment: config, build, listen, shut down on SIGTERM/SIGINT. */
import { EventServiceConfigSchema, loadConfig } from '../platform/config.js';
import { exitOnStartupError, listenUntilSignalled, warnAboutExposure } from '../platform/server.js';
import { buildEventApp } from './app.js';

try {
  const config = loadConfig(EventServiceConfigSchema, process.env);
  const app = await buildEventApp(config, { prettyLogs: process.stdout.isTTY === true });
  warnAboutExposure(app, config.HOST, config.ADMIN_TOKEN);
  await listenUntilSignalled(app, config.HOST, config.EVENT_SERVICE_PORT);
} catch (error) {
  exitOnStartupError('event-service', error);
}
