/**
 * The purchase saga of DESIGN.md. With an Idempotency-Key, a PENDING ticket is written first (with the
 * key), then the hold is asked for with the ticket's reference as hold id and its expiry, then one
 * conditional update makes it RESERVED; the key's answer is stored in the same transactions.
 * Without a key nothing needs the PENDING row, so the hold comes first and the ticket is written once,
 * RESERVED: one commit instead of two (see `purchaseWithoutKey`).
 */
import { createHash } from 'node:crypto';
import type { CallOrigin } from '../../openapi/client.js';
import type { components } from '../../openapi/generated/ticket-service.js';
import type { components as EventComponents } from '../../openapi/generated/event-service.js';
import { StoredProblemError, UnavailableError, ValidationError, ProblemError, problemType, type ProblemBody } from '../../platform/errors.js';
import { newReference } from '../../platform/references.js';
import { claimReference } from '../store/claims.js';
import * as tickets from '../store/tickets.js';
import type { IdempotencyRow, TicketRow } from '../store/schema.js';
import { abandonAfterMs, unreachableText, type TicketServiceContext, type TicketTransaction } from './context.js';
import type { EventSummary } from './event-summaries.js';
import { releaseLeaseUntil, releaseNow } from './outbox.js';
import { toApiTicket, type ApiTicket } from './representation.js';
import { recordTicketEvent } from './webhooks.js';

type TicketCreate = components['schemas']['TicketCreate'];

const KEY_LIFETIME_MS = 24 * 3600 * 1000;
const UNLOCKED = '1970-01-01T00:00:00.000Z';

export interface PurchaseResult {
  ticket: ApiTicket;
  /** True when this is the stored answer of an earlier request with the same Idempotency-Key. */
  replayed: boolean;
}

/** A hash of the body that does not depend on the order of its fields. */
function canonicalHash(body: TicketCreate): string {
  const record = body as unknown as Record<string, unknown>;
  const canonical = JSON.stringify(Object.keys(record).sort().map((key) => [key, record[key]]));
  return createHash('sha256').update(canonical).digest('hex');
}

type Start = { replay: IdempotencyRow } | { ticket: TicketRow };

/** The row of a new ticket for this order; the price is known once a hold has fixed it. */
function newTicket(
  body: TicketCreate,
  fields: { status: 'PENDING' | 'RESERVED'; reference: string; expiresAt: string; createdAt: string; updatedAt?: string; price?: { unitPrice: number; currency: string | null } },
): tickets.TicketValues {
  return {
    event_id: body.event_id,
    customer_name: body.customer_name,
    customer_email: body.customer_email,
    quantity: body.quantity,
    unit_price: fields.price?.unitPrice ?? null,
    total_price: fields.price ? fields.price.unitPrice * body.quantity : null,
    currency: fields.price?.currency ?? null,
    status: fields.status,
    reference: fields.reference,
    expires_at: fields.expiresAt,
    cancellation_reason: null,
    payment_reference: null,
    confirming_at: null,
    created_at: fields.createdAt,
    updated_at: fields.updatedAt ?? fields.createdAt,
  };
}

/** Whole seconds, so that the expiry shown (to the second) is the one enforced. */
function expiryFrom(now: Date, context: TicketServiceContext): string {
  return new Date(Math.ceil((now.getTime() + context.config.RESERVATION_TTL_SECONDS * 1000) / 1000) * 1000).toISOString();
}

/**
 * Writes a new PENDING ticket for this order, claiming its new reference (a retry that re-drives the
 * ticket keeps the claim it made here), and points the key, held by this request, at it (inside a
 * transaction).
 */
async function insertPendingTicket(trx: TicketTransaction, body: TicketCreate, key: string, now: Date, context: TicketServiceContext): Promise<TicketRow> {
  const reference = newReference();
  if (!(await claimReference(trx, reference, 'ticket', now.toISOString()))) throw new Error(`the new reference ${reference} was already claimed`);
  const ticket = await tickets.insertTicket(trx, newTicket(body, { status: 'PENDING', reference, expiresAt: expiryFrom(now, context), createdAt: now.toISOString() }));
  await tickets.updateIdempotencyKey(trx, key, { ticket_id: ticket.id, locked_until: lockUntil(now, context) });
  return ticket;
}

