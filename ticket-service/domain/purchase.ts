/**
 * The purchase saga of DESIGN.md. With an Idempotency-Key, a PENDING ticket is written first (with the
 * key), then the hold is asked for with the ticket's reference as hold id and its expiry, then one
 * conditional update makes it RESERVED; the key's answer is stored in the same transactions.
 * Without a key nothing needs the PENDING row, so the hold comes first and the ticket is written once,
 * RESERVED: one commit instead of two (see `purchaseWithoutKey`).
 */
import { createHash, randomUUID } from 'node:crypto';
import type { components } from '../../openapi/generated/ticket-service.js';
import { ServiceUnreachableError } from '../../openapi/client.js';
import { StoredProblemError, UnavailableError, ValidationError, ProblemError, type ProblemBody } from '../../platform/errors.js';
import * as tickets from '../store/tickets.js';
import type { IdempotencyRow, TicketRow } from '../store/schema.js';
import { holdCallTimeoutMs, type TicketServiceContext } from './context.js';
import { releaseNow } from './outbox.js';
import { toApiTicket, type ApiTicket } from './representation.js';

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

/** Whole seconds, so that the expiry shown (to the second) is the one enforced. */
function expiryFrom(now: Date, context: TicketServiceContext): string {
  return new Date(Math.ceil((now.getTime() + context.config.RESERVATION_TTL_SECONDS * 1000) / 1000) * 1000).toISOString();
}

/** One transaction: look up the key, then write (or pick up) the PENDING ticket and lock the key. */
async function startPurchase(context: TicketServiceContext, body: TicketCreate, key: string | undefined): Promise<Start> {
  const now = new Date();
  const at = now.toISOString();
  const hash = key === undefined ? '' : canonicalHash(body);
  const lockedUntil = new Date(now.getTime() + holdCallTimeoutMs(context.config) * 2 + 1000).toISOString();
  return context.write(async (trx) => {
    if (key !== undefined) {
      const existing = await tickets.findIdempotencyKey(trx, key, at);
      if (existing) {
        if (existing.body_hash !== hash) throw new ProblemError('idempotency-key-reused', `Idempotency-Key ${key} was used with another body; use a new key for a new purchase.`);
        if (existing.status_code !== null) return { replay: existing };
        if (existing.locked_until > at) throw new ProblemError('idempotency-in-flight', `A request with Idempotency-Key ${key} is still in progress; retry in a few seconds.`);
        // An earlier attempt ended in a 5xx or a crash: drive the same ticket (and so the same hold) again.
        const earlier = existing.ticket_id === null ? undefined : await tickets.findTicket(trx, existing.ticket_id);
        if (earlier && (earlier.status === 'PENDING' || earlier.status === 'RESERVED')) {
          await tickets.updateIdempotencyKey(trx, key, { locked_until: lockedUntil });
          return { ticket: earlier };
        }
      }
    }
    const ticket = await tickets.insertTicket(trx, {
      event_id: body.event_id,
      customer_name: body.customer_name,
      customer_email: body.customer_email,
      quantity: body.quantity,
      unit_price: null,
      total_price: null,
      currency: null,
      status: 'PENDING',
      reference: randomUUID(),
      expires_at: expiryFrom(now, context),
      cancellation_reason: null,
      payment_reference: null,
      confirming_at: null,
      created_at: at,
      updated_at: at,
    });
    if (key !== undefined) {
      await tickets.upsertIdempotencyKey(trx, {
        key,
        body_hash: hash,
        ticket_id: ticket.id,
        status_code: null,
        response_body: null,
        locked_until: lockedUntil,
        created_at: at,
        expires_at: new Date(now.getTime() + KEY_LIFETIME_MS).toISOString(),
      });
    }
    return { ticket };
  });
}

function replayStored(row: IdempotencyRow): PurchaseResult {
  const body = JSON.parse(row.response_body ?? '{}') as unknown;
  if (row.status_code === 201) return { ticket: body as ApiTicket, replayed: true };
  throw new StoredProblemError(body as ProblemBody, { 'idempotent-replayed': 'true' });
}

async function unlockKey(context: TicketServiceContext, key: string | undefined): Promise<void> {
  if (key !== undefined) await context.write((trx) => tickets.updateIdempotencyKey(trx, key, { locked_until: UNLOCKED }));
}

