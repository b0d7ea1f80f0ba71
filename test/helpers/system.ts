/**
 * Both services as real processes (the compiled JavaScript in dist/) on ephemeral ports over fresh
 * SQLite files, or fresh PostgreSQL databases, for the inter-service tests. Run `npm run build`
 * first (`npm test` does).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import type { Test } from 'tap';
import { eventServiceClient, ticketServiceClient, type EventOperations, type ServiceClient, type TicketOperations } from '../../openapi/client.js';
import { repoRoot } from '../../openapi/spec.js';
import { auditSystem } from '../../platform/audit.js';
import { ADMIN_TOKEN, SERVICE_TOKEN, tempDir } from './event-app.js';
import { ContractChecker } from './contract.js';
import { createTestDatabase, terminateBackends } from './postgres.js';

export { ADMIN_TOKEN, SERVICE_TOKEN };

export type ServiceName = 'event-service' | 'ticket-service';

export type StoreName = 'sqlite' | 'postgres';

/** The store each service runs on. */
export interface StorePlacement {
  event: StoreName;
  ticket: StoreName;
}

const placementOf = (store: StoreName | StorePlacement): StorePlacement => (typeof store === 'object' ? store : { event: store, ticket: store });

export interface RunningService {
  process: ChildProcess;
  url: string;
  port: number;
  output: string[];
}

export interface TestSystem {
  dir: string;
  event: RunningService;
  ticket: RunningService;
  /** Clients as ticket-service and the CLI use them: events with the service token, tickets as the caller chooses. */
  events: ServiceClient<EventOperations>;
  tickets: ServiceClient<TicketOperations>;
  env: Record<string, string>;
  stop(name: ServiceName, signal?: NodeJS.Signals): Promise<void>;
  /** Starts a stopped service again on the same port and database. */
  restart(name: ServiceName): Promise<void>;
  /** Cross-service audit (settle 0); an empty list means the invariant holds. */
  audit(): Promise<string[]>;
  /**
   * Runs one statement straight on a service's database, behind the service's back (to age or
   * corrupt rows), whichever store it is on; `?` marks each parameter. The number of rows changed.
   */
  sql(name: ServiceName, statement: string, ...parameters: Array<string | number>): Promise<number>;
  /** Ends every connection the service has to its PostgreSQL database: a lost connection, as it sees it. */
  terminateBackends(name: ServiceName): Promise<number>;
}

function serverPath(name: ServiceName): string {
  const path = join(repoRoot, 'dist', name, 'server.js');
  if (!existsSync(path)) throw new Error(`${path} is missing: run \`npm run build\` first`);
  return path;
}

async function launch(name: ServiceName, env: Record<string, string>): Promise<RunningService> {
  const child = spawn(process.execPath, [serverPath(name)], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name} did not start in 60 s:\n${output.join('')}`));
    }, 60_000);
    // With WORKERS=N every worker says it listens; the service is started once all of them do, so a
    // test's first requests can reach each of them.
    const workers = Number(env.WORKERS ?? '1');
    const onData = (chunk: Buffer) => {
      output.push(chunk.toString());
      const listening = [...output.join('').matchAll(/Server listening at http:\/\/127\.0\.0\.1:(\d+)/g)];
      const first = listening[0];
      if (first && listening.length >= workers) {
        clearTimeout(timer);
        resolve(Number(first[1]));
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (chunk: Buffer) => output.push(chunk.toString()));
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with ${code} before listening:\n${output.join('')}`));
    });
  });
  child.removeAllListeners('exit');
  return { process: child, url: `http://127.0.0.1:${port}`, port, output };
}

async function stopProcess(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.kill(signal);
  });
}

export interface SystemOptions {
  env?: Record<string, string>;
  /** Token the tickets client sends (none by default, like the original curl calls). */
  ticketToken?: string;
  /** Variables for ticket-service alone, over `env` (its own WORKERS, say). */
  ticketEnv?: Record<string, string>;
  /** Where ticket-service is told event-service is, given where it runs (a proxy, say). */
  eventServiceUrlForTickets?: (eventServiceUrl: string) => string;
  /**
   * The store: one for both services, or each its own (SQLite by default). On PostgreSQL a service
   * gets a database of its own, created for this test and dropped after it.
   */
  store?: StoreName | StorePlacement;
  /** Where a service on PostgreSQL is told its database is, given its URL (a proxy, say). */
  databaseUrlFor?: (service: ServiceName, databaseUrl: string) => string;
  /**
   * PostgreSQL databases start empty, so the services migrate them at start-up. By default they are
   * copies of a template the same migrations built (test/helpers/postgres.ts), which is quicker.
   */
  freshDatabases?: boolean;
}

/** Runs one statement on a SQLite file or a PostgreSQL database; `?` marks each parameter. */
async function runStatement(target: { path: string } | { url: string }, statement: string, parameters: Array<string | number>): Promise<number> {
  if ('path' in target) {
    const database = new Database(target.path, { timeout: 5000 });
    try {
      return database.prepare(statement).run(...parameters).changes;
    } finally {
      database.close();
    }
  }
  const client = new pg.Client({ connectionString: target.url });
  await client.connect();
  try {
    let position = 0;
    const result = await client.query(statement.replace(/\?/g, () => `$${(position += 1)}`), parameters);
    return result.rowCount ?? 0;
  } finally {
    await client.end();
  }
}

