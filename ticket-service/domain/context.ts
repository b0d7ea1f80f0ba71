import type { FastifyBaseLogger } from 'fastify';
import type { Kysely, Transaction } from 'kysely';
import { ServiceUnreachableError, type ServiceClient, type EventOperations } from '../../openapi/client.js';
import type { TicketServiceConfig } from '../../platform/config.js';
import type { TicketDatabase } from '../store/schema.js';
import type { EventSummaries } from './event-summaries.js';
import type { TicketMetrics } from '../metrics.js';

/** What the domain functions of ticket-service work with. */
export type TicketTransaction = Transaction<TicketDatabase>;

export interface TicketServiceContext {
  db: Kysely<TicketDatabase>;
  config: TicketServiceConfig;
  /** Runs one atomic state change; changes arriving together share a commit (platform/store/sqlite/group-commit.ts). */
  write: <T>(work: (trx: Transaction<TicketDatabase>) => Promise<T>) => Promise<T>;
  events: ServiceClient<EventOperations>;
  summaries: EventSummaries;
  /** References of purchases without a PENDING row whose hold call or ticket write is under way. */
  purchasesInFlight: Set<string>;
  /**
   * Where the next orphan-hold scan starts (a holds-list cursor): holds before it were all found
   * owned or released, so a round reads only holds that became old enough since (plus one page).
   */
  orphanScan: { cursor?: string };
  /** Aborted when the service shuts down: background work stops between items and its calls are abandoned. */
  stopping: AbortSignal;
  log: FastifyBaseLogger;
  /** Counters of what the service does (ticket-service/metrics.ts); undefined with METRICS=off. */
  metrics: TicketMetrics | undefined;
}

/** How many background items (releases, expiries, hold checks) run at once. */
export const BACKGROUND_CONCURRENCY = 8;

/** How long a call to event-service may take, in milliseconds. */
export const holdCallTimeoutMs = (config: TicketServiceConfig): number => config.EVENT_SERVICE_TIMEOUT_SECONDS * 1000;

/** A PENDING ticket older than this has no purchase in flight any more: the call timed out long ago. */
export const abandonAfterMs = (config: TicketServiceConfig): number => holdCallTimeoutMs(config) * 2 + 1000;

/** What to tell a caller when event-service could not be asked: too slow, or not there at all. */
export function unreachableText(error: unknown): string {
  if (error instanceof ServiceUnreachableError && !error.timedOut) return 'event-service is unreachable';
  return 'event-service did not answer in time';
}
