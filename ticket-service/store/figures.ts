/** Tickets and waiting-list entries by status, the release outbox and the webhook queue and endpoints as the database has them, read once at start-up (ticket-service/metrics.ts keeps them current). */
import { sql, type Kysely } from 'kysely';
import { FigureSet } from '../../platform/metrics-figures.js';
import { OUTBOX, PUBLIC_TICKET_STATUSES, WEBHOOK_QUEUE, ticketFigure, waitlistFigure, webhookEndpointFigure } from '../metrics.js';
import type { TicketDatabase } from './schema.js';
import { endpointState } from './webhooks.js';

export async function readTicketFigures(db: Kysely<TicketDatabase>): Promise<FigureSet> {
  const figures = new FigureSet();
  const byStatus = await db.selectFrom('tickets').select((eb) => ['status', eb.fn.countAll().as('n')]).where('status', 'in', [...PUBLIC_TICKET_STATUSES]).groupBy('status').execute();
  for (const { status, n } of byStatus) figures.add(ticketFigure(status), Number(n));
  const entries = await db.selectFrom('waitlist_entries').select((eb) => ['status', eb.fn.countAll().as('n')]).groupBy('status').execute();
  for (const { status, n } of entries) figures.add(waitlistFigure(status), Number(n));
  // By the second they were queued: the ISO text's first 19 characters.
  const second = sql<string>`substr(created_at, 1, 19)`;
  const pending = await db.selectFrom('release_outbox').select((eb) => [second.as('second'), eb.fn.countAll().as('n')]).groupBy(second).execute();
  for (const { second: at, n } of pending) figures.addAt(OUTBOX, `${at}Z`, Number(n));
  const deliveries = await db.selectFrom('webhook_deliveries').select((eb) => [second.as('second'), eb.fn.countAll().as('n')]).where('status', '=', 'pending').groupBy(second).execute();
  for (const { second: at, n } of deliveries) figures.addAt(WEBHOOK_QUEUE, `${at}Z`, Number(n));
  const endpoints = await db
    .selectFrom('webhook_subscriptions')
    .select((eb) => ['failing_since', 'disabled_reason', eb.fn.countAll().as('n')])
    .where((eb) => eb.or([eb('failing_since', 'is not', null), eb('disabled_reason', 'is not', null)]))
    .groupBy(['failing_since', 'disabled_reason'])
    .execute();
  for (const row of endpoints) {
    const state = endpointState(row);
    if (state) figures.add(webhookEndpointFigure(state), Number(row.n));
  }
  return figures;
}
