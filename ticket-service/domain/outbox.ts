/** The outbox of pending seat releases: written in the same transaction as a cancel or delete, retried until acknowledged. */
import { ServiceUnreachableError, type CallOrigin } from '../../openapi/client.js';
import { forEachBounded } from '../../platform/bounded.js';
import * as tickets from '../store/tickets.js';
import * as waitlist from '../store/waitlist.js';
import { abandonAfterMs, BACKGROUND_CONCURRENCY, type TicketServiceContext } from './context.js';

const BATCH = 200;
const MAX_BACKOFF_MS = 60_000;

/** `released`: acknowledged; `refused`: event-service answered an error; `unreachable`: no answer (or shutting down). */
export type ReleaseOutcome = 'released' | 'refused' | 'unreachable';

export interface ReleaseOptions {
  /** The request the release is made for, if any (its request id and trace are forwarded). */
  origin?: CallOrigin | undefined;
  /** Failed attempts so far (sets the backoff). */
  attempts?: number;
  /** Background calls stop when the service shuts down; the release then stays due. */
  signal?: AbortSignal;
}

/**
 * The end of a lease on a release taken now: longer than one call and its bookkeeping, so no other
 * replica tries the same release meanwhile, and short enough that a crash delays it by seconds.
 */
export const releaseLeaseUntil = (context: TicketServiceContext): string => new Date(Date.now() + abandonAfterMs(context.config)).toISOString();

/** Tries one outbox release now (the caller holds its lease); on failure it stays queued with a backoff. */
export async function releaseNow(context: TicketServiceContext, outboxId: number, holdId: string, options: ReleaseOptions = {}): Promise<ReleaseOutcome> {
  let failure: string;
  let outcome: ReleaseOutcome;
  try {
    // The event's waiting-list gate, as it is now, rides on the release: freed seats are never public while people wait.
    const gate = await waitlist.gateForHold(context.db, holdId);
    const body = gate ? waitlist.gateBody(gate) : undefined;
    const result = await context.events.call('releaseHold', { path: { hold_id: holdId }, ...(body ? { body } : {}) }, { ...options.origin, signal: options.signal });
    if (result.ok) {
      await context.write(async (trx) => {
        await tickets.completeRelease(trx, outboxId);
        if (gate) await waitlist.markGateSent(trx, gate.event_id, gate.sequence);
      });
      return 'released';
    }
    failure = `HTTP ${result.status}: ${result.problem.detail ?? result.problem.title}`;
    outcome = 'refused';
  } catch (error) {
    // Abandoned by a shutdown: the lease is given back, so the row is due again (at the next start, or in another replica).
    if (options.signal?.aborted) {
      await context.write((trx) => tickets.returnLease(trx, outboxId, new Date().toISOString()));
      return 'unreachable';
    }
    failure = error instanceof Error ? error.message : String(error);
    outcome = error instanceof ServiceUnreachableError ? 'unreachable' : 'refused';
  }
  const attempts = (options.attempts ?? 0) + 1;
  const backoff = Math.min(MAX_BACKOFF_MS, 500 * 2 ** (attempts - 1));
  await context.write((trx) => tickets.postponeRelease(trx, outboxId, attempts, new Date(Date.now() + backoff).toISOString(), failure));
  context.log.warn({ hold_id: holdId, attempts, error: failure }, 'seat release failed; the outbox will retry');
  return outcome;
}

/**
 * Due releases, a few at a time, each leased before its call (a conditional update only one replica
 * wins), so replicas draining together never try one release twice; the round stops at the first
 * that finds event-service unreachable.
 */
export async function drainReleaseOutbox(context: TicketServiceContext): Promise<number> {
  let released = 0;
  const due = await tickets.dueReleases(context.db, new Date().toISOString(), BATCH);
  await forEachBounded(due, BACKGROUND_CONCURRENCY, context.stopping, async (row) => {
    if (!(await context.write((trx) => tickets.leaseRelease(trx, row.id, row.next_attempt_at, releaseLeaseUntil(context))))) return 'done';
    const outcome = await releaseNow(context, row.id, row.hold_id, { attempts: row.attempts, signal: context.stopping });
    if (outcome === 'released') released += 1;
    return outcome === 'unreachable' ? 'halt' : 'done';
  });
  return released;
}
