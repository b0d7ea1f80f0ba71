/** HTTP shape only: each spec operation parses its input, calls the domain and maps the result. */
import type { FastifyRequest } from 'fastify';
import type { operations } from '../../openapi/generated/event-service.js';
import { UnavailableError } from '../../platform/errors.js';
import { linkHeader, type Page } from '../../platform/pagination.js';
import type { OperationHandlers } from '../../platform/openapi-routes.js';
import type { ServiceStore } from '../../platform/store/service-store.js';
import type { EventServiceContext } from '../domain/context.js';
import * as eventsDomain from '../domain/events.js';
import * as holdsDomain from '../domain/holds.js';
import * as seatLedgersDomain from '../domain/seat-ledgers.js';
import * as venuesDomain from '../domain/venues.js';
import * as waitlistGateDomain from '../domain/waitlist-gate.js';
import { eventEtag, toApiEvent, toApiHold, toApiSeatLedger, toApiVenue, toApiWaitlistGate } from '../domain/representation.js';
import { createHoldBatchHandler } from './hold-batch.js';

function pageHeaders(request: FastifyRequest, page: Page<unknown>): Record<string, string> {
  const headers: Record<string, string> = {};
  const link = linkHeader(request, page.links);
  if (link) headers.link = link;
  if (page.total !== undefined) headers['x-total-count'] = String(page.total);
  return headers;
}

/** Every operation but `getMetrics`, which the app serves from its metrics (platform/metrics.ts). */
export function eventServiceHandlers(context: EventServiceContext, store: Pick<ServiceStore<unknown>, 'reachable'>): Omit<OperationHandlers<operations>, 'getMetrics'> {
  return {
    getHealth: async () => ({ status: 200, body: { status: 'ok', service: 'event-service' } }),
    getReady: async () => {
      if (!(await store.reachable())) throw new UnavailableError('The database is not reachable.');
      return { status: 200, body: { status: 'ok', service: 'event-service', checks: { database: 'ok' } } };
    },

    listVenues: async (request) => {
      const page = await venuesDomain.listVenues(context, request.query);
      return { status: 200, body: page.items.map(toApiVenue), headers: pageHeaders(request, page) };
    },
    createVenue: async (request) => {
      const venue = await venuesDomain.createVenue(context, request.body);
      return { status: 201, body: toApiVenue(venue), headers: { location: `/venues/${venue.id}` } };
    },
    getVenue: async (request) => ({ status: 200, body: toApiVenue(await venuesDomain.getVenue(context, request.params.id)) }),
    updateVenue: async (request) => ({ status: 200, body: toApiVenue(await venuesDomain.updateVenue(context, request.params.id, request.body)) }),
    deleteVenue: async (request) => {
      await venuesDomain.deleteVenue(context, request.params.id);
      return { status: 204, body: undefined };
    },

    listEvents: async (request) => {
      const page = await eventsDomain.listEvents(context, request.query);
      return { status: 200, body: page.items.map(toApiEvent), headers: pageHeaders(request, page) };
    },
    createEvent: async (request) => {
      const event = await eventsDomain.createEvent(context, request.body);
      return { status: 201, body: toApiEvent(event), headers: { location: `/events/${event.id}`, etag: eventEtag(event) } };
    },
    getEvent: async (request) => {
      const event = await eventsDomain.getEvent(context, request.params.id);
      return { status: 200, body: toApiEvent(event), headers: { etag: eventEtag(event) } };
    },
    updateEvent: async (request) => {
      const event = await eventsDomain.updateEvent(context, request.params.id, request.body, request.headers['if-match']);
      return { status: 200, body: toApiEvent(event), headers: { etag: eventEtag(event) } };
    },
    deleteEvent: async (request) => {
      await eventsDomain.deleteEvent(context, request.params.id);
      return { status: 204, body: undefined };
    },
    adjustEventTickets: async (request) => {
      const event = await eventsDomain.adjustTickets(context, request.params.id, request.body.operation, request.body.ticket_count);
      return { status: 200, body: toApiEvent(event) };
    },

    listHolds: async (request) => {
      const page = await holdsDomain.listHolds(context, request.query);
      return { status: 200, body: page.items.map(toApiHold), headers: pageHeaders(request, page) };
    },
    createHold: async (request) => {
      const { hold, created } = await holdsDomain.createHold(context, request.body);
      return created ? { status: 201, body: toApiHold(hold) } : { status: 200, body: toApiHold(hold) };
    },
    createHoldBatch: createHoldBatchHandler(context),
    getHold: async (request) => ({ status: 200, body: toApiHold(await holdsDomain.getHold(context, request.params.hold_id)) }),
    commitHold: async (request) => ({ status: 200, body: toApiHold(await holdsDomain.commitHold(context, request.params.hold_id)) }),
    releaseHold: async (request) => ({ status: 200, body: toApiHold(await holdsDomain.releaseHold(context, request.params.hold_id, request.body ?? undefined)) }),

    setWaitlistGate: async (request) => {
      const { gate, applied } = await waitlistGateDomain.setWaitlistGate(context, request.params.id, request.body);
      return { status: 200, body: toApiWaitlistGate(gate, applied) };
    },

    listSeatLedgers: async (request) => {
      const page = await seatLedgersDomain.listSeatLedgers(context, request.query);
      return { status: 200, body: page.items.map(toApiSeatLedger), headers: pageHeaders(request, page) };
    },
  };
}
