/** The outbox of pending seat releases: written in the same transaction as a cancel or delete, retried until acknowledged. */
import * as tickets from '../store/tickets.js';
import type { TicketServiceContext } from './context.js';

const BATCH = 200;
const MAX_BACKOFF_MS = 60_000;

/** Tries one outbox release now; on failure it stays queued with a backoff. True when acknowledged. */
export async function releaseNow(context: TicketServiceContext, outboxId: number, holdId: string, requestId?: string, attempts = 0): Promise<boolean> {
  let failure: string;
  try {
    const result = await context.events.call('releaseHold', { path: { hold_id: holdId } }, { requestId });
    if (result.ok) {
      await context.write((trx) => tickets.completeRelease(trx, outboxId));
      return true;
    }
    failure = `HTTP ${result.status}: ${result.problem.detail ?? result.problem.title}`;
  } catch (error) {
    failure = error instanceof Error ? error.message : String(error);
  }
  const backoff = Math.min(MAX_BACKOFF_MS, 500 * 2 ** attempts);
  await context.write((trx) => tickets.postponeRelease(trx, outboxId, attempts + 1, new Date(Date.now() + backoff).toISOString(), failure));
  context.log.warn({ hold_id: holdId, attempts: attempts + 1, error: failure }, 'seat release failed; the outbox will retry');
  return false;
}

export async function drainReleaseOutbox(context: TicketServiceContext): Promise<number> {
  let released = 0;
  const due = await tickets.dueReleases(context.db, new Date().toISOString(), BATCH);
  for (const row of due) if (await releaseNow(context, row.id, row.hold_id, undefined, row.attempts)) released += 1;
  return released;
}