const lockUntil = (now: Date, context: TicketServiceContext): string => new Date(now.getTime() + abandonAfterMs(context.config)).toISOString();

/** The key belongs to another request: its stored answer, or why this one cannot go on. */
function answerForTakenKey(existing: IdempotencyRow | undefined, key: string, hash: string): Start {
  if (existing !== undefined && existing.body_hash !== hash) {
    throw new ProblemError('idempotency-key-reused', `Idempotency-Key ${key} was used with another body; use a new key for a new purchase.`);
  }
  if (existing !== undefined && existing.status_code !== null) return { replay: existing };
  throw new ProblemError('idempotency-in-flight', `A request with Idempotency-Key ${key} is still in progress; retry in a few seconds.`);
}

/**
 * One transaction: claim the key (an insert against its primary key), or take it again for a retry
 * of an attempt that got no stored answer (a conditional update); then write, or claim again, the
 * PENDING ticket. Neither step reads before it writes, so two requests with one key at once cannot
 * both go on, whatever isolation the store gives.
 */
async function startPurchase(context: TicketServiceContext, body: TicketCreate, key: string): Promise<Start> {
  const now = new Date();
  const at = now.toISOString();
  const hash = canonicalHash(body);
  const lockedUntil = lockUntil(now, context);
  return context.write(async (trx) => {
    const claim = { key, body_hash: hash, ticket_id: null, status_code: null, response_body: null, locked_until: lockedUntil, created_at: at, expires_at: new Date(now.getTime() + KEY_LIFETIME_MS).toISOString() };
    if (await tickets.claimIdempotencyKey(trx, claim, at)) return { ticket: await insertPendingTicket(trx, body, key, now, context) };
    const retry = await tickets.relockIdempotencyKey(trx, key, hash, at, lockedUntil);
    if (!retry) return answerForTakenKey(await tickets.findIdempotencyKey(trx, key, at), key, hash);
    // An earlier attempt ended in a 5xx or a crash: drive the same ticket (and so the same hold) again,
    // claimed anew so that the reconciler cannot abandon it under this retry.
    const earlier = retry.ticket_id === null ? undefined : await tickets.findTicket(trx, retry.ticket_id);
    const again =
      earlier?.status === 'PENDING' ? await tickets.reclaimPendingTicket(trx, earlier.id, at, expiryFrom(now, context)) : earlier?.status === 'RESERVED' ? earlier : undefined;
    return { ticket: again ?? (await insertPendingTicket(trx, body, key, now, context)) };
  });
}

/**
 * The purchase's own reference was released (the reconciler gave up on an earlier attempt) or its
 * hold expired: that is the system's recovery, never the customer's answer. One transaction gives up
 * the old ticket and starts a new one with a new reference under the same key.
 */
async function startOver(context: TicketServiceContext, body: TicketCreate, key: string, stale: TicketRow): Promise<TicketRow> {
  const now = new Date();
  return context.write(async (trx) => {
    await tickets.updateTicketIf(trx, stale.id, 'PENDING', { status: 'ABANDONED', updated_at: now.toISOString() });
    return insertPendingTicket(trx, body, key, now, context);
  });
}

function replayStored(row: IdempotencyRow): PurchaseResult {
  const body = JSON.parse(row.response_body ?? '{}') as unknown;
  if (row.status_code === 201) return { ticket: body as ApiTicket, replayed: true };
  throw new StoredProblemError(body as ProblemBody, { 'idempotent-replayed': 'true' });
}

async function unlockKey(context: TicketServiceContext, key: string): Promise<void> {
  await context.write((trx) => tickets.updateIdempotencyKey(trx, key, { locked_until: UNLOCKED }));
}

