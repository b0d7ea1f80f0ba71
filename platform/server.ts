/** Listening and graceful shutdown, shared by both services' `server.ts`. */
import type { FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import { ConfigError } from './config.js';

/** However a dependency behaves, a shutdown ends within this time; unfinished background work stays in its table. */
const SHUTDOWN_DEADLINE_MS = 10_000;

export async function listenUntilSignalled(app: FastifyInstance, host: string, port: number): Promise<AddressInfo> {
  let closing = false;
  const shutdown = (signal: string) => {
    if (closing) return;
    closing = true;
    app.log.info({ signal }, 'shutting down: no new connections, finishing requests in flight');
    setTimeout(() => {
      app.log.warn({ deadline_ms: SHUTDOWN_DEADLINE_MS }, 'shutdown is taking too long (requests still waiting on a dependency); exiting, committed work is safe');
      process.exit(1);
    }, SHUTDOWN_DEADLINE_MS).unref();
    app
      .close()
      .then(() => process.exit(0))
      .catch((error: unknown) => {
        app.log.error({ err: error }, 'shutdown failed');
        process.exit(1);
      });
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
  await app.listen({ host, port });
  return app.server.address() as AddressInfo;
}

/** Start-up failures print one clear sentence (no stack for a bad configuration) and exit non-zero. */
export function exitOnStartupError(service: string, error: unknown): never {
  const known = knownStartupProblem(error);
  if (known !== undefined) console.error(`${service}: ${known}`);
  else console.error(`${service}: failed to start:`, error);
  process.exit(1);
}

/** What went wrong, in one sentence, when the cause is one a user can fix. */
function knownStartupProblem(error: unknown): string | undefined {
  if (error instanceof ConfigError) return error.message;
  const { code, address, port } = error as { code?: string; address?: string; port?: number };
  if (code === 'EADDRINUSE') return `cannot listen on ${address ?? 'its address'}:${port ?? '?'}: the port is already in use (set another port or stop what uses it)`;
  if (code === 'EACCES') return `cannot listen on ${address ?? 'its address'}:${port ?? '?'}: permission denied (ports below 1024 need privileges)`;
  if (code === 'EADDRNOTAVAIL') return `cannot listen on ${address ?? 'its address'}: the address is not on this machine (check HOST)`;
  return undefined;
}

export function warnAboutExposure(app: FastifyInstance, host: string, adminToken: string | undefined): void {
  if (adminToken !== undefined) return;
  const loopback = host === '127.0.0.1' || host === 'localhost' || host === '::1';
  if (loopback) app.log.info('ADMIN_TOKEN is not set: development mode, admin operations are open to local callers');
  else app.log.warn({ host }, 'ADMIN_TOKEN is not set and the service listens beyond loopback: anyone who reaches it can change events and tickets');
}
