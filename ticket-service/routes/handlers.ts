/** HTTP shape only: each spec operation parses its input, calls the domain and maps the result. */
import type { FastifyRequest } from 'fastify';
import type { CallOrigin } from '../../openapi/client.js';
import type { operations } from '../../openapi/generated/ticket-service.js';
import { UnavailableError } from '../../platform/errors.js';
import { listHeaders } from '../../platform/pagination.js';
import type { OperationHandlers } from '../../platform/openapi-routes.js';
import { callOrigin } from '../../platform/trace-context.js';
import type { ServiceStore } from '../../platform/store/service-store.js';
import type { TicketServiceContext } from '../domain/context.js';
import { purchaseTickets } from '../domain/purchase.js';
import { changeTicketStatus, deleteTicket, listTickets, visibleTicket, type Access } from '../domain/tickets.js';
import { toApiTicket } from '../domain/representation.js';
import { webhookHandlers } from './webhooks.js';
import { waitlistHandlers } from './waitlist.js';

function access(context: TicketServiceContext, request: FastifyRequest): Access {
  const reference = request.headers['x-ticket-reference'];
  return {
    principal: request.principal,
    needsReference: request.needsReference,
    reference: typeof reference === 'string' ? reference : undefined,
    developmentMode: context.config.ADMIN_TOKEN === undefined,
  };
}

/** Every operation but `getMetrics`, which the app serves from its metrics (platform/metrics.ts). */
export function ticketServiceHandlers(context: TicketServiceContext, store: Pick<ServiceStore<unknown>, 'reachable'>): Omit<OperationHandlers<operations>, 'getMetrics'> {
  const withEvent = async (row: Parameters<typeof toApiTicket>[0], origin: CallOrigin) => toApiTicket(row, await context.summaries.get(row.event_id, origin));
  return {
    ...webhookHandlers(context),
    ...waitlistHandlers(context, (request) => access(context, request)),
    getHealth: async () => ({ status: 200, body: { status: 'ok', service: 'ticket-service' } }),
    getReady: async (request) => {
      if (!(await store.reachable())) throw new UnavailableError('The database is not reachable.');
      try {
        const result = await context.events.call('getReady', {}, { ...callOrigin(request), timeoutMs: 2000 });
        if (!result.ok) throw new UnavailableError(`event-service is not ready (HTTP ${result.status}).`);
      } catch (error) {
        if (error instanceof UnavailableError) throw error;
        throw new UnavailableError(`event-service at ${context.events.baseUrl} is unreachable.`);
      }
      return { status: 200, body: { status: 'ok', service: 'ticket-service', checks: { database: 'ok', 'event-service': 'ok' } } };
    },

    listTickets: async (request) => {
      const page = await listTickets(context, request.query);
      const summaries = await context.summaries.getMany(page.items.map((row) => row.event_id), callOrigin(request));
      return { status: 200, body: page.items.map((row) => toApiTicket(row, summaries.get(row.event_id))), headers: listHeaders(request, page) };
    },
    createTicket: async (request) => {
      const { ticket, replayed } = await purchaseTickets(context, request.body, request.headers['idempotency-key'], callOrigin(request));
      const headers: Record<string, string> = { location: `/tickets/${ticket.id}` };
      if (replayed) headers['idempotent-replayed'] = 'true';
      return { status: 201, body: ticket, headers };
    },
    getTicket: async (request) => {
      const row = await visibleTicket(context, request.params.id, access(context, request));
      return { status: 200, body: await withEvent(row, callOrigin(request)) };
    },
    updateTicketStatus: async (request) => {
      const row = await changeTicketStatus(context, request.params.id, request.body, access(context, request), callOrigin(request));
      return { status: 200, body: await withEvent(row, callOrigin(request)) };
    },
    deleteTicket: async (request) => {
      await deleteTicket(context, request.params.id, access(context, request), callOrigin(request));
      return { status: 204, body: undefined };
    },
  };
}
