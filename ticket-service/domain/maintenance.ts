/**
 * Background work of ticket-service, run at start-up and every SWEEP_INTERVAL_SECONDS, safe in several
 * replicas at once (every change is a conditional update or a claim that one replica wins, acted on by
 * its row count; releases are idempotent):
 * - the release outbox: pending releases retried with backoff until event-service acknowledges;
 * - the sweeper: RESERVED tickets past `expires_at` are cancelled (reason `expired`);
 * - the reconciler: stale PENDING tickets are abandoned and their holds released, HELD holds with no
 *   ticket behind them are claimed and released, and confirms that crashed half-way are completed.
 */
import { ServiceUnreachableError, nextCursor } from '../../openapi/client.js';
import { claimReference } from '../store/claims.js';
import * as tickets from '../store/tickets.js';
import type { TicketRow } from '../store/schema.js';
import { abandonAfterMs, BACKGROUND_CONCURRENCY, type TicketServiceContext } from './context.js';
import { cancelTicket, confirmReserved } from './tickets.js';
import { drainReleaseOutbox, releaseLeaseUntil, releaseNow, type ReleaseOutcome } from './outbox.js';
import { forEachBounded } from '../../platform/bounded.js';
import { runWaitlistRound } from './waitlist-offers.js';

const BATCH = 200;
/** The hold's state at event-service, or undefined when event-service cannot say. */
async function holdState(context: TicketServiceContext, holdId: string): Promise<string | undefined> {
  try {
    const result = await context.events.call('getHold', { path: { hold_id: holdId } }, { signal: context.stopping });
    if (result.ok) return result.body.state;
    return result.status === 404 ? 'MISSING' : undefined;
  } catch (error) {
    if (error instanceof ServiceUnreachableError) return undefined;
    throw error;
  }
}

async function completeConfirm(context: TicketServiceContext, row: TicketRow): Promise<boolean> {
  const done = await context.write((trx) => confirmReserved(trx, row.id));
  if (done) context.log.info({ ticket: row.id }, 'completed a confirmation that had committed its hold');
  if (done) context.metrics?.reconcilerActions.inc({ action: 'completed_confirm' });
  return done !== undefined;
}

/**
 * Event-service as one round of background work found it: once a call finds it unreachable, the rest
 * of the round commits its local changes and leaves their releases to the outbox.
 */
function roundReachability(): { readonly reachable: boolean; saw: (outcome: ReleaseOutcome | 'queued' | undefined) => void } {
  let reachable = true;
  return {
    get reachable() {
      return reachable;
    },
    saw(outcome) {
      if (outcome === 'unreachable') reachable = false;
    },
  };
}

/**
 * Cancels RESERVED tickets past their expiry, unless their hold was committed (then the confirm is
 * completed). Cancelling is local and always happens, conditional on the ticket as read (a confirm
 * that started meanwhile, in any replica, is not cancelled under it); once event-service proves
 * unreachable the releases are left to the outbox instead of each waiting for it.
 */
export async function sweepExpiredReservations(context: TicketServiceContext): Promise<number> {
  const lapsed = await tickets.selectTicketsByStatusBefore(context.db, 'RESERVED', 'expires_at', new Date().toISOString(), BATCH);
  let cancelled = 0;
  const eventService = roundReachability();
  await forEachBounded(lapsed, BACKGROUND_CONCURRENCY, context.stopping, async (row) => {
    if (row.confirming_at !== null) {
      const state = eventService.reachable ? await holdState(context, row.reference) : undefined;
      if (state === undefined) {
        eventService.saw('unreachable');
        return 'done';
      }
      if (state === 'COMMITTED') {
        await completeConfirm(context, row);
        return 'done';
      }
    }
    const outcome = await cancelTicket(context, row, 'expired', { signal: context.stopping, releaseAtOnce: eventService.reachable });
    if (outcome) cancelled += 1;
    eventService.saw(outcome?.release);
    return 'done';
  });
  if (cancelled > 0) context.log.info({ cancelled }, 'cancelled expired reservations and released their seats');
  context.metrics?.sweeperCancellations.inc(cancelled);
  return cancelled;
}

