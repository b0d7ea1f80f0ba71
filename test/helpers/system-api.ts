/**
 * Typed helpers for the inter-service tests over startSystem: events, tickets and holds as both
 * services show them, raw HTTP for what the typed client hides, and freezing a process (SIGSTOP) to
 * make a dependency slow rather than gone.
 */
import { randomUUID } from 'node:crypto';
import { request, type Dispatcher } from 'undici';
import { nextCursor, type EventOperations, type Problem, type ServiceClient } from '../../openapi/client.js';
import type { components as EventComponents } from '../../openapi/generated/event-service.js';
import type { components as TicketComponents } from '../../openapi/generated/ticket-service.js';
import type { TestSystem } from './system.js';

export type ApiEvent = EventComponents['schemas']['Event'];
export type ApiHold = EventComponents['schemas']['Hold'];
export type EventCreate = EventComponents['schemas']['EventCreate'];
export type ApiTicket = TicketComponents['schemas']['Ticket'];
export type TicketCreate = TicketComponents['schemas']['TicketCreate'];

let eventCounter = 0;

/** Creates an event through the given client (the harness's service-token client by default) and fails loudly otherwise. */
export async function createEvent(system: TestSystem, overrides: Partial<EventCreate> = {}, client: ServiceClient<EventOperations> = system.events): Promise<ApiEvent> {
  eventCounter += 1;
  const body: EventCreate = {
    name: `System test event ${eventCounter}`,
    description: 'Created by an inter-service test',
    event_date: '2030-06-15T09:00:00Z',
    venue: 'Test Hall',
    total_tickets: 100,
    ...overrides,
  };
  const result = await client.call('createEvent', { body });
  if (!result.ok) throw new Error(`creating an event answered ${result.status}: ${JSON.stringify(result.problem)}`);
  return result.body;
}

export async function getEvent(system: TestSystem, id: number): Promise<ApiEvent> {
  const result = await system.events.call('getEvent', { path: { id } });
  if (!result.ok) throw new Error(`reading event ${id} answered ${result.status}: ${JSON.stringify(result.problem)}`);
  return result.body;
}

/** Every hold of an event (all pages), optionally in the given states, read with the service token. */
export async function holdsOf(system: TestSystem, eventId: number, state?: string): Promise<ApiHold[]> {
  const holds: ApiHold[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < 100; page += 1) {
    const result = await system.events.call('listHolds', { query: { event_id: eventId, limit: 1000, ...(state ? { state } : {}), ...(cursor ? { cursor } : {}) } });
    if (!result.ok) throw new Error(`listing holds answered ${result.status}: ${JSON.stringify(result.problem)}`);
    holds.push(...result.body);
    cursor = nextCursor(result.headers);
    if (!cursor) return holds;
  }
  throw new Error('more than 100 pages of holds');
}

export async function getHold(system: TestSystem, holdId: string): Promise<ApiHold | undefined> {
  const result = await system.events.call('getHold', { path: { hold_id: holdId } });
  if (result.ok) return result.body;
  if (result.status === 404) return undefined;
  throw new Error(`reading hold ${holdId} answered ${result.status}: ${JSON.stringify(result.problem)}`);
}

/** Every ticket of an event (all pages) and the X-Total-Count of the first page, through the tickets client. */
export async function ticketsOf(system: TestSystem, eventId: number, headers: Record<string, string> = {}): Promise<{ tickets: ApiTicket[]; total: number }> {
  const tickets: ApiTicket[] = [];
  let total = -1;
  let cursor: string | undefined;
  for (let page = 0; page < 100; page += 1) {
    const result = await system.tickets.call('listTickets', { query: { event_id: eventId, limit: 1000, ...(cursor ? { cursor } : {}) }, headers });
    if (!result.ok) throw new Error(`listing tickets answered ${result.status}: ${JSON.stringify(result.problem)}`);
    if (total < 0) total = Number(result.headers['x-total-count']);
    tickets.push(...result.body);
    cursor = nextCursor(result.headers);
    if (!cursor) return { tickets, total };
  }
  throw new Error('more than 100 pages of tickets');
}

