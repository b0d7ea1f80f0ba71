/**
 * The waiting list's offers and gate (DESIGN.md "Waiting list"):
 * - the gate: Σ quantity of an event's WAITING and OFFERING entries with a sequence that only grows,
 *   moved in the transaction of each change and then sent to event-service (a value not acknowledged
 *   is sent again by the reconciler; every release for the event carries it too: outbox.ts);
 * - the processor: per event, the first entry whose quantity fits the free seats goes WAITING →
 *   OFFERING (a new, claimed reference) → an offer hold (`waitlist: true`) → OFFERED with a RESERVED
 *   ticket, `waitlist.offered` in that transaction; no seats → back to WAITING;
 * - the endings of an offer, in the ticket change's own transaction.
 */
import { ServiceUnreachableError, type CallOrigin } from '../../openapi/client.js';
import type { components } from '../../openapi/generated/ticket-service.js';
import { forEachBounded } from '../../platform/bounded.js';
import { newReference } from '../../platform/references.js';
import { toApiDate } from '../../platform/time.js';
import { claimReference } from '../store/claims.js';
import type { CancellationReason, TicketRow } from '../store/schema.js';
import * as tickets from '../store/tickets.js';
import * as waitlist from '../store/waitlist.js';
import type { WaitlistEntryRow } from '../store/waitlist-schema.js';
import { abandonAfterMs, BACKGROUND_CONCURRENCY, type TicketServiceContext, type TicketTransaction } from './context.js';
import { releaseLeaseUntil, releaseNow } from './outbox.js';
import { recordTicketEvent, recordWebhookEvent } from './webhooks.js';

export type ApiWaitlistEntry = components['schemas']['WaitlistEntry'];

/** The entry as the API shows it: OFFERING is internal (WAITING), `position` only while waiting. */
export function toApiEntry(row: WaitlistEntryRow, position: number | null): ApiWaitlistEntry {
  const waiting = row.status === 'WAITING' || row.status === 'OFFERING';
  return {
    id: row.id,
    event_id: row.event_id,
    customer_name: row.customer_name,
    customer_email: row.customer_email,
    quantity: row.quantity,
    status: row.status === 'OFFERING' ? 'WAITING' : row.status,
    position: waiting ? position : null,
    reference: row.reference,
    offer:
      row.ticket_id !== null && row.offer_reference !== null ? { ticket_id: row.ticket_id, reference: row.offer_reference, expires_at: toApiDate(row.offer_expires_at) } : null,
    created_at: toApiDate(row.created_at),
    updated_at: toApiDate(row.updated_at),
  };
}

// The gate

/** Sends the event's current gate; true when event-service has it (or a newer one). */
export async function sendGate(context: TicketServiceContext, eventId: number, origin?: CallOrigin): Promise<boolean> {
  const gate = await waitlist.findGate(context.db, eventId);
  if (!gate || gate.sent_sequence >= gate.sequence) return true;
  try {
    const answer = await context.events.call(
      'setWaitlistGate',
      { path: { id: eventId }, body: waitlist.gateBody(gate) },
      { ...origin, signal: context.stopping },
    );
    // A deleted event needs no gate any more.
    if (answer.ok || answer.status === 404) {
      await context.write((trx) => waitlist.markGateSent(trx, eventId, gate.sequence));
      return true;
    }
    context.log.warn({ event_id: eventId, status: answer.status }, 'event-service refused the waiting-list gate; the reconciler sends it again');
  } catch (error) {
    if (!(error instanceof ServiceUnreachableError)) throw error;
    context.log.warn({ event_id: eventId }, 'could not send the waiting-list gate; the reconciler sends it again');
  }
  return false;
}

/** Gates event-service has not acknowledged are sent again. */
export async function resendGates(context: TicketServiceContext): Promise<number> {
  const unsent = await waitlist.unsentGates(context.db, 200);
  let sent = 0;
  await forEachBounded(unsent, BACKGROUND_CONCURRENCY, context.stopping, async (gate) => {
    if (await sendGate(context, gate.event_id)) sent += 1;
    return 'done';
  });
  return sent;
}

// Offers

export type OfferOutcome = 'offered' | 'no-seats' | 'lost' | 'failed';

const offerExpiry = (context: TicketServiceContext): string =>
  new Date(Math.ceil((Date.now() + context.config.WAITLIST_OFFER_TTL_SECONDS * 1000) / 1000) * 1000).toISOString();

