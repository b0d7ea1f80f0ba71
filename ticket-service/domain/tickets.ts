/**
 * Reading tickets and moving them between statuses: RESERVED → CONFIRMED (commit the hold first),
 * RESERVED/CONFIRMED → CANCELLED (one transaction with an outbox release, then the release at once),
 * and deletion (release, then remove).
 */
import type { components, operations } from '../../openapi/generated/ticket-service.js';
import { ServiceUnreachableError, type CallOrigin } from '../../openapi/client.js';
import { ConflictError, NotFoundError, ProblemError, UnauthorizedError, UnavailableError, ForbiddenError } from '../../platform/errors.js';
import { sameSecret, type Principal } from '../../platform/auth.js';
import { pageById, type Page } from '../../platform/pagination.js';
import * as tickets from '../store/tickets.js';
import type { CancellationReason, TicketRow } from '../store/schema.js';
import { unreachableText, type TicketServiceContext, type TicketTransaction } from './context.js';
import { releaseLeaseUntil, releaseNow, type ReleaseOptions, type ReleaseOutcome } from './outbox.js';
import type { PublicStatus } from './representation.js';
import { recordTicketDeleted, recordTicketEvent } from './webhooks.js';
import { endOfferOnCancel, endOfferOnConfirm, offerSeatsOf } from './waitlist-offers.js';

type StatusUpdate = components['schemas']['TicketStatusUpdate'];
type ListQuery = NonNullable<operations['listTickets']['parameters']['query']>;

export const ALLOWED_TRANSITIONS: Record<PublicStatus, PublicStatus[]> = {
  RESERVED: ['CONFIRMED', 'CANCELLED'],
  CONFIRMED: ['CANCELLED'],
  CANCELLED: [],
};

export interface Access {
  principal: Principal;
  /** Set when the caller may only act by showing the ticket's reference. */
  needsReference: boolean;
  reference: string | undefined;
  /** True when no ADMIN_TOKEN is configured (development mode). */
  developmentMode: boolean;
}

/** A ticket the caller may see: internal statuses are invisible, and without the admin token the reference must match. */
export async function visibleTicket(context: TicketServiceContext, id: number, access: Access): Promise<TicketRow> {
  const row = await tickets.findTicket(context.db, id);
  const visible = row && row.status !== 'PENDING' && row.status !== 'ABANDONED' ? row : undefined;
  if (access.needsReference) {
    const matches = visible && access.reference !== undefined && sameSecret(access.reference, visible.reference);
    if (!matches) throw new UnauthorizedError("This ticket needs the admin token or its reference in X-Ticket-Reference.");
  }
  if (!visible) throw new NotFoundError(`Ticket ${id} does not exist.`);
  return visible;
}

export async function listTickets(context: TicketServiceContext, query: ListQuery): Promise<Page<TicketRow>> {
  const filter: tickets.TicketFilter = {};
  if (query.event_id !== undefined) filter.eventId = query.event_id;
  if (query.status !== undefined) filter.status = query.status;
  return pageById(
    query,
    (limit, position) => tickets.selectTicketPage(context.db, filter, limit, position),
    () => tickets.countTickets(context.db, filter),
  );
}

/**
 * Cancels a RESERVED or CONFIRMED ticket, if it is still as read (undefined if it moved on): one
 * transaction sets CANCELLED with its reason and records a pending release; the release is then tried
 * at once (the outbox retries it if that fails).
 */
export async function cancelTicket(
  context: TicketServiceContext,
  row: TicketRow,
  reason: CancellationReason,
  options: ReleaseOptions & { releaseAtOnce?: boolean } = {},
): Promise<{ ticket: TicketRow; release: ReleaseOutcome | 'queued' } | undefined> {
  const outcome = await context.write(async (trx) => {
    const at = new Date().toISOString();
    const cancelled = await tickets.updateTicketAsRead(trx, row, {
      status: 'CANCELLED',
      cancellation_reason: reason,
      confirming_at: null,
      updated_at: at,
    });
    if (!cancelled) return undefined;
    await recordTicketEvent(trx, 'ticket.cancelled', cancelled);
    await endOfferOnCancel(trx, cancelled, reason);
    const outboxId = await tickets.enqueueRelease(trx, row.reference, at, options.releaseAtOnce === false ? undefined : releaseLeaseUntil(context));
    return { cancelled, outboxId };
  });
  if (!outcome) return undefined;
  const release = options.releaseAtOnce === false ? 'queued' : await releaseNow(context, outcome.outboxId, row.reference, options);
  // The freed seats go to the waiting list at once (the gate rode on the release); a deleted event's never do.
  if (release === 'released' && reason !== 'event_deleted') void offerSeatsOf(context, row.event_id);
  return { ticket: outcome.cancelled, release };
}

function cancellationReason(update: StatusUpdate, access: Access): CancellationReason {
  const asked = update.cancellation_reason;
  const privileged = access.principal === 'admin' || access.developmentMode;
  if ((asked === 'admin' || asked === 'event_deleted') && !privileged) {
    throw new ForbiddenError(`Cancelling with reason '${asked}' needs the admin token.`);
  }
  return asked ?? (access.principal === 'admin' ? 'admin' : 'customer');
}

