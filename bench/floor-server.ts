/**
 * The floor of the purchase storm: the reference's bare two-hop Fastify pair (bench/reference-server.ts)
 * plus the rows a purchase must write durably, and nothing else: no validation, logging, metrics,
 * typed client, idempotency or hold batching. The back takes the hold (the hold row, taking the
 * event's price, and the conditional seat decrement); the front then claims the reference and
 * writes the ticket and its `ticket.reserved` event row. Given a webhook URL (the bench's storms run
 * with one subscriber, as the issue asks), the front also writes the event's delivery row, already
 * claimed, in that transaction, and after answering POSTs the event to the URL, signed with
 * `standardwebhooks`, at most 16 at a time (EventSync's default per-endpoint limit), then records the
 * attempt's outcome in the delivery row (group-committed like the rest). Each side commits what
 * arrived together in one transaction (group commit) on the services' own schemas (their
 * migrations), and answers only once that commit is durable: as the services do at
 * `SQLITE_SYNCHRONOUS=FULL`, the WAL is flushed with `fdatasync` on libuv's thread pool after the
 * COMMIT (so the event loop goes on meanwhile, and the next batch may commit while one flushes).
 *
 * What it measures: how close to the reference a purchase can come on this machine when it writes
 * what EventSync writes, with none of EventSync's own bookkeeping: the ceiling for the storm's ratio.
 *
 * The `reader` role is the floor of `GET /events/{id}` beside its `/health`: the row read with a
 * prepared statement and sent as JSON, nothing else.
 *
 *   node dist/bench/floor-server.js back <events.db>
 *   node dist/bench/floor-server.js front <back-url> <tickets.db> [<webhook-url>]
 *   node dist/bench/floor-server.js reader <events.db>
 */
import { randomUUID } from 'node:crypto';
import { fdatasync, openSync } from 'node:fs';
import type Database from 'better-sqlite3';
import Fastify, { type FastifyInstance } from 'fastify';
import { Webhook } from 'standardwebhooks';
import { Pool } from 'undici';
import { newReference } from '../platform/references.js';
import { createKysely, migrateToLatest, openSqlite } from '../platform/store/sqlite/store.js';
import { eventMigrations } from '../event-service/store/migrations/index.js';
import { ticketMigrations } from '../ticket-service/store/migrations/index.js';
import { serveUntilSignal } from './serve.js';

const [role, ...rest] = process.argv.slice(2);

/**
 * Runs the queued changes in one transaction; each caller gets its own result or error once the WAL
 * holding the commit has been flushed. As the services' group commit does (platform/store/sqlite/
 * group-commit.ts), changes that arrive while a flush runs gather and commit together as soon as it
 * ends; otherwise on the next turn of the event loop.
 */
function groupCommit(db: Database.Database, path: string): <T>(change: () => T) => Promise<T> {
  const wal = openSync(`${path}-wal`, 'r');
  let queue: Array<{ change: () => unknown; resolve: (value: unknown) => void; reject: (error: unknown) => void }> = [];
  let syncing = false;
  const flush = () => {
    if (queue.length === 0) return;
    const batch = queue;
    queue = [];
    const results: Array<{ ok: true; value: unknown } | { ok: false; error: unknown }> = [];
    db.exec('BEGIN');
    for (const item of batch) {
      db.exec('SAVEPOINT change');
      try {
        results.push({ ok: true, value: item.change() });
        db.exec('RELEASE change');
      } catch (error) {
        db.exec('ROLLBACK TO change');
        db.exec('RELEASE change');
        results.push({ ok: false, error });
      }
    }
    db.exec('COMMIT');
    syncing = true;
    fdatasync(wal, (error) => {
      syncing = false;
      batch.forEach((item, index) => {
        const result = results[index];
        if (error) item.reject(error);
        else if (result?.ok) item.resolve(result.value);
        else item.reject(result?.error);
      });
      // What gathered meanwhile commits now, after the answers above go out.
      if (queue.length > 0) queueMicrotask(flush);
    });
  };
  return <T>(change: () => T) =>
    new Promise<T>((resolve, reject) => {
      if (queue.length === 0 && !syncing) setImmediate(flush);
      queue.push({ change, resolve: resolve as (value: unknown) => void, reject });
    });
}