/** One transaction makes `change` and, if it applied, queues the release of the offer's hold (a tombstone if it never existed), then tried at once. */
async function releaseOfferHold(context: TicketServiceContext, change: (trx: TicketTransaction, at: string) => Promise<boolean>, reference: string): Promise<void> {
  const outboxId = await context.write(async (trx) => {
    const at = new Date().toISOString();
    if (!(await change(trx, at))) return undefined;
    return tickets.enqueueRelease(trx, reference, at, releaseLeaseUntil(context));
  });
  if (outboxId !== undefined) await releaseNow(context, outboxId, reference, { signal: context.stopping });
}

/**
 * Offers the seats to one WAITING entry: WAITING → OFFERING with a new claimed reference, the offer
 * hold, then one transaction writes the RESERVED ticket, makes the entry OFFERED and records
 * `waitlist.offered`. Each step is conditional, so an entry is offered at most once at a time.
 */
export async function offerEntry(context: TicketServiceContext, entry: WaitlistEntryRow, origin?: CallOrigin): Promise<OfferOutcome> {
  const reference = newReference();
  const taken = await context.write(async (trx) => {
    const at = new Date().toISOString();
    const row = await waitlist.updateEntryIf(trx, entry.id, 'WAITING', { status: 'OFFERING', offer_reference: reference, ticket_id: null, offer_expires_at: null, updated_at: at });
    if (!row) return undefined;
    if (!(await claimReference(trx, reference, 'ticket', at))) throw new Error(`the new reference ${reference} was already claimed`);
    return row;
  });
  if (!taken) return 'lost';
  const expiresAt = offerExpiry(context);
  const backToWaiting = (trx: TicketTransaction, at: string) => waitlist.updateEntryIf(trx, entry.id, 'OFFERING', { status: 'WAITING', updated_at: at }, reference);
  let answer;
  try {
    answer = await context.events.call(
      'createHold',
      { body: { hold_id: reference, event_id: entry.event_id, quantity: entry.quantity, expires_at: expiresAt, waitlist: true } },
      { ...origin, signal: context.stopping },
    );
  } catch (error) {
    if (!(error instanceof ServiceUnreachableError)) throw error;
    answer = undefined;
  }
  if (answer !== undefined && !answer.ok && (answer.status === 409 || answer.status === 404)) {
    // Not enough seats (or the event is gone): a refused create wrote nothing; the entry waits on.
    await context.write((trx) => backToWaiting(trx, new Date().toISOString()));
    return 'no-seats';
  }
  if (answer === undefined || !answer.ok) {
    // No answer, or one that is not final (a 503 may come after the hold was made): the hold may exist
    // or appear late, and its claimed reference keeps the reconciler off it, so it is released here (a
    // tombstone if it never existed) whether or not the entry is still ours to put back.
    if (answer !== undefined) context.log.error({ status: answer.status, problem: answer.problem }, 'event-service refused an offer hold unexpectedly; releasing whatever hold it may have made');
    await releaseOfferHold(
      context,
      async (trx, at) => {
        await backToWaiting(trx, at);
        return true;
      },
      reference,
    );
    return 'failed';
  }
  const hold = answer.body;
  const offered = await context.write(async (trx) => {
    const at = new Date().toISOString();
    const unitPrice = hold.unit_price ?? 0;
    const ticket = await tickets.insertTicket(trx, {
      event_id: entry.event_id,
      customer_name: entry.customer_name,
      customer_email: entry.customer_email,
      quantity: entry.quantity,
      unit_price: unitPrice,
      total_price: unitPrice * entry.quantity,
      currency: hold.currency,
      status: 'RESERVED',
      reference,
      expires_at: new Date(hold.expires_at).toISOString(),
      cancellation_reason: null,
      payment_reference: null,
      confirming_at: null,
      created_at: at,
      updated_at: at,
    });
    const row = await waitlist.updateEntryIf(trx, entry.id, 'OFFERING', { status: 'OFFERED', ticket_id: ticket.id, offer_expires_at: ticket.expires_at, updated_at: at }, reference);
    // Left, closed or undone meanwhile: nothing of this transaction is kept (the hold is released below).
    if (!row) throw new OfferLost();
    await waitlist.moveGate(trx, entry.event_id, { delta: -entry.quantity }, at);
    await recordTicketEvent(trx, 'ticket.reserved', ticket);
    await recordWebhookEvent(trx, 'waitlist.offered', toApiEntry(row, null), ticket.id);
    return row;
  }).catch((error: unknown) => {
    if (error instanceof OfferLost) return undefined;
    throw error;
  });
  if (!offered) {
    await releaseOfferHold(context, async () => true, reference);
    return 'lost';
  }
  context.log.info({ entry: entry.id, event_id: entry.event_id, ticket: offered.ticket_id }, 'offered seats to the waiting list');
  await sendGate(context, entry.event_id, origin);
  return 'offered';
}

