/**
 * Webhooks with two ticket-service workers over one PostgreSQL database: both dispatchers fan out and
 * claim deliveries at once, and each event still arrives once per subscription (DESIGN.md, "Webhooks":
 * the unique (event, subscription) key and the lease claim). SQLite runs one process per file, so
 * this runs on PostgreSQL only.
 */
import t from 'tap';
import { Agent } from 'undici';
import { eventually, startSystem } from './helpers/system.js';
import { createEvent, raw, ticketBody, sleep } from './helpers/system-api.js';
import { testStores } from './helpers/postgres.js';
import { startReceiver, verifies } from './helpers/webhook-receiver.js';

if (!(await testStores()).includes('postgres')) {
  t.pass('PostgreSQL is not reachable here: the webhook replica test is skipped (see the line above)');
} else {
  t.test('two dispatchers (two ticket-service workers on one PostgreSQL database) deliver each event once per subscription', async (t) => {
    const system = await startSystem(t, { store: 'postgres', env: { WORKERS: '2', EVENT_SERVICE_TIMEOUT_SECONDS: '30', RECONCILE_SETTLE_SECONDS: '60', SWEEP_INTERVAL_SECONDS: '0.1' } });
    const receivers = [await startReceiver(t), await startReceiver(t)];
    const secrets: string[] = [];
    for (const receiver of receivers) {
      const created = await system.tickets.call('createWebhook', { body: { url: receiver.url, events: ['ticket.reserved'] } });
      if (!created.ok) throw new Error('could not subscribe');
      secrets.push(created.body.secret);
    }
    const event = await createEvent(system, { total_tickets: 100 });
    // One connection per purchase, so that both workers write event rows.
    const agent = new Agent({ connections: 20, pipelining: 0 });
    t.teardown(() => agent.close());
    const answers = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        raw(`${system.ticket.url}/tickets`, { method: 'POST', body: ticketBody(event.id, 1, { customer_email: `buyer${i}@example.com` }), headers: { connection: 'close' }, dispatcher: agent, timeoutMs: 60_000 }),
      ),
    );
    t.same(new Set(answers.map((answer) => answer.status)), new Set([201]), '40 purchases');
    const ids = answers.map((answer) => (answer.json as { id: number }).id);
    t.ok(await eventually(async () => receivers.every((receiver) => receiver.deliveries.length >= 40), 20_000), 'every subscription got 40 deliveries');
    // Both dispatchers poll every 0.1 s: a second delivery of any event would have come by now.
    await sleep(500);
    receivers.forEach((receiver, i) => {
      const ticketIds = receiver.deliveries.map((d) => d.message.data.id as number);
      t.equal(receiver.deliveries.length, 40, `subscription ${i + 1}: exactly 40 deliveries`);
      t.same(new Set(ticketIds), new Set(ids), `subscription ${i + 1}: one per ticket`);
      t.ok(receiver.deliveries.every((d) => verifies(secrets[i] ?? '', d)), `subscription ${i + 1}: each signed with its own secret`);
    });
    const first = receivers[0]?.deliveries.map((d) => d.headers['webhook-id']) ?? [];
    const second = receivers[1]?.deliveries.map((d) => d.headers['webhook-id']) ?? [];
    t.same(new Set(first), new Set(second), 'an event has one webhook-id, whichever subscription receives it');
  });
}