async function openDatabase(path: string, migrations: Parameters<typeof migrateToLatest>[1]): Promise<Database.Database> {
  // NORMAL: COMMIT does not flush; groupCommit flushes the WAL itself, off the event loop.
  const db = openSqlite({ path, synchronous: 'NORMAL' });
  const kysely = createKysely(db);
  await migrateToLatest(kysely, migrations);
  return db;
}

async function back(path: string): Promise<FastifyInstance> {
  const db = await openDatabase(path, eventMigrations('sqlite'));
  const insertHold = db.prepare(
    `INSERT INTO holds (hold_id, event_id, quantity, state, expires_at, unit_price, currency, created_at, updated_at)
     SELECT ?, id, ?, 'HELD', ?, ticket_price, currency, ?, ? FROM events
     WHERE id = ? AND (sales_start IS NULL OR sales_start <= ?) AND (sales_end IS NULL OR sales_end >= ?)
     ON CONFLICT (hold_id) DO NOTHING RETURNING *`,
  );
  const takeSeats = db.prepare(
    `UPDATE events SET available_tickets = available_tickets - ?, held_tickets = held_tickets + ?, updated_at = ?
     WHERE id = ? AND available_tickets - waitlist_reserved_tickets >= ?`,
  );
  const commit = groupCommit(db, path);
  const app = Fastify({ logger: false });
  app.post('/holds', async (request, reply) => {
    const body = request.body as { hold_id: string; event_id: number; quantity: number; expires_at: string };
    const now = new Date().toISOString();
    const hold = await commit(() => {
      const row = insertHold.get(body.hold_id, body.quantity, body.expires_at, now, now, body.event_id, now, now);
      if (row === undefined) return undefined;
      if (takeSeats.run(body.quantity, body.quantity, now, body.event_id, body.quantity).changes !== 1) throw new Error('sold out');
      return row;
    });
    return hold === undefined ? reply.code(409).send({ title: 'refused' }) : reply.code(201).send(hold);
  });
  return app;
}

/** What the front does for one subscriber: a claimed delivery row per event, then the signed POST and its outcome. */
function webhookDelivery(db: Database.Database, commit: <T>(change: () => T) => Promise<T>, url: string) {
  const insertDelivery = db.prepare(
    `INSERT INTO webhook_deliveries (event_id, subscription_id, status, attempts, next_attempt_at, lease_until, retry_until, created_at, updated_at)
     VALUES (?, 1, 'pending', 0, ?, ?, ?, ?, ?) RETURNING id`,
  );
  const finish = db.prepare(
    `UPDATE webhook_deliveries SET status = ?, attempts = 1, first_attempt_at = ?, last_attempt_at = ?, last_status_code = ?, updated_at = ?, lease_until = NULL
     WHERE id = ? AND lease_until = ? AND status = 'pending'`,
  );
  const signer = new Webhook(`whsec_${Buffer.from('floor-server-webhook-secret-32by').toString('base64')}`);
  const target = new URL(url);
  const pool = new Pool(target.origin, { connections: 16, keepAliveTimeout: 10_000 });
  return {
    /** In the purchase's transaction: the delivery row, claimed by this process until `lease`. */
    record(eventId: number, now: string, lease: string): number {
      return (insertDelivery.get(eventId, now, lease, lease, now, now) as { id: number }).id;
    },
    /** After the answer: the attempt and its recorded outcome (nobody waits for it). */
    send(deliveryId: number, messageId: string, payload: string, lease: string): void {
      const timestamp = new Date();
      pool
        .request({
          method: 'POST',
          path: target.pathname,
          headers: {
            'content-type': 'application/json',
            'webhook-id': messageId,
            'webhook-timestamp': String(Math.floor(timestamp.getTime() / 1000)),
            'webhook-signature': signer.sign(messageId, timestamp, payload),
          },
          body: payload,
        })
        .then(async (answer) => {
          await answer.body.dump();
          return answer.statusCode;
        })
        .catch(() => null)
        .then((statusCode) => {
          const at = new Date().toISOString();
          const delivered = statusCode !== null && statusCode >= 200 && statusCode < 300;
          return commit(() => finish.run(delivered ? 'delivered' : 'pending', at, at, statusCode, at, deliveryId, lease));
        })
        .catch(() => undefined);
    },
    close: () => pool.close(),
  };
}