/** PENDING tickets whose purchase can no longer be in flight become ABANDONED, and their holds are released. */
export async function abandonStalePurchases(context: TicketServiceContext): Promise<number> {
  const cutoff = new Date(Date.now() - abandonAfterMs(context.config)).toISOString();
  const stale = await tickets.selectTicketsByStatusBefore(context.db, 'PENDING', 'created_at', cutoff, BATCH);
  let abandoned = 0;
  const eventService = roundReachability();
  await forEachBounded(stale, BACKGROUND_CONCURRENCY, context.stopping, async (row) => {
    const releaseAtOnce = eventService.reachable;
    const outboxId = await context.write(async (trx) => {
      const at = new Date().toISOString();
      // The age condition is part of the update: a retry that claimed the ticket again meanwhile keeps it.
      const taken = await tickets.abandonStalePendingTicket(trx, row.id, cutoff, at);
      return taken ? tickets.enqueueRelease(trx, row.reference, at, releaseAtOnce ? releaseLeaseUntil(context) : undefined) : undefined;
    });
    if (outboxId === undefined) return 'done';
    abandoned += 1;
    if (releaseAtOnce) eventService.saw(await releaseNow(context, outboxId, row.reference, { signal: context.stopping }));
    return 'done';
  });
  if (abandoned > 0) context.log.info({ abandoned }, 'abandoned stale pending purchases and released their holds');
  context.metrics?.reconcilerActions.inc({ action: 'abandoned_purchase' }, abandoned);
  return abandoned;
}

/** Confirms that committed the hold but crashed before CONFIRMED are completed; others are left to a retry or expiry. */
export async function completeInterruptedConfirms(context: TicketServiceContext): Promise<number> {
  const cutoff = new Date(Date.now() - abandonAfterMs(context.config)).toISOString();
  const interrupted = await tickets.selectTicketsByStatusBefore(context.db, 'RESERVED', 'confirming_at', cutoff, BATCH);
  let completed = 0;
  await forEachBounded(interrupted, BACKGROUND_CONCURRENCY, context.stopping, async (row) => {
    const state = await holdState(context, row.reference);
    if (state === undefined) return 'halt';
    if (state === 'COMMITTED' && (await completeConfirm(context, row))) completed += 1;
    // Cleared only if no confirm marked the ticket again since it was read (a retry renews the mark).
    else if (state === 'HELD') await context.write((trx) => tickets.updateTicketAsRead(trx, row, { confirming_at: null }));
    return 'done';
  });
  return completed;
}

/**
 * Releases one orphan hold, if the reconciler wins its reference: one transaction claims the reference
 * and queues the release (leased, tried at once), so a ticket write that comes late loses its own
 * claim and answers 503 instead of selling a released hold, and a crash before the call leaves the
 * release to the outbox. Undefined when the claim was lost (a ticket, or another replica, owns it).
 */
async function claimAndRelease(context: TicketServiceContext, holdId: string, eventId: number | undefined): Promise<{ outcome: ReleaseOutcome } | undefined> {
  const outboxId = await context.write(async (trx) => {
    const at = new Date().toISOString();
    if (!(await claimReference(trx, holdId, 'reconciler', at))) return undefined;
    return tickets.enqueueRelease(trx, holdId, at, releaseLeaseUntil(context), eventId);
  });
  if (outboxId === undefined) return undefined;
  return { outcome: await releaseNow(context, outboxId, holdId, { signal: context.stopping }) };
}