export async function purchaseTickets(context: TicketServiceContext, body: TicketCreate, key: string | undefined, origin: CallOrigin): Promise<PurchaseResult> {
  if (body.quantity > context.config.MAX_TICKETS_PER_ORDER) {
    throw new ValidationError([{ pointer: '#/quantity', detail: `must be <= ${context.config.MAX_TICKETS_PER_ORDER} (MAX_TICKETS_PER_ORDER)` }]);
  }
  if (key === undefined) return { ticket: await purchaseWithoutKey(context, body, origin), replayed: false };
  const start = await startPurchase(context, body, key);
  if ('replay' in start) return replayStored(start.replay);
  let pending = start.ticket;

  let asked = await askForHold(context, holdRequest(pending), origin);
  if (asked.outcome === 'released') {
    context.log.info({ ticket: pending.id, reference: pending.reference }, 'the retried purchase found its hold released by recovery; starting over with a new reference');
    pending = await startOver(context, body, key, pending);
    asked = await askForHold(context, holdRequest(pending), origin);
  }
  if (asked.outcome === 'refused') {
    // Refused for good (no such event, sold out, sales closed): discard the pending ticket, keep the answer.
    await context.write(async (trx) => {
      await tickets.deletePendingTicket(trx, pending.id);
      await tickets.updateIdempotencyKey(trx, key, { status_code: asked.status, response_body: JSON.stringify(asked.problem), ticket_id: null });
    });
    throw new StoredProblemError(asked.problem);
  }
  if (asked.outcome !== 'held') {
    logFailedHold(context, asked, { ticket: pending.id }, 'the pending ticket is left for the reconciler');
    await unlockKey(context, key);
    throw new UnavailableError(`${failureText(asked)}; retry with the same Idempotency-Key.`);
  }

  const { hold: held, summary } = asked;
  const reserved = await context.write(async (trx) => {
    const at = new Date().toISOString();
    let row = await tickets.updateTicketIf(trx, pending.id, 'PENDING', {
      status: 'RESERVED',
      unit_price: held.unit_price,
      total_price: (held.unit_price ?? 0) * pending.quantity,
      currency: held.currency,
      // The hold's expiry is the one enforced (a retry may have found the first attempt's hold).
      expires_at: new Date(held.expires_at).toISOString(),
      updated_at: at,
    });
    if (row) await recordTicketEvent(trx, 'ticket.reserved', row);
    if (!row) {
      const current = await tickets.findTicket(trx, pending.id);
      if (current?.status !== 'RESERVED') return undefined;
      row = current;
    }
    const ticket = toApiTicket(row, summary);
    await tickets.updateIdempotencyKey(trx, key, { status_code: 201, response_body: JSON.stringify(ticket) });
    return ticket;
  });
  if (!reserved) {
    // The reconciler abandoned the pending ticket while the hold call was slow; it releases the hold.
    await unlockKey(context, key);
    throw new UnavailableError('The reservation took too long and was abandoned; retry the purchase.');
  }
  return { ticket: reserved, replayed: false };
}

const holdRequest = (ticket: TicketRow): HoldCreate => ({
  hold_id: ticket.reference,
  event_id: ticket.event_id,
  quantity: ticket.quantity,
  expires_at: ticket.expires_at ?? new Date().toISOString(),
});

type HoldCreate = EventComponents['schemas']['HoldCreate'];
type Hold = EventComponents['schemas']['Hold'];

type HoldOutcome =
  | { outcome: 'held'; hold: Hold; summary: EventSummary | undefined }
  /** 404 or 409: no such event, sold out, sales closed; the answer is final and passed on. */
  | { outcome: 'refused'; status: number; problem: ProblemBody }
  /** 409 hold-state: this reference was released or expired (by recovery), so it can never be held again. */
  | { outcome: 'released'; problem: ProblemBody }
  /** No answer in time, or an answer that is not final (the hold may exist, or appear late). */
  | { outcome: 'failed'; error?: unknown; status?: number; problem?: unknown };

/** Asks event-service for the hold, and for the event's summary meanwhile (cached). */
async function askForHold(context: TicketServiceContext, hold: HoldCreate, origin: CallOrigin): Promise<HoldOutcome> {
  const [answer, summary] = await Promise.all([
    context.events.call('createHold', { body: hold }, origin).catch((error: unknown) => ({ error })),
    context.summaries.get(hold.event_id, origin),
  ]);
  if ('error' in answer) return { outcome: 'failed', error: answer.error };
  if (answer.ok) return { outcome: 'held', hold: answer.body, summary };
  if (answer.status === 409 && answer.problem.type === problemType('hold-state')) return { outcome: 'released', problem: answer.problem as ProblemBody };
  if (answer.status === 404 || answer.status === 409) return { outcome: 'refused', status: answer.status, problem: answer.problem as ProblemBody };
  return { outcome: 'failed', status: answer.status, problem: answer.problem };
}

