/**
 * ticket-service's store under replicas (DESIGN.md, Store and scale-out), on both stores: claims are
 * inserts that one side wins, the migration gives every existing ticket its claim, conditional
 * updates report whether they won, and a reconciler claim committed with its queued release is
 * finished by the outbox.
 */
import { join } from 'node:path';
import pino from 'pino';
import t, { type Test } from 'tap';
import { eventServiceClient, type ClientOptions } from '../openapi/client.js';
import { loadConfig, TicketServiceConfigSchema } from '../platform/config.js';
import { openServiceStore } from '../platform/store/open.js';
import type { ServiceStore, StoreDialect } from '../platform/store/service-store.js';
import type { TicketServiceContext } from '../ticket-service/domain/context.js';
import { EventSummaries } from '../ticket-service/domain/event-summaries.js';
import { releaseOrphanHolds } from '../ticket-service/domain/maintenance.js';
import { drainReleaseOutbox } from '../ticket-service/domain/outbox.js';
import { TicketMetrics } from '../ticket-service/metrics.js';
import { claimReference } from '../ticket-service/store/claims.js';
import { ticketMigrations } from '../ticket-service/store/migrations/index.js';
import type { TicketDatabase } from '../ticket-service/store/schema.js';
import * as tickets from '../ticket-service/store/tickets.js';
import { createHold, getHold } from './helpers/event-api.js';
import { createEvent, originalEvent, SERVICE_TOKEN, startEventApp, tempDir } from './helpers/event-app.js';
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

/**
 * What ticket-service's background work runs with (as ticket-service/app.ts builds it), over `store`
 * and the event-service at `eventServiceUrl`, with no reconciler settle window.
 */
function backgroundContext(t: Test, store: ServiceStore<TicketDatabase>, eventServiceUrl: string, observe: ClientOptions['observe']): TicketServiceContext {
  const config = loadConfig(TicketServiceConfigSchema, { SERVICE_TOKEN, EVENT_SERVICE_URL: eventServiceUrl, RECONCILE_SETTLE_SECONDS: '0', LOG_LEVEL: 'silent' });
  const events = eventServiceClient({ baseUrl: eventServiceUrl, token: SERVICE_TOKEN, observe });
  t.teardown(() => events.close());
  return {
    db: store.db,
    config,
    write: store.write,
    events,
    summaries: new EventSummaries(events),
    purchasesInFlight: new Set(),
    orphanScan: {},
    stopping: new AbortController().signal,
    log: pino({ level: 'silent' }),
    metrics: new TicketMetrics(),
  };
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

    t.test("a reconciler claim committed with its queued release, whose call never happened (the process died), is finished by the outbox: one release call, and no second claim", async (t) => {
      const eventService = await startEventApp(t);
      const eventServiceUrl = await eventService.app.listen({ port: 0, host: '127.0.0.1' });
      const event = await createEvent(eventService, { ...originalEvent, total_tickets: 10 });
      const orphan = (await createHold(eventService, event.id, 3)).hold_id;
      const outboxRows = async () => (await db.selectFrom('release_outbox').select('id').where('hold_id', '=', orphan).execute()).length;

      // What the reconciler's claimAndRelease commits before its call; the call never came, and the release's lease has run out.
      const claimedAt = new Date(Date.now() - 60_000).toISOString();
      await write(async (trx) => {
        t.ok(await claimReference(trx, orphan, 'reconciler', claimedAt), 'the reconciler claims the orphan hold');
        await tickets.enqueueRelease(trx, orphan, claimedAt, new Date(Date.now() - 1000).toISOString(), event.id);
      });

      const releaseCalls: string[] = [];
      const context = backgroundContext(t, opened, eventServiceUrl, (answer) => {
        if (answer.operationId === 'releaseHold') releaseCalls.push(`${answer.path} ${answer.status}`);
      });
      t.equal(await releaseOrphanHolds(context), 0, 'the reconciler, running again, finds the hold HELD with no ticket and releases nothing');
      t.same([releaseCalls.length, await outboxRows()], [0, 1], 'it lost its own claim: no call, no second release queued');

      t.equal(await drainReleaseOutbox(context), 1, 'the outbox releases it');
      t.same(releaseCalls, [`/holds/${orphan}/release 200`], 'with one call');
      t.equal((await getHold(eventService, orphan)).state, 'RELEASED', 'the hold is released');
      const current = (await eventService.inject({ method: 'GET', url: `/events/${event.id}` })).json<{ available_tickets: number; held_tickets: number }>();
      t.same([current.available_tickets, current.held_tickets], [10, 0], 'its seats are back');
      t.equal(await outboxRows(), 0, 'its outbox row is done');

      await drainReleaseOutbox(context);
      await releaseOrphanHolds(context);
      t.equal(releaseCalls.length, 1, 'later rounds send nothing more');
      const claim = await db.selectFrom('claimed_references').select('claimant').where('reference', '=', orphan).executeTakeFirst();
      t.equal(claim?.claimant, 'reconciler', 'the reference stays claimed by the reconciler: a late ticket write for it still loses');
    });
  });
}