export async function purchaseTickets(context: TicketServiceContext, body: TicketCreate, key: string | undefined, requestId: string): Promise<PurchaseResult> {
  if (body.quantity > context.config.MAX_TICKETS_PER_ORDER) {
    throw new ValidationError([{ pointer: '#/quantity', detail: `must be <= ${context.config.MAX_TICKETS_PER_ORDER} (MAX_TICKETS_PER_ORDER)` }]);
  }
  if (key === undefined) return { ticket: await purchaseWithoutKey(context, body, requestId), replayed: false };
  const start = await startPurchase(context, body, key);
  if ('replay' in start) return replayStored(start.replay);
  const pending = start.ticket;

  const [hold, summary] = await Promise.all([
    context.events
      .call(
        'createHold',
        { body: { hold_id: pending.reference, event_id: pending.event_id, quantity: pending.quantity, expires_at: pending.expires_at ?? new Date().toISOString() } },
        { requestId },
      )
      .catch((error: unknown) => error),
    context.summaries.get(pending.event_id, requestId),
  ]);

  if (hold instanceof ServiceUnreachableError || hold instanceof Error) {
    context.log.warn({ err: hold, ticket: pending.id }, 'hold call failed; the pending ticket is left for the reconciler');
    await unlockKey(context, key);
    throw new UnavailableError('event-service did not answer in time; retry with the same Idempotency-Key.');
  }
  const result = hold as Awaited<ReturnType<typeof context.events.call<'createHold'>>>;
  if (!result.ok) {
    if (result.status === 404 || result.status === 409) {
      // Refused for good (no such event, sold out, sales closed): discard the pending ticket, keep the answer.
      const problem = result.problem as ProblemBody;
      await context.write(async (trx) => {
        const current = await tickets.findTicket(trx, pending.id);
        if (current?.status === 'PENDING') await tickets.deleteTicketRow(trx, pending.id);
        if (key !== undefined) await tickets.updateIdempotencyKey(trx, key, { status_code: result.status, response_body: JSON.stringify(problem), ticket_id: null });
      });
      throw new StoredProblemError(problem);
    }
    context.log.error({ status: result.status, problem: result.problem, ticket: pending.id }, 'event-service refused a hold unexpectedly');
    await unlockKey(context, key);
    throw new UnavailableError('event-service could not take the hold; retry with the same Idempotency-Key.');
  }

  const held = result.body;
  const reserved = await context.write(async (trx) => {
    const at = new Date().toISOString();
    let row = await tickets.updateTicketIf(trx, pending.id, 'PENDING', {
      status: 'RESERVED',
      unit_price: held.unit_price,
      total_price: (held.unit_price ?? 0) * pending.quantity,
      currency: held.currency,
      updated_at: at,
    });
    if (!row) {
      const current = await tickets.findTicket(trx, pending.id);
      if (current?.status !== 'RESERVED') return undefined;
      row = current;
    }
    const ticket = toApiTicket(row, summary);
    if (key !== undefined) await tickets.updateIdempotencyKey(trx, key, { status_code: 201, response_body: JSON.stringify(ticket) });
    return ticket;
  });
  if (!reserved) {
    // The reconciler abandoned the pending ticket while the hold call was slow; it releases the hold.
    await unlockKey(context, key);
    throw new UnavailableError('The reservation took too long and was abandoned; retry the purchase.');
  }
  return { ticket: reserved, replayed: false };
}

type HoldAnswer = Awaited<ReturnType<TicketServiceContext['events']['call']>> | Error;

/**
 * A purchase without an Idempotency-Key: the hold first, then the ticket written once, RESERVED, with
 * the price the hold returned. DESIGN.md allows dropping the PENDING write because holds are
 * reconciled: a hold whose ticket is never written (a crash, a failed write) has no ticket behind it
 * and the reconciler releases it once older than the settle window. While the purchase is in flight
 * its reference is in `purchasesInFlight`, which the reconciler of this process skips, so even a zero
 * settle window never releases a hold under a purchase. (Replicas rely on the settle window, which
 * must exceed the hold call's timeout.) When the hold call fails, the hold (if any) is released
 * through the outbox at once.
 */
async function purchaseWithoutKey(context: TicketServiceContext, body: TicketCreate, requestId: string): Promise<ApiTicket> {
  const now = new Date();
  const reference = randomUUID();
  const expiresAt = expiryFrom(now, context);
  context.purchasesInFlight.add(reference);
  try {
    const [hold, summary] = await Promise.all([
      context.events
        .call('createHold', { body: { hold_id: reference, event_id: body.event_id, quantity: body.quantity, expires_at: expiresAt } }, { requestId })
        .catch((error: unknown) => (error instanceof Error ? error : new Error(String(error)))),
      context.summaries.get(body.event_id, requestId),
    ]);
    if (hold instanceof Error || !hold.ok) {
      if (!(hold instanceof Error) && (hold.status === 404 || hold.status === 409)) {
        // Refused for good (no such event, sold out, sales closed): nothing was written.
        throw new StoredProblemError(hold.problem as ProblemBody);
      }
      await releaseAbandonedHold(context, reference, hold, requestId);
      throw new UnavailableError(
        hold instanceof Error
          ? 'event-service did not answer in time; retry the purchase (send an Idempotency-Key to make retries safe).'
          : 'event-service could not take the hold; retry the purchase.',
      );
    }
    // Null only on a release tombstone, never on a hold just created.
    const unitPrice = hold.body.unit_price ?? 0;
    // If this write fails the hold is left to the reconciler: the failure may come after the commit (a
    // failed flush), when releasing the hold would leave a ticket without seats.
    const row = await context.write((trx) =>
      tickets.insertTicket(trx, {
        event_id: body.event_id,
        customer_name: body.customer_name,
        customer_email: body.customer_email,
        quantity: body.quantity,
        unit_price: unitPrice,
        total_price: unitPrice * body.quantity,
        currency: hold.body.currency,
        status: 'RESERVED',
        reference,
        expires_at: expiresAt,
        cancellation_reason: null,
        payment_reference: null,
        confirming_at: null,
        created_at: now.toISOString(),
        updated_at: new Date().toISOString(),
      }),
    );
    return toApiTicket(row, summary);
  } finally {
    context.purchasesInFlight.delete(reference);
  }
}

/** The hold call failed or was refused unexpectedly: a hold may exist (or appear late); release it through the outbox. */
async function releaseAbandonedHold(context: TicketServiceContext, reference: string, hold: HoldAnswer, requestId: string): Promise<void> {
  if (hold instanceof Error) context.log.warn({ err: hold, reference }, 'hold call failed; releasing whatever hold it may have left');
  else context.log.error({ status: hold.status, problem: hold.ok ? undefined : hold.problem, reference }, 'event-service refused a hold unexpectedly');
  const outboxId = await context.write((trx) => tickets.enqueueRelease(trx, reference, new Date().toISOString()));
  // Tried in the background: event-service may be the one that is down, and the outbox retries.
  void releaseNow(context, outboxId, reference, requestId).catch((error: unknown) => context.log.error({ err: error, reference }, 'seat release failed'));
}
