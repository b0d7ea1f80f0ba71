/**
 * ticket-service's store under replicas (DESIGN.md, Store and scale-out), on both stores: claims are
 * inserts that one side wins, the migration gives every existing ticket its claim, and conditional
 * updates report whether they won.
 */
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { openServiceStore } from '../platform/store/open.js';
import type { StoreDialect } from '../platform/store/service-store.js';
import { claimReference } from '../ticket-service/store/claims.js';
import { ticketMigrations } from '../ticket-service/store/migrations/index.js';
import type { TicketDatabase } from '../ticket-service/store/schema.js';
import * as tickets from '../ticket-service/store/tickets.js';
import { tempDir } from './helpers/event-app.js';
import { createTestDatabase, testStores } from './helpers/postgres.js';
import { uuid } from './helpers/system-api.js';

async function openTicketStore(t: Test, store: 'sqlite' | 'postgres', where: { path: string; url: string | undefined }, only?: string[]) {
  const opened = await openServiceStore<TicketDatabase>({
    databaseUrl: store === 'postgres' ? where.url : undefined,
    urlVariable: 'TICKET_DATABASE_URL',
    sqlitePath: where.path,
    synchronous: 'NORMAL',
    migrations: (dialect: StoreDialect) => Object.fromEntries(Object.entries(ticketMigrations(dialect)).filter(([name]) => only === undefined || only.includes(name))),
    onFatal: (error) => t.fail(`the store failed: ${String(error)}`),
    onConnectionError: () => undefined,
  });
  return opened;
}

const ticketValues = (reference: string, at: string): tickets.TicketValues => ({
  event_id: 1,
  customer_name: 'Ada Lovelace',
  customer_email: 'ada@example.com',
  quantity: 1,
  unit_price: 100,
  total_price: 100,
  currency: 'USD',
  status: 'RESERVED',
  reference,
  expires_at: at,
  cancellation_reason: null,
  payment_reference: null,
  confirming_at: null,
  created_at: at,
  updated_at: at,
});

for (const store of await testStores()) {
  t.test(`ticket-service's claims and conditional updates (${store})`, async (t) => {
    const where = { path: join(tempDir(t), 'ticket_data.db'), url: store === 'postgres' ? await createTestDatabase(t, 'ticket_claims') : undefined };
    const at = new Date().toISOString();
    const existing = uuid();

    // A database from before the claim table, with a ticket in it.
    const before = await openTicketStore(t, store, where, ['001-initial']);
    await before.write((trx) => tickets.insertTicket(trx, ticketValues(existing, at)));
    await before.close();

    const opened = await openTicketStore(t, store, where);
    t.teardown(() => opened.close());
    t.equal(opened.migrated[0], '002-claimed-references', 'the claim table is added by its own migration, the first after 001');
    const { db, write } = opened;

    t.test('a ticket written before the claim table owns its reference: the reconciler cannot claim it', async (t) => {
      t.equal(await write((trx) => claimReference(trx, existing, 'reconciler', at)), false, 'the migration claimed it for its ticket');
    });

    t.test('of two claims of one reference the first wins and the second loses, whoever makes them', async (t) => {
      const reference = uuid();
      t.equal(await write((trx) => claimReference(trx, reference, 'reconciler', at)), true, 'the first claim wins');
      t.equal(await write((trx) => claimReference(trx, reference, 'ticket', at)), false, 'a ticket write after it loses');
      const concurrent = uuid();
      const both = await Promise.all([write((trx) => claimReference(trx, concurrent, 'ticket', at)), write((trx) => claimReference(trx, concurrent, 'reconciler', at))]);
      t.same(both.sort(), [false, true], 'of two at once exactly one wins');
    });

    t.test("a cancel conditional on the ticket as read loses to a confirm that marked it since, and wins on the ticket as it is now", async (t) => {
      const row = await write((trx) => tickets.insertTicket(trx, ticketValues(uuid(), at)));
      const marked = await write((trx) => tickets.updateTicketIf(trx, row.id, 'RESERVED', { confirming_at: new Date().toISOString() }));
      t.ok(marked, 'a confirm marks the ticket');
      t.equal(await write((trx) => tickets.updateTicketAsRead(trx, row, { status: 'CANCELLED', cancellation_reason: 'expired' })), undefined, 'the cancel as read before the mark changes nothing');
      t.equal((await tickets.findTicket(db, row.id))?.status, 'RESERVED', 'the ticket is still RESERVED');
      if (!marked) return;
      const cancelled = await write((trx) => tickets.updateTicketAsRead(trx, marked, { status: 'CANCELLED', cancellation_reason: 'expired' }));
      t.equal(cancelled?.status, 'CANCELLED', 'as read after the mark it applies');
    });

    t.test('of two leases of one due release only one wins', async (t) => {
      const id = await write((trx) => tickets.enqueueRelease(trx, uuid(), at));
      const leaseUntil = new Date(Date.now() + 60_000).toISOString();
      const both = await Promise.all([write((trx) => tickets.leaseRelease(trx, id, at, leaseUntil)), write((trx) => tickets.leaseRelease(trx, id, at, leaseUntil))]);
      t.same(both.sort(), [false, true], 'exactly one lease wins');
      t.same(await tickets.dueReleases(db, new Date().toISOString(), 10), [], 'the leased release is not due until its lease runs out');
    });
  });
}
