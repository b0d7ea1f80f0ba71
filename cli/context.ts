/** Where the CLI finds the services and which token it sends (flags, then EVENTSYNC_* variables, then defaults). */
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { InvalidArgumentError, type Command } from 'commander';
import { eventServiceClient, ticketServiceClient, type Problem, type EventOperations, type ServiceClient, type TicketOperations } from '../openapi/client.js';
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

export const parseInteger = (name: string, min = 0) => (value: string): number => {
  if (!/^\d+$/.test(value) || Number(value) < min || !Number.isSafeInteger(Number(value))) throw new InvalidArgumentError(`${name} must be a whole number ≥ ${min}`);
  return Number(value);
};
