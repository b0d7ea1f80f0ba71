/**
 * The waiting-list gate of DESIGN.md: seats public holds may not take while the event's waiting list
 * asks for them. ticket-service owns the number and sends it with a per-event sequence that only
 * grows; an older or equal sequence changes nothing, so retries and late arrivals never move it back.
 */
import type { components } from '../../openapi/generated/event-service.js';
import { NotFoundError } from '../../platform/errors.js';
import { nowIso } from '../../platform/time.js';
import * as events from '../store/events.js';
import type { EventServiceContext } from './context.js';

export type WaitlistGateUpdate = components['schemas']['WaitlistGateUpdate'];

/** Applies `update` to event `eventId` inside a change already under way; undefined if the event does not exist. */
export async function applyWaitlistGate(trx: EventServiceContext['db'], eventId: number, update: WaitlistGateUpdate, now: string) {
  return events.setWaitlistGate(trx, eventId, update.waitlist_reserved_tickets, update.sequence, now);
}

/** Sets the event's gate if `sequence` is newer; the gate after the call and whether it applied. */
export async function setWaitlistGate(context: EventServiceContext, eventId: number, update: WaitlistGateUpdate): Promise<{ gate: events.WaitlistGateRow; applied: boolean }> {
  const outcome = await context.write((trx) => applyWaitlistGate(trx, eventId, update, nowIso()));
  if (!outcome) throw new NotFoundError(`Event ${eventId} does not exist.`);
  return outcome;
}
