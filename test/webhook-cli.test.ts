/** `eventsync webhooks …` against both services really running: the subscription commands, and `listen`. */
import t from 'tap';
import { spawn } from 'node:child_process';
import { cliFor, cliPath, coverageEnv, describeRun, parseJsonOutput } from './helpers/cli.js';
import { eventually, startSystem } from './helpers/system.js';
import { createEvent, logsOf, reserve } from './helpers/system-api.js';
import { startReceiver, verifies } from './helpers/webhook-receiver.js';
import type { components } from '../openapi/generated/ticket-service.js';

type Hook = components['schemas']['WebhookWithSecret'];

// Each CLI run is a fresh node process; on a loaded machine a file of them needs more than tap's default.
t.setTimeout(300_000);

const system = await startSystem(t, { env: { WEBHOOK_RETRY_BASE_SECONDS: '0.1' } });
const cli = cliFor(system);

t.test('webhooks create, list, update, ping, deliveries, rotate-secret, retry and delete drive the API; no secret reaches the service log', async (t) => {
  const receiver = await startReceiver(t);
  const created = await cli('--json', 'webhooks', 'create', '--url', receiver.url, '--events', 'ticket.reserved,ticket.cancelled', '--description', 'cli');
  t.equal(created.code, 0, describeRun(created));
  const hook = parseJsonOutput<Hook>(created);
  t.match(hook, { events: ['ticket.reserved', 'ticket.cancelled'], description: 'cli', secret: /^whsec_/ });
  const listed = await system.tickets.call('listWebhooks', {});
  t.ok(listed.ok && listed.body.some((w) => w.id === hook.id), 'the API has it');
  const table = await cli('webhooks', 'list');
  t.ok(table.stdout.split('\n').some((line) => line.includes(receiver.url) && line.includes('ticket.reserved,ticket.cancelled') && /\byes\b/.test(line)), `webhooks list shows it, enabled: ${describeRun(table)}`);
  t.match(parseJsonOutput<Hook[]>(await cli('--json', 'webhooks', 'list')), [{ id: hook.id, url: receiver.url, enabled: true }], 'and so does its --json');
  const paused = await cli('webhooks', 'update', String(hook.id), '--disable');
  t.match(paused.stdout, /enabled\s+no/);
  const refused = await cli('webhooks', 'ping', String(hook.id));
  t.equal(refused.code, 1, 'a disabled webhook cannot be pinged (exit 1)');
  t.equal((await system.tickets.call('updateWebhook', { path: { webhook_id: hook.id }, body: { enabled: true } })).status, 200);
  const pinged = await system.tickets.call('pingWebhook', { path: { webhook_id: hook.id } });
  if (!pinged.ok) throw new Error('ping failed');
  const ping = pinged.body;
  t.ok(await eventually(async () => receiver.deliveries.length === 1), 'the ping arrived');
  const log = await cli('webhooks', 'deliveries', String(hook.id), '--status', 'delivered');
  t.match(log.stdout, /webhook\.ping.*delivered/, 'the delivery log shows it delivered');
  const rotation = parseJsonOutput<{ secret: string; previous_secret_expires_at: string }>(await cli('--json', 'webhooks', 'rotate-secret', String(hook.id)));
  t.match(rotation, { secret: /^whsec_/, previous_secret_expires_at: /^\d{4}-/ }, 'rotate-secret prints the new secret and until when the old one signs');
  t.not(rotation.secret, hook.secret);
  t.equal((await cli('webhooks', 'retry', String(hook.id), String(ping.id))).code, 0);
  t.ok(await eventually(async () => receiver.deliveries.length === 2), 'the retried delivery arrived');
  const retried = receiver.deliveries[1];
  t.ok(retried && verifies(rotation.secret, retried) && verifies(hook.secret, retried), 'signed with the new secret and the old one');
  t.equal((await cli('webhooks', 'delete', String(hook.id))).code, 0);
  const gone = await system.tickets.call('getWebhook', { path: { webhook_id: hook.id } });
  t.equal(gone.status, 404);
  const bad = await cli('webhooks', 'create', '--url', receiver.url, '--events', 'ticket.sold');
  t.equal(bad.code, 2, 'an unknown event type is a usage error');
  t.notMatch(logsOf(system, 'ticket-service'), /whsec_/, "no signing secret in ticket-service's log");
});

t.test('webhooks listen prints a purchase made while it runs, verified, subscribes again when its subscription was deleted, and removes it on SIGINT', async (t) => {
  const event = await createEvent(system, { total_tickets: 5 });
  // A 3 s lease: renewed every second.
  const child = spawn(process.execPath, [cliPath, '--event-url', system.event.url, '--ticket-url', system.ticket.url, 'webhooks', 'listen', '--events', 'ticket.reserved', '--lease', '3'], {
    env: { ...coverageEnv(), PATH: process.env.PATH ?? '', NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  t.ok(await eventually(async () => /listening on http:\/\/127\.0\.0\.1:\d+\/ as webhook \d+/.test(stderr), 15_000), 'it says where it listens');
  const ticket = await reserve(system, event.id, 2);
  t.ok(await eventually(async () => new RegExp(`ticket\\.reserved\\s+ticket ${ticket.id}\\s+RESERVED`).test(stdout), 10_000), `it prints the delivery: ${stdout.trim()}`);

  const first = Number(/as webhook (\d+)/.exec(stderr)?.[1]);
  t.equal((await system.tickets.call('deleteWebhook', { path: { webhook_id: first } })).status, 204, 'someone deletes its subscription');
  t.ok(await eventually(async () => new RegExp(`webhook ${first} was removed; subscribed again as webhook \\d+`).test(stderr), 10_000), `at its next renewal it subscribes again and says so: ${stderr.trim()}`);
  const later = await reserve(system, event.id, 1);
  t.ok(await eventually(async () => new RegExp(`ticket\\.reserved\\s+ticket ${later.id}\\s+RESERVED`).test(stdout), 10_000), 'and prints what happens next');
  child.kill('SIGINT');
  t.equal(await exited, 0, 'it exits 0 on SIGINT');
  const second = /subscribed again as webhook (\d+)/.exec(stderr)?.[1];
  t.match(stderr, new RegExp(`removed webhook ${second}\\b`), 'it removes the subscription it made again');
  const left = await system.tickets.call('listWebhooks', {});
  t.same(left.ok && left.body.filter((w) => w.description === 'eventsync webhooks listen'), [], 'its subscription is gone');
  t.notMatch(stderr, /failed verification/, 'every delivery verified');
});
