/** Builds event-service in-process over a fresh SQLite file or PostgreSQL database, with every answer checked against the spec. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import type { Test } from 'tap';
import { EventServiceConfigSchema, loadConfig, type EventServiceConfig } from '../../platform/config.js';
import { buildEventApp } from '../../event-service/app.js';
import { ContractChecker } from './contract.js';
import { createTestDatabase } from './postgres.js';

export type TestStore = 'sqlite' | 'postgres';

export const SERVICE_TOKEN = 'test-service-token-0123456789';
export const ADMIN_TOKEN = 'test-admin-token-0123456789';
export const serviceAuth = { authorization: `Bearer ${SERVICE_TOKEN}` };
export const adminAuth = { authorization: `Bearer ${ADMIN_TOKEN}` };

export function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'eventsync-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export function eventTestConfig(dir: string, env: Record<string, string> = {}): EventServiceConfig {
  return loadConfig(EventServiceConfigSchema, {
    SERVICE_TOKEN,
    EVENT_DB_PATH: join(dir, 'event_data.db'),
    LOG_LEVEL: 'silent',
    EVENT_SERVICE_PORT: '0',
    ...env,
  });
}

export interface TestEventApp {
  app: FastifyInstance;
  config: EventServiceConfig;
  dir: string;
  store: TestStore;
  /** The PostgreSQL database the app runs on (undefined on SQLite). */
  databaseUrl: string | undefined;
  /** `app.inject` that also fails the test when the answer breaks the contract. */
  inject: (options: InjectOptions) => Promise<LightMyRequestResponse>;
  checker: ContractChecker;
}

const checker = new ContractChecker('event-service');

export interface EventAppOptions {
  /** The folder of the SQLite file (a new temporary one by default). */
  dir?: string;
  /** 'postgres': a database of its own on the test server (test/helpers/postgres.ts), dropped when the test ends. */
  store?: TestStore;
}

export async function startEventApp(t: Test, env: Record<string, string> = {}, options: EventAppOptions = {}): Promise<TestEventApp> {
  const dir = options.dir ?? tempDir(t);
  const store = options.store ?? 'sqlite';
  const databaseUrl = store === 'postgres' ? (env.EVENT_DATABASE_URL ?? (await createTestDatabase(t, 'event'))) : undefined;
  const config = eventTestConfig(dir, databaseUrl === undefined ? env : { ...env, EVENT_DATABASE_URL: databaseUrl });
  const app = await buildEventApp(config, { sweeper: env.SWEEP_INTERVAL_SECONDS !== undefined });
  t.teardown(() => app.close());
  const inject = async (options: InjectOptions) => {
    const response = await app.inject(options);
    const problems = checker.check(String(options.method ?? 'GET'), String(options.url), response.statusCode, response.headers['content-type'] as string | undefined, response.body);
    t.same(problems, [], `answer to ${options.method ?? 'GET'} ${options.url} conforms to the spec`);
    if (response.statusCode >= 500) t.fail(`${options.method} ${options.url} answered ${response.statusCode}: ${response.body}`);
    return response;
  };
  return { app, config, dir, store, databaseUrl, inject, checker };
}

/** The original API's example event. */
export const originalEvent = {
  name: 'Tech Conference 2025',
  description: 'Annual technology conference',
  event_date: '2025-06-15T09:00:00',
  venue: 'Convention Center',
  total_tickets: 200,
};

export async function createEvent(app: TestEventApp, body: Record<string, unknown> = originalEvent): Promise<{ id: number; [key: string]: unknown }> {
  const response = await app.inject({ method: 'POST', url: '/events', payload: body });
  if (response.statusCode !== 201) throw new Error(`creating an event answered ${response.statusCode}: ${response.body}`);
  return response.json();
}

/**
 * DESIGN.md's per-event invariant, from one read of the event plus the hold rows:
 * available = total − Σ HELD and COMMITTED holds − Σ manual adjustments, and available ≥ 0.
 */
export async function assertSeatInvariant(t: Test, app: TestEventApp, eventId: number): Promise<void> {
  const event = (await app.inject({ method: 'GET', url: `/events/${eventId}` })).json();
  let held = 0;
  let committed = 0;
  let url: string | undefined = `/holds?event_id=${eventId}&state=HELD,COMMITTED&limit=1000`;
  while (url) {
    const page: LightMyRequestResponse = await app.inject({ method: 'GET', url, headers: serviceAuth });
    for (const hold of page.json() as Array<{ state: string; quantity: number }>) {
      if (hold.state === 'HELD') held += hold.quantity;
      else committed += hold.quantity;
    }
    const next = /<([^>]+)>;\s*rel="next"/.exec(String(page.headers.link ?? ''))?.[1];
    url = next ? new URL(next).pathname + new URL(next).search : undefined;
  }
  t.equal(event.held_tickets, held, `event ${eventId}: held_tickets equals the HELD holds`);
  t.equal(event.sold_tickets, committed, `event ${eventId}: sold_tickets equals the COMMITTED holds`);
  t.equal(event.available_tickets, event.total_tickets - held - committed - event.manual_reserved_tickets, `event ${eventId}: available = total − holds − manual adjustments`);
  t.ok(event.available_tickets >= 0, `event ${eventId}: available_tickets is not negative`);
}