type NotHeld = Exclude<HoldOutcome, { outcome: 'held' } | { outcome: 'refused' }>;

const failureText = (failed: NotHeld): string => {
  if (failed.outcome === 'released') return 'the reservation was released while it was being retried';
  return failed.error === undefined ? 'event-service could not take the hold' : unreachableText(failed.error);
};

function logFailedHold(context: TicketServiceContext, failed: NotHeld, about: Record<string, unknown>, then: string): void {
  if (failed.outcome === 'released') context.log.warn({ ...about }, `the hold was released again; ${then}`);
  else if (failed.error === undefined) context.log.error({ status: failed.status, problem: failed.problem, ...about }, `event-service refused a hold unexpectedly; ${then}`);
  else context.log.warn({ err: failed.error, ...about }, `hold call failed; ${then}`);
}

/**
 * A purchase without an Idempotency-Key: the hold first, then the ticket written once, RESERVED, with
 * the price the hold returned. DESIGN.md allows dropping the PENDING write because holds are
 * reconciled: a hold whose ticket is never written (a crash, a failed write) has no ticket behind it
 * and the reconciler releases it once older than the settle window. The ticket write claims the
 * reference in the same transaction; if the reconciler (of any replica) claimed it first, it has
 * released the hold, and the purchase answers 503 instead of selling it. While the purchase is in
 * flight its reference is in `purchasesInFlight`, which the reconciler of this process skips: an
 * optimisation that spares it those 503s. When the hold call fails, the hold (if any) is released
 * through the outbox at once.
 */
async function purchaseWithoutKey(context: TicketServiceContext, body: TicketCreate, origin: CallOrigin): Promise<ApiTicket> {
  const now = new Date();
  const reference = newReference();
  const expiresAt = expiryFrom(now, context);
  context.purchasesInFlight.add(reference);
  try {
    const asked = await askForHold(context, { hold_id: reference, event_id: body.event_id, quantity: body.quantity, expires_at: expiresAt }, origin);
    // Refused for good (no such event, sold out, sales closed): nothing was written.
    if (asked.outcome === 'refused') throw new StoredProblemError(asked.problem);
    if (asked.outcome !== 'held') {
      logFailedHold(context, asked, { reference }, 'releasing whatever hold it may have left');
      await releaseAbandonedHold(context, reference, body.event_id, origin);
      throw new UnavailableError(`${failureText(asked)}; retry the purchase (send an Idempotency-Key to make retries safe).`);
    }
    // Null only on a release tombstone, never on a hold just created.
    const price = { unitPrice: asked.hold.unit_price ?? 0, currency: asked.hold.currency };
    // If this write fails the hold is left to the reconciler: the failure may come after the commit (a
    // failed flush), when releasing the hold would leave a ticket without seats.
    const row = await context.write(async (trx) => {
      const at = new Date().toISOString();
      if (!(await claimReference(trx, reference, 'ticket', at))) return undefined;
      const inserted = await tickets.insertTicket(trx, newTicket(body, { status: 'RESERVED', reference, expiresAt, createdAt: now.toISOString(), updatedAt: at, price }));
      await recordTicketEvent(trx, 'ticket.reserved', inserted);
      return inserted;
    });
    if (!row) {
      context.log.warn({ reference }, 'the reconciler claimed and released the hold before the ticket was written; the purchase answers 503');
      throw new UnavailableError('The reservation took too long and its seats were released; retry the purchase (send an Idempotency-Key to make retries safe).');
    }
    return toApiTicket(row, asked.summary);
  } finally {
    context.purchasesInFlight.delete(reference);
  }
}

/** The hold call failed or was refused unexpectedly: a hold may exist (or appear late); release it through the outbox. */
async function releaseAbandonedHold(context: TicketServiceContext, reference: string, eventId: number, origin: CallOrigin): Promise<void> {
  const outboxId = await context.write((trx) => tickets.enqueueRelease(trx, reference, new Date().toISOString(), releaseLeaseUntil(context), eventId));
  // Tried in the background: event-service may be the one that is down, and the outbox retries.
  void releaseNow(context, outboxId, reference, { origin }).catch((error: unknown) => context.log.error({ err: error, reference }, 'seat release failed'));
}