export async function startSystem(t: Test, options: SystemOptions = {}): Promise<TestSystem> {
  const dir = tempDir(t);
  const store = placementOf(options.store ?? 'sqlite');
  // Created before the services start, so that they are dropped only after the services stopped.
  const migrated = (service: ServiceName) => (options.freshDatabases ? {} : { migratedFor: service });
  const [eventDatabase, ticketDatabase] = await Promise.all([
    store.event === 'postgres' ? createTestDatabase(t, 'events', migrated('event-service')) : undefined,
    store.ticket === 'postgres' ? createTestDatabase(t, 'tickets', migrated('ticket-service')) : undefined,
  ]);
  const databaseUrls: Record<ServiceName, string | undefined> = { 'event-service': eventDatabase, 'ticket-service': ticketDatabase };
  const told = (service: ServiceName, url: string) => options.databaseUrlFor?.(service, url) ?? url;
  const sqlitePaths: Record<ServiceName, string> = { 'event-service': join(dir, 'event_data.db'), 'ticket-service': join(dir, 'ticket_data.db') };
  const env: Record<string, string> = {
    SERVICE_TOKEN,
    LOG_LEVEL: 'info',
    EVENT_DB_PATH: sqlitePaths['event-service'],
    TICKET_DB_PATH: sqlitePaths['ticket-service'],
    ...(databaseUrls['event-service'] ? { EVENT_DATABASE_URL: told('event-service', databaseUrls['event-service']) } : {}),
    ...(databaseUrls['ticket-service'] ? { TICKET_DATABASE_URL: told('ticket-service', databaseUrls['ticket-service']) } : {}),
    EVENT_SERVICE_PORT: '0',
    TICKET_SERVICE_PORT: '0',
    SWEEP_INTERVAL_SECONDS: '0.2',
    RECONCILE_SETTLE_SECONDS: '0',
    // Generous for loaded CI machines; tests of timeouts set their own.
    EVENT_SERVICE_TIMEOUT_SECONDS: '5',
    ...options.env,
  };
  const services: Record<ServiceName, RunningService | undefined> = { 'event-service': undefined, 'ticket-service': undefined };
  const event = await launch('event-service', env);
  services['event-service'] = event;
  const ticketEnv = { ...env, ...options.ticketEnv, EVENT_SERVICE_URL: options.eventServiceUrlForTickets?.(event.url) ?? event.url };
  const ticket = await launch('ticket-service', ticketEnv);
  services['ticket-service'] = ticket;
  // Every answer the tests receive through the clients is checked against the contract.
  const violations: string[] = [];
  const checkers = { 'event-service': new ContractChecker('event-service'), 'ticket-service': new ContractChecker('ticket-service') };
  const observe = (service: ServiceName) => (answer: { method: string; path: string; status: number; contentType: string | undefined; text: string }) => {
    violations.push(...checkers[service].check(answer.method, answer.path, answer.status, answer.contentType, answer.text));
  };
  const events = eventServiceClient({ baseUrl: event.url, token: SERVICE_TOKEN, timeoutMs: 10_000, observe: observe('event-service') });
  const tickets = ticketServiceClient({ baseUrl: ticket.url, token: options.ticketToken, timeoutMs: 10_000, observe: observe('ticket-service') });
  const auditTickets = ticketServiceClient({ baseUrl: ticket.url, token: env.ADMIN_TOKEN, timeoutMs: 10_000, observe: observe('ticket-service') });
  const system: TestSystem = {
    dir,
    event,
    ticket,
    events,
    tickets,
    env,
    async stop(name, signal = 'SIGTERM') {
      const running = services[name];
      if (running) await stopProcess(running.process, signal);
    },
    async restart(name) {
      const previous = services[name];
      if (!previous) throw new Error(`${name} was never started`);
      await stopProcess(previous.process, 'SIGTERM');
      const portEnv: Record<string, string> = name === 'event-service' ? { EVENT_SERVICE_PORT: String(previous.port) } : { TICKET_SERVICE_PORT: String(previous.port) };
      const again = await launch(name, { ...(name === 'ticket-service' ? ticketEnv : env), ...portEnv });
      // Keep the same object so that system.event / system.ticket follow every restart.
      Object.assign(previous, again);
    },
    async audit() {
      const eventsForAudit = eventServiceClient({ baseUrl: event.url, token: SERVICE_TOKEN, observe: observe('event-service') });
      try {
        return (await auditSystem(eventsForAudit, auditTickets, 0)).problems;
      } finally {
        await eventsForAudit.close();
      }
    },
    sql(name, statement, ...parameters) {
      const url = databaseUrls[name];
      return runStatement(url ? { url } : { path: sqlitePaths[name] }, statement, parameters);
    },
    terminateBackends(name) {
      const url = databaseUrls[name];
      if (!url) throw new Error(`${name} runs on SQLite: it has no backends to end`);
      return terminateBackends(url);
    },
  };
  t.teardown(async () => {
    await Promise.all([events.close(), tickets.close(), auditTickets.close()]);
    for (const running of Object.values(services)) if (running) await stopProcess(running.process, 'SIGTERM');
    // Assertions are closed by now: a violation fails the test as an error thrown in teardown.
    if (violations.length > 0) throw new Error(`answers that break the contract:\n${violations.join('\n')}`);
  });
  return system;
}

/** Polls `check` every 50 ms until it returns true, at most `timeoutMs`. */
export async function eventually(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return check();
}