export async function changeTicketStatus(context: TicketServiceContext, id: number, update: StatusUpdate, access: Access, origin: CallOrigin): Promise<TicketRow> {
  const row = await visibleTicket(context, id, access);
  const paymentRight = access.developmentMode || access.principal === 'admin' || access.principal === 'payment';
  if (update.status === 'CONFIRMED' && !paymentRight) {
    throw new ForbiddenError("Confirming a ticket records that it was paid: it needs the admin token or PAYMENT_TOKEN. The ticket's reference may read or cancel it.");
  }
  const current = row.status as PublicStatus;
  if (current === update.status) return row;
  if (!ALLOWED_TRANSITIONS[current].includes(update.status)) {
    const allowed = ALLOWED_TRANSITIONS[current];
    throw new ConflictError('invalid-transition', `A ${current} ticket cannot become ${update.status}${allowed.length ? `; allowed: ${allowed.join(', ')}` : '; it is final'}.`, {
      current_status: current,
      allowed_transitions: allowed,
    });
  }
  if (update.status === 'CANCELLED') {
    const cancelled = await cancelTicket(context, row, cancellationReason(update, access), { origin });
    // The ticket moved on meanwhile (a confirm or the sweeper): answer from its new state.
    return cancelled?.ticket ?? changeTicketStatus(context, id, update, access, origin);
  }
  return confirmTicket(context, row, update.payment_reference, origin);
}

/**
 * Confirms a RESERVED ticket before its expiry: commit the hold first, then RESERVED → CONFIRMED. A
 * hold that lapsed cancels the ticket (reason `expired`); a timeout leaves it RESERVED for a retry.
 */
export async function confirmTicket(context: TicketServiceContext, row: TicketRow, paymentReference: string | undefined, origin?: CallOrigin): Promise<TicketRow> {
  // A confirm that already started (and may have committed the hold) is retried by committing again.
  if (row.confirming_at === null && row.expires_at !== null && row.expires_at <= new Date().toISOString()) {
    await cancelTicket(context, row, 'expired', { origin });
    throw new ProblemError('reservation-expired', `Reservation ${row.id} expired at ${row.expires_at.replace(/\.000Z$/, 'Z')}; its seats were released.`);
  }
  const marked = await context.write((trx) =>
    tickets.updateTicketIf(trx, row.id, 'RESERVED', {
      // Renewed on every attempt: background work that read an older mark acts only if it is unchanged.
      confirming_at: new Date().toISOString(),
      // Kept with the mark, so that a confirm the reconciler completes still records it.
      payment_reference: paymentReference ?? row.payment_reference,
    }),
  );
  if (!marked) {
    const now = await tickets.findTicket(context.db, row.id);
    if (now?.status === 'CONFIRMED') return now;
    const allowed = now && now.status in ALLOWED_TRANSITIONS ? ALLOWED_TRANSITIONS[now.status as PublicStatus] : [];
    throw new ConflictError('invalid-transition', `Ticket ${row.id} is ${now?.status ?? 'gone'}; it cannot be confirmed.`, { allowed_transitions: allowed });
  }
  let commit;
  try {
    commit = await context.events.call('commitHold', { path: { hold_id: row.reference } }, origin);
  } catch (error) {
    if (error instanceof ServiceUnreachableError) throw new UnavailableError(`${unreachableText(error)}; the ticket is still RESERVED, retry the confirmation.`);
    throw error;
  }
  if (!commit.ok) {
    if (commit.status === 409 || commit.status === 404) {
      await cancelTicket(context, marked, 'expired', { origin });
      throw new ProblemError('reservation-expired', `Reservation ${row.id} expired; its seats were released.`);
    }
    context.log.error({ status: commit.status, problem: commit.problem }, 'event-service refused a commit unexpectedly');
    throw new UnavailableError('event-service could not commit the hold; retry the confirmation.');
  }
  const confirmed = await context.write((trx) => confirmReserved(trx, row.id, { payment_reference: paymentReference ?? marked.payment_reference }));
  if (confirmed) return confirmed;
  // Cancelled meanwhile: its outbox release gives the committed seats back.
  throw new ConflictError('invalid-transition', `Ticket ${row.id} was cancelled while it was being confirmed.`, { allowed_transitions: [] });
}

/** Releases the ticket's seats (through the outbox) and removes it. */
export async function deleteTicket(context: TicketServiceContext, id: number, access: Access, origin: CallOrigin): Promise<void> {
  const row = await visibleTicket(context, id, access);
  const outboxId = await context.write(async (trx) => {
    await recordTicketDeleted(trx, row.id);
    await tickets.deleteTicketRow(trx, row.id);
    // A deleted offer is a declined one.
    await endOfferOnCancel(trx, { ...row, updated_at: new Date().toISOString() }, 'admin');
    return row.status === 'CANCELLED' ? undefined : tickets.enqueueRelease(trx, row.reference, new Date().toISOString(), releaseLeaseUntil(context), row.event_id);
  });
  if (outboxId !== undefined && (await releaseNow(context, outboxId, row.reference, { origin })) === 'released') void offerSeatsOf(context, row.event_id);
}

/**
 * RESERVED becomes CONFIRMED, with what goes with it in the same transaction: the `ticket.confirmed`
 * webhook event and, for a waiting-list offer, its entry's end. Undefined when the ticket was no
 * longer RESERVED. (A confirm, and the reconciler's completion of an interrupted one.)
 */
export async function confirmReserved(trx: TicketTransaction, id: number, changes: { payment_reference?: string | null } = {}): Promise<TicketRow | undefined> {
  const confirmed = await tickets.updateTicketIf(trx, id, 'RESERVED', { ...changes, status: 'CONFIRMED', confirming_at: null, updated_at: new Date().toISOString() });
  if (confirmed) {
    await recordTicketEvent(trx, 'ticket.confirmed', confirmed);
    await endOfferOnConfirm(trx, confirmed);
  }
  return confirmed;
}
