/** The catalogue's figures as the database has them, read once at start-up (event-service/metrics.ts keeps them current). */
import type { Kysely } from 'kysely';
import { FigureSet } from '../../platform/metrics-figures.js';
import { EVENTS, SEATS } from '../metrics.js';
import type { EventDatabase } from './schema.js';

export async function readEventFigures(db: Kysely<EventDatabase>): Promise<FigureSet> {
  const row = await db
    .selectFrom('events')
    .select((eb) => [
      eb.fn.countAll().as('events'),
      eb.fn.sum('total_tickets').as('total'),
      eb.fn.sum('held_tickets').as('held'),
      eb.fn.sum('sold_tickets').as('sold'),
      eb.fn.sum('manual_reserved_tickets').as('manual'),
    ])
    .executeTakeFirstOrThrow();
  const figures = new FigureSet();
  // SUM is NULL over no rows, and numeric text on PostgreSQL.
  figures.add(EVENTS, Number(row.events));
  figures.add(SEATS.total, Number(row.total ?? 0));
  figures.add(SEATS.held, Number(row.held ?? 0));
  figures.add(SEATS.sold, Number(row.sold ?? 0));
  figures.add(SEATS.manual, Number(row.manual ?? 0));
  return figures;
}
