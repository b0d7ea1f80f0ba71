/** HTTP shape of the waiting-list operations: parse, call the domain, map the result. */
import type { FastifyRequest } from 'fastify';
import type { operations } from '../../openapi/generated/ticket-service.js';
import { listHeaders } from '../../platform/pagination.js';
import type { OperationHandlers } from '../../platform/openapi-routes.js';
import { callOrigin } from '../../platform/trace-context.js';
import type { TicketServiceContext } from '../domain/context.js';
import type { Access } from '../domain/tickets.js';
import * as entries from '../domain/waitlist.js';

type WaitlistOperationId = 'listWaitlist' | 'joinWaitlist' | 'closeWaitlist' | 'getWaitlistEntry' | 'leaveWaitlist' | 'offerWaitlistEntry';

export function waitlistHandlers(context: TicketServiceContext, access: (request: FastifyRequest) => Access): OperationHandlers<Pick<operations, WaitlistOperationId>> {
  return {
    listWaitlist: async (request) => {
      const page = await entries.listWaitlist(context, request.query);
      return { status: 200, body: await entries.presentEntries(context, page.items), headers: listHeaders(request, page) };
    },
    joinWaitlist: async (request) => {
      const row = await entries.joinWaitlist(context, request.body, callOrigin(request));
      return { status: 201, body: await entries.presentEntry(context, row), headers: { location: `/waitlist/${row.id}` } };
    },
    closeWaitlist: async (request) => {
      const closed = await entries.closeWaitlist(context, request.query.event_id, callOrigin(request));
      return { status: 200, body: { event_id: request.query.event_id, closed } };
    },
    getWaitlistEntry: async (request) => ({ status: 200, body: await entries.presentEntry(context, await entries.visibleEntry(context, request.params.entry_id, access(request))) }),
    leaveWaitlist: async (request) => ({
      status: 200,
      body: await entries.presentEntry(context, await entries.leaveWaitlist(context, request.params.entry_id, access(request), callOrigin(request))),
    }),
    offerWaitlistEntry: async (request) => ({ status: 200, body: await entries.presentEntry(context, await entries.offerNow(context, request.params.entry_id, callOrigin(request))) }),
  };
}