async function front(backUrl: string, path: string, webhookUrl: string | undefined): Promise<FastifyInstance> {
  const db = await openDatabase(path, ticketMigrations('sqlite'));
  const claim = db.prepare(`INSERT INTO claimed_references (reference, claimant, claimed_at) VALUES (?, 'ticket', ?) ON CONFLICT DO NOTHING`);
  const insertTicket = db.prepare(
    `INSERT INTO tickets (event_id, customer_name, customer_email, quantity, unit_price, total_price, currency, status, reference, expires_at, created_at, updated_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, 'RESERVED', ?, ?, ?, ?) RETURNING *`,
  );
  const insertEvent = db.prepare(`INSERT INTO webhook_events (type, message_id, ticket_id, payload, fanned_out, created_at) VALUES ('ticket.reserved', ?, ?, ?, 1, ?) RETURNING id`);
  const commit = groupCommit(db, path);
  const webhooks = webhookUrl === undefined ? undefined : webhookDelivery(db, commit, webhookUrl);
  const pool = new Pool(backUrl, { connections: 128, keepAliveTimeout: 30_000 });
  const app = Fastify({ logger: false });
  app.post('/tickets', async (request, reply) => {
    const body = request.body as { event_id: number; quantity: number; customer_name: string; customer_email: string };
    const reference = newReference();
    const expiresAt = new Date(Date.now() + 15 * 60_000).toISOString();
    const response = await pool.request({
      method: 'POST',
      path: '/holds',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ hold_id: reference, event_id: body.event_id, quantity: body.quantity, expires_at: expiresAt }),
    });
    const hold = (await response.body.json()) as { unit_price: number; currency: string };
    if (response.statusCode !== 201) return reply.code(409).send(hold);
    const now = new Date().toISOString();
    const lease = new Date(Date.now() + 30_000).toISOString();
    const { row, delivery } = await commit(() => {
      claim.run(reference, now);
      const row = insertTicket.get(body.event_id, body.customer_name, body.customer_email, body.quantity, hold.unit_price, hold.unit_price * body.quantity, hold.currency, reference, expiresAt, now, now) as { id: number };
      const messageId = `msg_${randomUUID().replace(/-/g, '')}`;
      const payload = JSON.stringify({ type: 'ticket.reserved', timestamp: now, data: row });
      const event = insertEvent.get(messageId, row.id, payload, now) as { id: number };
      return { row, delivery: webhooks ? { id: webhooks.record(event.id, now, lease), messageId, payload } : undefined };
    });
    if (webhooks && delivery) webhooks.send(delivery.id, delivery.messageId, delivery.payload, lease);
    return reply.code(201).send(row);
  });
  app.addHook('onClose', async () => {
    await pool.close();
    await webhooks?.close();
  });
  return app;
}

async function reader(path: string): Promise<FastifyInstance> {
  const db = await openDatabase(path, eventMigrations('sqlite'));
  const byId = db.prepare('SELECT * FROM events WHERE id = ?');
  const app = Fastify({ logger: false });
  app.get('/health', async () => ({ status: 'ok', service: 'event-service' }));
  app.get('/events/:id', async (request, reply) => {
    const row = byId.get(Number((request.params as { id: string }).id));
    return row === undefined ? reply.code(404).send({ title: 'not found' }) : row;
  });
  return app;
}

serveUntilSignal('floor-server', async () => {
  const [first, second, third] = rest;
  if (role === 'back' && first !== undefined) return back(first);
  if (role === 'front' && first !== undefined && second !== undefined) return front(first, second, third);
  if (role === 'reader' && first !== undefined) return reader(first);
  throw new Error('usage: floor-server.js back <events.db> | front <back-url> <tickets.db> [<webhook-url>] | reader <events.db>');
});
