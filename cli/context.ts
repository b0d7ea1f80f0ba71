/** Where the CLI finds the services and which token it sends (flags, then EVENTSYNC_* variables, then defaults). */
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { InvalidArgumentError, type Command } from 'commander';
import { eventServiceClient, ticketServiceClient, type Problem, type EventOperations, type ServiceClient, type TicketOperations } from '../openapi/client.js';
import { parseDateTime } from '../platform/time.js';
import { ApiRefusal } from './output.js';

export const GlobalOptionsSchema = Type.Object({
  eventUrl: Type.String({ pattern: '^https?://' }),
  ticketUrl: Type.String({ pattern: '^https?://' }),
  adminToken: Type.Optional(Type.String({ minLength: 1 })),
  json: Type.Boolean(),
});
export type GlobalOptions = Static<typeof GlobalOptionsSchema>;

export interface CliContext {
  options: GlobalOptions;
  events: ServiceClient<EventOperations>;
  tickets: ServiceClient<TicketOperations>;
}

const openClients: Array<{ close(): Promise<void> }> = [];

/** Closes the keep-alive pools so that the process exits as soon as the command is done. */
export async function closeClients(): Promise<void> {
  await Promise.all(openClients.splice(0).map((client) => client.close()));
}

export function cliContext(command: Command): CliContext {
  const raw = command.optsWithGlobals<Record<string, unknown>>();
  const options = {
    eventUrl: raw.eventUrl ?? process.env.EVENTSYNC_EVENT_URL ?? 'http://localhost:5001',
    ticketUrl: raw.ticketUrl ?? process.env.EVENTSYNC_TICKET_URL ?? 'http://localhost:5002',
    adminToken: raw.adminToken ?? process.env.EVENTSYNC_ADMIN_TOKEN,
    json: raw.json === true,
  };
  if (options.adminToken === undefined || options.adminToken === '') delete (options as Partial<typeof options>).adminToken;
  const errors = [...Value.Errors(GlobalOptionsSchema, options)];
  if (errors.length > 0) throw new InvalidArgumentError(errors.map((e) => `${e.path.slice(1)}: ${e.message}`).join('; '));
  const valid = options as GlobalOptions;
  const events = eventServiceClient({ baseUrl: valid.eventUrl, token: valid.adminToken, timeoutMs: 10_000 });
  const tickets = ticketServiceClient({ baseUrl: valid.ticketUrl, token: valid.adminToken, timeoutMs: 10_000 });
  openClients.push(events, tickets);
  return { options: valid, events, tickets };
}

/** The success answer of a call, or an ApiRefusal carrying the problem. */
export function expectOk<R extends { ok: boolean; status: number }>(result: R): Extract<R, { ok: true }> {
  if (!result.ok) {
    const refused = result as unknown as { status: number; problem: Problem };
    throw new ApiRefusal(refused.status, refused.problem);
  }
  return result as Extract<R, { ok: true }>;
}

export const parseInteger = (name: string, min = 0, max = Number.MAX_SAFE_INTEGER) => (value: string): number => {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max) throw new InvalidArgumentError(max === Number.MAX_SAFE_INTEGER ? `${name} must be a whole number ≥ ${min}` : `${name} must be a whole number from ${min} to ${max}`);
  return n;
};

/** The largest page the services answer (`limit`). */
export const MAX_PAGE = 1000;

/**
 * An RFC 3339 date-time as the services accept it (the same check), passed on as written. A date
 * alone is refused: which time of day it would mean is not something to guess.
 */
export const parseDateTimeOption = (name: string) => (value: string): string => {
  if (parseDateTime(value) !== undefined) return value;
  const dateOnly = /^\d{4}-\d{2}-\d{2}$/.test(value) && parseDateTime(`${value}T00:00:00Z`) !== undefined;
  const day = dateOnly ? value : '2027-03-20';
  throw new InvalidArgumentError(`${name} ${dateOnly ? 'needs a time as well as a date' : 'must be an RFC 3339 date-time'}: for example ${day}T19:30:00+01:00, or ${day}T19:30:00 for UTC.`);
};