class OfferLost extends Error {}

/** How many offers one pass over an event makes at most (the next pass goes on). */
const OFFERS_PER_PASS = 100;

/**
 * Offers an event's free seats to its line: the first WAITING entry whose quantity fits the seats
 * event-service has free (an earlier, larger entry keeps its place), again and again while seats last.
 */
async function offerFreedSeats(context: TicketServiceContext, eventId: number): Promise<number> {
  let offers = 0;
  for (let pass = 0; pass < OFFERS_PER_PASS && !context.stopping.aborted; pass += 1) {
    const waiting = await waitlist.waitingEntries(context.db, eventId, 500);
    if (waiting.length === 0) return offers;
    let available: number;
    try {
      const event = await context.events.call('getEvent', { path: { id: eventId } }, { signal: context.stopping });
      if (!event.ok) return offers;
      available = event.body.available_tickets;
    } catch (error) {
      if (error instanceof ServiceUnreachableError) return offers;
      throw error;
    }
    const next = waiting.find((entry) => entry.quantity <= available);
    if (!next) return offers;
    const outcome = await offerEntry(context, next);
    if (outcome === 'offered') offers += 1;
    else if (outcome !== 'lost') return offers;
  }
  return offers;
}

/** Runs in this process are serialised per event (replicas are kept apart by the conditional updates). */
const running = new Map<number, Promise<number>>();
const again = new Set<number>();

/** Offers an event's freed seats now (after a cancellation or expiry); a run already going runs once more. */
export function offerSeatsOf(context: TicketServiceContext, eventId: number): Promise<number> {
  const current = running.get(eventId);
  if (current) {
    again.add(eventId);
    return current;
  }
  const run = (async () => {
    let offers = 0;
    do {
      again.delete(eventId);
      offers += await offerFreedSeats(context, eventId);
    } while (again.has(eventId) && !context.stopping.aborted);
    return offers;
  })()
    .catch((error: unknown) => {
      context.log.error({ err: error, event_id: eventId }, 'the waiting-list processor failed; it runs again next round');
      return 0;
    })
    .finally(() => running.delete(eventId));
  running.set(eventId, run);
  return run;
}

/**
 * One background round: OFFERING entries left by a crash are undone (back to WAITING, their hold
 * released through the outbox: a late hold is refused by the tombstone), gates not acknowledged are
 * sent again, and seats freed in event-service are offered.
 */
export async function runWaitlistRound(context: TicketServiceContext): Promise<void> {
  const cutoff = new Date(Date.now() - abandonAfterMs(context.config)).toISOString();
  for (const entry of await waitlist.staleOfferings(context.db, cutoff, 200)) {
    if (context.stopping.aborted || entry.offer_reference === null) continue;
    const reference = entry.offer_reference;
    await releaseOfferHold(
      context,
      (trx, at) => waitlist.undoStaleOffering(trx, entry.id, reference, cutoff, at),
      reference,
    );
    context.log.info({ entry: entry.id }, 'undid an offer interrupted between its steps');
  }
  await resendGates(context);
  const events = await waitlist.eventsWithWaiting(context.db, 500);
  await forEachBounded(events, BACKGROUND_CONCURRENCY, context.stopping, async (eventId) => {
    await offerSeatsOf(context, eventId);
    return 'done';
  });
}

// Endings, in the ticket change's own transaction

/** The offer's ticket was cancelled: its entry ends EXPIRED (`waitlist.expired`), CLOSED (event deleted) or DECLINED. */
export async function endOfferOnCancel(trx: TicketTransaction, ticket: TicketRow, reason: CancellationReason): Promise<void> {
  const to = reason === 'expired' ? 'EXPIRED' : reason === 'event_deleted' ? 'CLOSED' : 'DECLINED';
  const ended = await waitlist.endOfferOfTicket(trx, ticket.id, to, ticket.updated_at);
  if (ended && to === 'EXPIRED') await recordWebhookEvent(trx, 'waitlist.expired', toApiEntry(ended, null), ticket.id);
}

/** The offer's ticket was confirmed: its entry is CONFIRMED. */
export async function endOfferOnConfirm(trx: TicketTransaction, ticket: TicketRow): Promise<void> {
  await waitlist.endOfferOfTicket(trx, ticket.id, 'CONFIRMED', ticket.updated_at);
}
