/** Tickets and waiting-list entries by status and the release outbox as the database has them, read once at start-up (ticket-service/metrics.ts keeps them current). */
import { sql, type Kysely } from 'kysely';
import { FigureSet } from '../../platform/metrics-figures.js';
import { OUTBOX, PUBLIC_TICKET_STATUSES, ticketFigure, waitlistFigure } from '../metrics.js';
import type { TicketDatabase } from './schema.js';

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
  return figures;
}