export function ticketBody(eventId: number, quantity = 1, overrides: Partial<TicketCreate> = {}): TicketCreate {
  return { event_id: eventId, customer_name: 'Ada Lovelace', customer_email: 'ada@example.com', quantity, ...overrides };
}

/** Buys and fails loudly unless the answer is 201. */
export async function reserve(system: TestSystem, eventId: number, quantity = 1, headers: Record<string, string> = {}): Promise<ApiTicket> {
  const result = await system.tickets.call('createTicket', { body: ticketBody(eventId, quantity), headers });
  if (!result.ok) throw new Error(`reserving ${quantity} of event ${eventId} answered ${result.status}: ${JSON.stringify(result.problem)}`);
  return result.body;
}

export interface RawAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  contentType: string;
  json: unknown;
}

/** One HTTP call with undici's `request`, the body sent exactly as given (a string is sent verbatim). */
export async function raw(
  url: string,
  options: { method?: Dispatcher.HttpMethod; headers?: Record<string, string>; body?: unknown; dispatcher?: Dispatcher; timeoutMs?: number } = {},
): Promise<RawAnswer> {
  const body = options.body === undefined ? undefined : typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
  const headers: Record<string, string> = { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...options.headers };
  const response = await request(url, {
    method: options.method ?? 'GET',
    headers,
    body,
    ...(options.dispatcher ? { dispatcher: options.dispatcher } : {}),
    signal: AbortSignal.timeout(options.timeoutMs ?? 20_000),
  });
  const text = await response.body.text();
  const contentType = String(response.headers['content-type'] ?? '');
  let json: unknown;
  try {
    json = text.length > 0 ? JSON.parse(text) : undefined;
  } catch {
    json = text;
  }
  return { status: response.statusCode, headers: response.headers as Record<string, string | string[] | undefined>, contentType, json };
}

export function asProblem(value: unknown): Problem {
  if (value && typeof value === 'object' && 'type' in value && 'status' in value) return value as Problem;
  throw new Error(`not a problem body: ${JSON.stringify(value)}`);
}

export function asTicket(value: unknown): ApiTicket {
  if (value && typeof value === 'object' && 'reference' in value && 'status' in value) return value as ApiTicket;
  throw new Error(`not a ticket: ${JSON.stringify(value)}`);
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Runs `body` while the service's process is stopped with SIGSTOP (it accepts connections in the
 * kernel but answers nothing, like a hung dependency), and always continues it afterwards.
 */
export async function whileFrozen<T>(system: TestSystem, name: 'event-service' | 'ticket-service', body: () => Promise<T>): Promise<T> {
  const running = name === 'event-service' ? system.event : system.ticket;
  running.process.kill('SIGSTOP');
  try {
    return await body();
  } finally {
    running.process.kill('SIGCONT');
  }
}

/** The services' logs so far, as one string. */
export const logsOf = (system: TestSystem, name: 'event-service' | 'ticket-service'): string => (name === 'event-service' ? system.event : system.ticket).output.join('');

export const uuid = (): string => randomUUID();

/**
 * Stops a service with `signal` but waits at most `ms`; a process still running then is killed with
 * SIGKILL so that nothing hangs. True when it exited on its own within the time.
 */
export async function stopWithin(system: TestSystem, name: 'event-service' | 'ticket-service', signal: NodeJS.Signals, ms: number): Promise<boolean> {
  const running = name === 'event-service' ? system.event : system.ticket;
  let timer: NodeJS.Timeout | undefined;
  const inTime = await Promise.race([
    system.stop(name, signal).then(() => true),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), ms);
    }),
  ]);
  clearTimeout(timer);
  if (!inTime) {
    running.process.kill('SIGKILL');
    await system.stop(name, 'SIGKILL');
  }
  return inTime;
}
