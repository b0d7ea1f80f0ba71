/**
 * Runs the whole system in one terminal: event-service, then ticket-service, sharing a generated
 * service token when none is configured. Ctrl-C (or SIGTERM) stops both cleanly; if one exits, the
 * other is stopped too.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { localUrl } from '../platform/config.js';
import { printError } from './output.js';

const distRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

async function waitForHealth(url: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`exited with code ${child.exitCode}`);
    try {
      const response = await fetch(`${url}/health`, { signal: AbortSignal.timeout(500) });
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`not healthy after ${timeoutMs} ms`);
}

export async function runSystem(env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const shared: NodeJS.ProcessEnv = { ...env };
  if (!shared.SERVICE_TOKEN) {
    shared.SERVICE_TOKEN = randomBytes(24).toString('base64url');
    console.error('eventsync: generated a service token shared by both services for this run');
  }
  const host = shared.HOST ?? '127.0.0.1';
  // Where the event-service started here listens: what start-up waits for. EVENT_SERVICE_URL is what
  // ticket-service calls, and may list several replicas (this one among them, or others elsewhere).
  const eventServiceUrl = localUrl(host, Number(shared.EVENT_SERVICE_PORT ?? '5001'));
  shared.EVENT_SERVICE_URL ??= eventServiceUrl;

  const children: ChildProcess[] = [];
  let stopping = false;
  const stopAll = (signal: NodeJS.Signals = 'SIGTERM') => {
    stopping = true;
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  };
  const start = (service: 'event-service' | 'ticket-service') => {
    const child = spawn(process.execPath, [join(distRoot, service, 'server.js')], { env: shared, stdio: 'inherit' });
    children.push(child);
    return child;
  };
  process.on('SIGINT', () => stopAll('SIGTERM'));
  process.on('SIGTERM', () => stopAll('SIGTERM'));

  const exits = (child: ChildProcess, name: string) =>
    new Promise<number>((resolve) =>
      child.on('exit', (code, signal) => {
        if (!stopping) {
          console.error(`eventsync: ${name} stopped (${signal ?? `exit code ${code}`}); stopping the other service`);
          stopAll();
        }
        resolve(code ?? (signal === 'SIGTERM' || signal === 'SIGINT' ? 0 : 1));
      }),
    );

  const eventService = start('event-service');
  const eventExit = exits(eventService, 'event-service');
  try {
    await waitForHealth(eventServiceUrl, eventService, 20_000);
  } catch (error) {
    printError(`event-service did not start: ${(error as Error).message}`);
    stopAll();
    await eventExit;
    return 1;
  }
  if (stopping) return eventExit;
  const ticketService = start('ticket-service');
  const ticketExit = exits(ticketService, 'ticket-service');
  const ticketUrl = localUrl(host, Number(shared.TICKET_SERVICE_PORT ?? '5002'));
  waitForHealth(ticketUrl, ticketService, 20_000)
    .then(() => {
      console.error(`eventsync: ready. Swagger UI: ${ticketUrl}/docs (tickets) and ${eventServiceUrl}/docs (events). Ctrl-C stops both.`);
    })
    .catch(() => undefined);
  const codes = await Promise.all([eventExit, ticketExit]);
  return Math.max(...codes);
}
