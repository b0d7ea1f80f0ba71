/**
 * event-service's metrics: hold transitions and manual adjustments (counters), and the catalogue's
 * figures (events, seats by state), kept current by the store functions that change them
 * (`eventChanges.record`, applied once the change is committed: platform/metrics-figures.ts).
 */
import type { Counter } from 'prom-client';
import { changeRecorder, type FigureGauge } from '../platform/metrics-figures.js';
import { ServiceMetrics } from '../platform/metrics.js';

export const EVENTS = 'events';
/** Seat figures, each the sum over events of the column of that name. */
export const SEATS = { total: 'seats:total', held: 'seats:held', sold: 'seats:sold', manual: 'seats:manual' } as const;

export const eventFigureGauges: FigureGauge[] = [
  { name: 'eventsync_events', help: 'Events in the catalogue', values: (f) => [{ value: f.get(EVENTS) }] },
  {
    name: 'eventsync_seats',
    help: 'Seats of all events by state: total, available, held (reserved), sold, manual (taken by PUT /events/{id}/tickets)',
    labelNames: ['state'],
    values: (f) => {
      const [total, held, sold, manual] = [f.get(SEATS.total), f.get(SEATS.held), f.get(SEATS.sold), f.get(SEATS.manual)];
      return [
        { labels: { state: 'total' }, value: total },
        { labels: { state: 'available' }, value: total - held - sold - manual },
        { labels: { state: 'held' }, value: held },
        { labels: { state: 'sold' }, value: sold },
        { labels: { state: 'manual' }, value: manual },
      ];
    },
  },
];

export class EventMetrics {
  readonly service = new ServiceMetrics(eventFigureGauges);
  readonly holdTransitions: Counter<'from' | 'to'> = this.service.counter('eventsync_hold_transitions_total', 'Hold state changes (from none: a new hold or a release tombstone)', ['from', 'to']);
  readonly manualAdjustments: Counter<'operation'> = this.service.counter('eventsync_manual_adjustments_total', 'Seat adjustments through PUT /events/{id}/tickets', ['operation']);

  get figures() {
    return this.service.figures;
  }
}

/** What event-service's store records against a change's transaction. */
export const eventChanges = changeRecorder<EventMetrics>();

/**
 * A hold created outside a tracked write (PostgreSQL's one-statement hold, once it committed): the
 * same moves the SQLite path records through `insertHeldHold` and `takeSeatsForHold`.
 */
export function recordHoldCreated(metrics: EventMetrics, quantity: number): void {
  metrics.holdTransitions.inc({ from: 'none', to: 'HELD' });
  metrics.figures.add(SEATS.held, quantity);
}