/**
 * HELD holds older than the settle window with no ticket behind them are released, each only after
 * the reconciler claimed its reference (see `claimAndRelease`): that claim, not the settle window or
 * the skipping of this process's keyless purchases in flight (an optimisation), is why a hold under
 * a purchase is never released from under a ticket. Holds come in creation order and the scan
 * resumes where every earlier hold was settled (owned, or claimed), so a round costs the holds that
 * became old enough since the last one, not every live reservation. The last page is always read
 * again (it grows), and a restart scans from the start once. (A hold that would sort before the
 * resume point, created in the same millisecond as a scanned one, is still released by
 * event-service's own expiry.)
 */
export async function releaseOrphanHolds(context: TicketServiceContext): Promise<number> {
  let released = 0;
  let cursor = context.orphanScan.cursor;
  let settledSoFar = true;
  for (let page = 0; page < 100; page += 1) {
    if (context.stopping.aborted) return released;
    const result = await context.events.call(
      'listHolds',
      { query: { state: 'HELD', older_than: context.config.RECONCILE_SETTLE_SECONDS, limit: 500, ...(cursor ? { cursor } : {}) } },
      { signal: context.stopping },
    );
    if (!result.ok) {
      context.log.warn({ status: result.status }, 'could not list holds for reconciliation');
      return released;
    }
    const holds = result.body;
    // Taken before the tickets are read: a purchase in flight now is skipped, and one that ended
    // before this line has written its ticket (or never will).
    const inFlight = new Set(holds.filter((h) => context.purchasesInFlight.has(h.hold_id)).map((h) => h.hold_id));
    const owners = new Map((await tickets.findReservedByReferences(context.db, holds.map((h) => h.hold_id))).map((t) => [t.reference, t]));
    let pageSettled = true;
    // A hold with a ticket row behind it is that ticket's: its reference is claimed, and a PENDING,
    // abandoned, cancelled or deleted ticket's release is already the outbox's.
    const orphans = holds.filter((hold) => {
      const owner = owners.get(hold.hold_id);
      if (inFlight.has(hold.hold_id) || owner?.status === 'PENDING') pageSettled = false;
      return !inFlight.has(hold.hold_id) && owner === undefined;
    });
    const round = await forEachBounded(orphans, BACKGROUND_CONCURRENCY, context.stopping, async (hold) => {
      const claimed = await claimAndRelease(context, hold.hold_id, hold.event_id ?? undefined);
      if (claimed === undefined) return 'done';
      // Counted once claimed: the release is then queued, and the outbox finishes it if this call fails.
      context.metrics?.reconcilerActions.inc({ action: 'released_orphan_hold' });
      if (claimed.outcome === 'released') {
        released += 1;
        context.log.info({ hold_id: hold.hold_id }, 'released an orphan hold');
      }
      return claimed.outcome === 'unreachable' ? 'halt' : 'done';
    });
    if (round.started < orphans.length || round.halted) return released;
    const next = nextCursor(result.headers);
    if (!next) break;
    settledSoFar &&= pageSettled;
    if (settledSoFar) context.orphanScan.cursor = next;
    cursor = next;
  }
  return released;
}

/** One round of all background work; a failing part is logged and the others still run. */
export async function runMaintenance(context: TicketServiceContext): Promise<void> {
  const parts: Array<[string, (c: TicketServiceContext) => Promise<unknown>]> = [
    ['release outbox', drainReleaseOutbox],
    ['expiry sweep', sweepExpiredReservations],
    ['stale purchases', abandonStalePurchases],
    ['interrupted confirms', completeInterruptedConfirms],
    ['orphan holds', releaseOrphanHolds],
    ['waiting list', runWaitlistRound],
    ['idempotency keys', (c) => tickets.deleteExpiredIdempotencyKeys(c.db, new Date().toISOString())],
  ];
  for (const [name, part] of parts) {
    if (context.stopping.aborted) return;
    try {
      await part(context);
    } catch (error) {
      if (context.stopping.aborted) return;
      const level = error instanceof ServiceUnreachableError ? 'warn' : 'error';
      context.log[level]({ err: error, task: name }, 'background task failed; it runs again next round');
    }
  }
}

