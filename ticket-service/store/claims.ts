/**
 * The table of claimed references (DESIGN.md, the reconciler). A ticket write and the reconciler's
 * release of an orphan hold each insert the reference in their own transaction; the insert against
 * the primary key decides, whatever the store's isolation, which of them owns it.
 */
import type { Kysely } from 'kysely';
import { prepareQuery } from '../../platform/store/prepared.js';
import type { Claimant, TicketDatabase } from './schema.js';

const claimInsert = prepareQuery<TicketDatabase, { reference: string; claimant: Claimant; claimed_at: string }, { reference: string }>((db, param) =>
  db
    .insertInto('claimed_references')
    .values({ reference: param('reference'), claimant: param('claimant'), claimed_at: param('claimed_at') })
    .onConflict((oc) => oc.column('reference').doNothing())
    .returning('reference'),
);

/** True when this insert claimed the reference; false when someone had claimed it before. */
export async function claimReference(db: Kysely<TicketDatabase>, reference: string, claimant: Claimant, at: string): Promise<boolean> {
  return (await claimInsert.takeFirst(db, { reference, claimant, claimed_at: at })) !== undefined;
}
