/** Typed calls to an in-process event-service and checks of its answers: events, venues, holds, paging and problems. */
import { randomUUID } from 'node:crypto';
import type { LightMyRequestResponse } from 'fastify';
import type { Test } from 'tap';
import { serviceAuth, type TestEventApp } from './event-app.js';
import type { components } from '../../openapi/generated/event-service.js';
import type { Problem } from '../../openapi/client.js';

// The API's shapes come from the types generated from the spec, never retyped here.
export type ApiEvent = components['schemas']['Event'];
export type ApiVenue = components['schemas']['Venue'];
export type ApiHold = components['schemas']['Hold'];
export type HoldState = components['schemas']['HoldState'];
export type { Problem };

export const problemType = (kind: string): string => `urn:eventsync:problem:${kind}`;

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** An ISO date-time `ms` milliseconds from now (negative: in the past). */
export const isoFromNow = (ms: number): string => new Date(Date.now() + ms).toISOString();

/** A minimal valid event body, with overrides. */
export function eventBody(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return { name: 'Tech Conference 2025', description: 'Annual technology conference', event_date: '2027-06-15T09:00:00Z', venue: 'Convention Center', total_tickets: 200, ...overrides };
}

/** POST /events that must answer 201. */
export async function postEvent(app: TestEventApp, overrides: Record<string, unknown> = {}): Promise<ApiEvent> {
  const response = await app.inject({ method: 'POST', url: '/events', payload: eventBody(overrides) });
  if (response.statusCode !== 201) throw new Error(`creating an event answered ${response.statusCode}: ${response.body}`);
  return response.json<ApiEvent>();
}

export async function getEvent(app: TestEventApp, id: number): Promise<ApiEvent> {
  const response = await app.inject({ method: 'GET', url: `/events/${id}` });
  if (response.statusCode !== 200) throw new Error(`GET /events/${id} answered ${response.statusCode}: ${response.body}`);
  return response.json<ApiEvent>();
}

/** POST /venues that must answer 201. */
export async function postVenue(app: TestEventApp, overrides: Record<string, unknown> = {}): Promise<ApiVenue> {
  const payload = { name: 'Convention Center', address: '1 Main St', city: 'Springfield', capacity: 500, description: 'Main hall', ...overrides };
  const response = await app.inject({ method: 'POST', url: '/venues', payload });
  if (response.statusCode !== 201) throw new Error(`creating a venue answered ${response.statusCode}: ${response.body}`);
  return response.json<ApiVenue>();
}

export interface HoldRequest {
  hold_id: string;
  event_id: number;
  quantity: number;
  expires_at: string;
}

export function holdRequest(eventId: number, quantity = 1, overrides: Partial<HoldRequest> = {}): HoldRequest {
  return { hold_id: randomUUID(), event_id: eventId, quantity, expires_at: isoFromNow(15 * 60_000), ...overrides };
}

/** POST /holds with the service token; returns the raw answer. */
export function requestHold(app: TestEventApp, body: HoldRequest, headers: Record<string, string> = serviceAuth): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'POST', url: '/holds', headers, payload: { ...body } });
}

/** POST /holds that must answer 201. */
export async function createHold(app: TestEventApp, eventId: number, quantity = 1, overrides: Partial<HoldRequest> = {}): Promise<ApiHold> {
  const response = await requestHold(app, holdRequest(eventId, quantity, overrides));
  if (response.statusCode !== 201) throw new Error(`creating a hold answered ${response.statusCode}: ${response.body}`);
  return response.json<ApiHold>();
}

export function holdAction(app: TestEventApp, holdId: string, action: 'commit' | 'release', headers: Record<string, string> = serviceAuth): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'POST', url: `/holds/${holdId}/${action}`, headers });
}

export async function getHold(app: TestEventApp, holdId: string): Promise<ApiHold> {
  const response = await app.inject({ method: 'GET', url: `/holds/${holdId}`, headers: serviceAuth });
  if (response.statusCode !== 200) throw new Error(`GET /holds/${holdId} answered ${response.statusCode}: ${response.body}`);
  return response.json<ApiHold>();
}

/** The path and query of a `Link` header's `rel` target, or undefined. */
export function linkTarget(response: LightMyRequestResponse, rel: 'next' | 'prev'): string | undefined {
  const header = String(response.headers.link ?? '');
  for (const part of header.split(',')) {
    const match = /<([^>]+)>\s*;\s*rel="([^"]+)"/.exec(part.trim());
    if (match?.[2] === rel && match[1]) {
      const url = new URL(match[1]);
      return url.pathname + url.search;
    }
  }
  return undefined;
}

/** Follows `rel="next"` from `url` and returns every page's items in order. */
export async function followNext<T>(app: TestEventApp, url: string, headers: Record<string, string> = {}, maxPages = 100): Promise<{ items: T[]; pages: number }> {
  const items: T[] = [];
  let next: string | undefined = url;
  let pages = 0;
  while (next !== undefined && pages < maxPages) {
    const response = await app.inject({ method: 'GET', url: next, headers });
    if (response.statusCode !== 200) throw new Error(`GET ${next} answered ${response.statusCode}: ${response.body}`);
    items.push(...response.json<T[]>());
    pages += 1;
    next = linkTarget(response, 'next');
  }
  return { items, pages };
}

/** Stack frames (`at fn (file:1:2)`) or SQL engine names must never reach a client. */
export function assertNoInternals(t: Test, response: LightMyRequestResponse): void {
  t.notMatch(response.body, /\bat\s+\S+\s+\(?[^)\s]*:\d+:\d+\)?/, 'the body holds no stack frames');
  t.notMatch(response.body, /\n\s+at\s/, 'the body holds no stack trace lines');
  t.notMatch(response.body, /SQLITE/i, 'the body does not mention SQLite');
}

/** Checks a problem+json answer of `status` (and `kind`, when given) and returns its body. */
export function assertProblem(t: Test, response: LightMyRequestResponse, status: number, kind?: string): Problem {
  t.equal(response.statusCode, status, `answers ${status}`);
  t.match(String(response.headers['content-type']), /^application\/problem\+json/, 'as application/problem+json');
  assertNoInternals(t, response);
  const problem = response.json<Problem>();
  t.equal(problem.status, status, 'the problem repeats the status');
  if (kind !== undefined) t.equal(problem.type, problemType(kind), `the problem type is ${kind}`);
  return problem;
}

/** The pointers of a validation problem's `errors`, sorted. */
export const pointers = (problem: Problem): string[] => (problem.errors ?? []).map((e) => e.pointer).sort();

export interface ServedRoute {
  method: string;
  path: string;
}

/**
 * Every (method, path) the app serves, read from the radix tree that `printRoutes()` draws: each
 * line is a piece of path below its parent, with the methods of the route ending there in parentheses.
 */
export function servedRoutes(tree: string): ServedRoute[] {
  const routes: ServedRoute[] = [];
  const stack: string[] = [];
  for (const line of tree.split('\n')) {
    const match = /^(.*?)[├└]── (.+?)(?: \(([^)]*)\))?$/.exec(line);
    if (!match) continue;
    const depth = (match[1] ?? '').length / 4;
    const segment = match[2] === '(empty root node)' ? '' : (match[2] ?? '');
    stack.length = depth;
    stack.push(segment);
    const path = stack.join('');
    for (const method of (match[3] ?? '').split(',').map((m) => m.trim()).filter(Boolean)) routes.push({ method, path });
  }
  return routes;
}
