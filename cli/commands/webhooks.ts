/** `eventsync webhooks …`: subscriptions, the delivery log, and `listen` (a local receiver, as `stripe listen`). */
import { text } from 'node:stream/consumers';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Command, InvalidArgumentError } from 'commander';
import { request } from 'undici';
import { Webhook } from 'standardwebhooks';
import type { components } from '../../openapi/generated/ticket-service.js';
import { MAX_PAGE, cliContext, expectOk, parseDateTimeOption, parseInteger, type CliContext } from '../context.js';
import { paint, printError, printJson, printNote, printRecord, printTable } from '../output.js';

type Webhook_ = components['schemas']['Webhook'];
type Delivery = components['schemas']['WebhookDelivery'];
type EventFilter = components['schemas']['WebhookEventFilter'];

// Typed from the spec: a type added there and not here (or the reverse) fails the type check.
const EVENT_TYPES: ReadonlyArray<EventFilter[number]> = ['*', 'ticket.reserved', 'ticket.confirmed', 'ticket.cancelled', 'ticket.deleted', 'waitlist.offered', 'waitlist.expired'];

const parseEvents = (value: string): EventFilter => {
  const types = value.split(',').map((type) => type.trim()).filter(Boolean);
  const unknown = types.filter((type) => !(EVENT_TYPES as readonly string[]).includes(type));
  if (types.length === 0 || unknown.length > 0) throw new InvalidArgumentError(`--events takes a comma-separated list of ${EVENT_TYPES.join(', ')}`);
  return types as EventFilter;
};

const printWebhook = (w: Webhook_) =>
  printRecord([
    ['id', w.id],
    ['url', w.url],
    ['events', w.events.join(', ')],
    ['description', w.description],
    ['enabled', w.enabled ? 'yes' : `no${w.disabled_reason ? ` (${w.disabled_reason})` : ''}`],
    ['expires', w.expires_at],
    ['old secret signs until', w.previous_secret_expires_at],
  ]);

const statusColour = (status: Delivery['status']): string => paint(status === 'delivered' ? 'green' : status === 'failed' ? 'red' : 'yellow', status);

const id = (value: string) => parseInteger('id', 1)(value);

export function webhooksCommand(): Command {
  const webhooks = new Command('webhooks').description('send ticket changes to other systems (signed, retried); admin token when ADMIN_TOKEN is set');

  webhooks
    .command('create')
    .description('subscribe a URL; prints the signing secret once')
    .requiredOption('--url <url>', 'where deliveries are POSTed (https)')
    .option('--events <types>', `comma-separated: ${EVENT_TYPES.join(', ')}`, parseEvents, ['*'] as EventFilter)
    .option('--description <text>', 'what it is for')
    .option('--expires-at <date-time>', 'remove it then (a temporary subscription)', parseDateTimeOption('--expires-at'))
    .addHelpText('after', '\nExample:\n  eventsync webhooks create --url https://crm.example.com/hooks/eventsync --events ticket.confirmed,ticket.cancelled')
    .action(async (options: { url: string; events: EventFilter; description?: string; expiresAt?: string }, command: Command) => {
      const context = cliContext(command);
      const body = { url: options.url, events: options.events, ...(options.description ? { description: options.description } : {}), ...(options.expiresAt ? { expires_at: options.expiresAt } : {}) };
      const created = expectOk(await context.tickets.call('createWebhook', { body })).body;
      if (context.options.json) printJson(created);
      else {
        process.stdout.write(`created webhook ${created.id}; its signing secret (shown only now):\n  ${created.secret}\n`);
        printWebhook(created);
      }
    });

  webhooks
    .command('list')
    .description('list subscriptions')
    .option('--limit <n>', `subscriptions per page (1-${MAX_PAGE})`, parseInteger('--limit', 1, MAX_PAGE), 100)
    .addHelpText('after', '\nExample:\n  eventsync webhooks list')
    .action(async (options: { limit: number }, command: Command) => {
      const context = cliContext(command);
      const list = expectOk(await context.tickets.call('listWebhooks', { query: { limit: options.limit } })).body;
      if (context.options.json) printJson(list);
      else if (list.length === 0) process.stdout.write('no webhooks\n');
      else printTable(['id', 'url', 'events', 'enabled', 'expires'], list.map((w) => [w.id, w.url, w.events.join(','), w.enabled ? 'yes' : `no${w.disabled_reason ? ` (${w.disabled_reason})` : ''}`, w.expires_at ?? '—']));
    });

  webhooks
    .command('update <id>')
    .description('change a subscription')
    .option('--url <url>', 'new URL')
    .option('--events <types>', 'new event types', parseEvents)
    .option('--description <text>', 'new description')
    .option('--enable', 'enable it (also after it was disabled for failing)')
    .option('--disable', 'pause deliveries')
    .option('--expires-at <date-time>', 'remove it then', parseDateTimeOption('--expires-at'))
    .option('--no-expiry', 'make it permanent')
    .addHelpText('after', '\nExample:\n  eventsync webhooks update 1 --enable')
    .action(async (webhookId: string, options: { url?: string; events?: EventFilter; description?: string; enable?: boolean; disable?: boolean; expiresAt?: string; expiry: boolean }, command: Command) => {
      const context = cliContext(command);
      if (options.enable && options.disable) throw new InvalidArgumentError('--enable and --disable exclude each other');
      const body: components['schemas']['WebhookUpdate'] = {};
      if (options.url !== undefined) body.url = options.url;
      if (options.events !== undefined) body.events = options.events;
      if (options.description !== undefined) body.description = options.description;
      if (options.enable || options.disable) body.enabled = options.enable === true;
      if (options.expiresAt !== undefined) body.expires_at = options.expiresAt;
      if (!options.expiry) body.expires_at = null;
      const updated = expectOk(await context.tickets.call('updateWebhook', { path: { webhook_id: id(webhookId) }, body })).body;
      if (context.options.json) printJson(updated);
      else printWebhook(updated);
    });

  webhooks
    .command('delete <id>')
    .description('remove a subscription and its delivery log')
    .addHelpText('after', '\nExample:\n  eventsync webhooks delete 1')
    .action(async (webhookId: string, _options: unknown, command: Command) => {
      const context = cliContext(command);
      expectOk(await context.tickets.call('deleteWebhook', { path: { webhook_id: id(webhookId) } }));
      if (context.options.json) printJson({ deleted: id(webhookId) });
      else process.stdout.write(`deleted webhook ${webhookId}\n`);
    });

  webhooks
    .command('ping <id>')
    .description('queue a webhook.ping delivery now')
    .addHelpText('after', '\nExample:\n  eventsync webhooks ping 1')
    .action(async (webhookId: string, _options: unknown, command: Command) => {
      const context = cliContext(command);
      const delivery = expectOk(await context.tickets.call('pingWebhook', { path: { webhook_id: id(webhookId) } })).body;
      if (context.options.json) printJson(delivery);
      else process.stdout.write(`queued ping delivery ${delivery.id} (webhook-id ${delivery.message_id}); follow it with\n  eventsync webhooks deliveries ${webhookId}\n`);
    });

  webhooks
    .command('rotate-secret <id>')
    .description('new signing secret; the old one keeps signing beside it for 24 hours')
    .addHelpText('after', '\nExample:\n  eventsync webhooks rotate-secret 1')
    .action(async (webhookId: string, _options: unknown, command: Command) => {
      const context = cliContext(command);
      const rotation = expectOk(await context.tickets.call('rotateWebhookSecret', { path: { webhook_id: id(webhookId) } })).body;
      if (context.options.json) printJson(rotation);
      else process.stdout.write(`new signing secret (shown only now):\n  ${rotation.secret}\nthe old secret signs too until ${rotation.previous_secret_expires_at}\n`);
    });

  webhooks
    .command('deliveries <id>')
    .description('the delivery log of a subscription, newest first')
    .option('--status <status>', 'pending, delivered or failed')
    .option('--limit <n>', `deliveries (1-${MAX_PAGE})`, parseInteger('--limit', 1, MAX_PAGE), 20)
    .addHelpText('after', '\nExample:\n  eventsync webhooks deliveries 1 --status failed')
    .action(async (webhookId: string, options: { status?: string; limit: number }, command: Command) => {
      const context = cliContext(command);
      if (options.status !== undefined && !['pending', 'delivered', 'failed'].includes(options.status)) throw new InvalidArgumentError('--status must be pending, delivered or failed');
      const query = { limit: options.limit, ...(options.status ? { status: options.status as Delivery['status'] } : {}) };
      const list = expectOk(await context.tickets.call('listWebhookDeliveries', { path: { webhook_id: id(webhookId) }, query })).body;
      if (context.options.json) printJson(list);
      else if (list.length === 0) process.stdout.write('no deliveries\n');
      else
        printTable(
          ['id', 'type', 'ticket', 'status', 'attempts', 'last answer', 'next attempt'],
          list.map((d) => [d.id, d.event_type, d.ticket_id ?? '—', statusColour(d.status), d.attempts, d.last_status_code ?? d.last_error ?? '—', d.next_attempt_at ?? '—']),
        );
    });

  webhooks
    .command('retry <id> <delivery_id>')
    .description('send a delivery again now (same webhook-id)')
    .addHelpText('after', '\nExample:\n  eventsync webhooks retry 1 12')
    .action(async (webhookId: string, deliveryId: string, _options: unknown, command: Command) => {
      const context = cliContext(command);
      const delivery = expectOk(await context.tickets.call('retryWebhookDelivery', { path: { webhook_id: id(webhookId), delivery_id: parseInteger('delivery_id', 1)(deliveryId) } })).body;
      if (context.options.json) printJson(delivery);
      else process.stdout.write(`delivery ${delivery.id} is due again now\n`);
    });

  webhooks
    .command('listen')
    .description('receive deliveries here: subscribes a local receiver, verifies and prints each delivery, unsubscribes on Ctrl-C')
    .option('--port <n>', 'local port (default: any free one)', parseInteger('--port', 0, 65535), 0)
    .option('--forward-to <url>', 'also POST each verified delivery there, headers and body unchanged')
    .option('--events <types>', 'event types to receive', parseEvents, ['*'] as EventFilter)
    .option('--lease <seconds>', 'how long the subscription outlives a listen that was killed (renewed every third of it)', parseInteger('--lease', 3, 3600), 60)
    .addHelpText(
      'after',
      '\nticket-service must allow private URLs (WEBHOOK_ALLOW_PRIVATE_URLS=true, the default without ADMIN_TOKEN).\n\nExample:\n  eventsync webhooks listen --forward-to http://localhost:3000/webhooks',
    )
    .action(async (options: ListenOptions, command: Command) => {
      if (options.forwardTo !== undefined && !/^https?:\/\//.test(options.forwardTo)) throw new InvalidArgumentError('--forward-to must be an http(s) URL');
      await listen(cliContext(command), options);
    });
  return webhooks;
}

interface ListenOptions {
  port: number;
  forwardTo?: string;
  events: EventFilter;
  /** Seconds the subscription lives past its last renewal: a killed `listen` leaves nothing retrying for days. */
  lease: number;
}

async function listen(context: CliContext, options: ListenOptions): Promise<void> {
  let verifier: Webhook | undefined;
  const server = createServer((incoming, answer) => {
    void (async () => {
      const body = await text(incoming);
      const headers = { 'webhook-id': String(incoming.headers['webhook-id']), 'webhook-timestamp': String(incoming.headers['webhook-timestamp']), 'webhook-signature': String(incoming.headers['webhook-signature']) };
      let message: { type?: string; data?: { id?: number; status?: string; cancellation_reason?: string | null } };
      if (!verifier) {
        answer.writeHead(503).end();
        return;
      }
      try {
        message = verifier.verify(body, headers) as typeof message;
      } catch (error) {
        printError(`a request failed verification (${error instanceof Error ? error.message : String(error)}); answered 400`);
        answer.writeHead(400).end();
        return;
      }
      let status = 200;
      if (options.forwardTo) {
        try {
          const forwarded = await request(options.forwardTo, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body, signal: AbortSignal.timeout(10_000) });
          await forwarded.body.dump();
          status = forwarded.statusCode;
        } catch (error) {
          status = 502;
          printError(`forwarding to ${options.forwardTo} failed: ${error instanceof Error ? error.message : String(error)}`);
        }
      }
      if (context.options.json) process.stdout.write(`${JSON.stringify({ webhook_id: headers['webhook-id'], ...message, ...(options.forwardTo ? { forwarded_status: status } : {}) })}\n`);
      else {
        const data = message.data ?? {};
        const ticket = data.id === undefined ? '' : `  ticket ${data.id}  ${data.status ?? ''}${data.cancellation_reason ? ` (${data.cancellation_reason})` : ''}`;
        process.stdout.write(`${new Date().toISOString().slice(11, 19)}  ${message.type ?? '?'}${ticket}${options.forwardTo ? `  → ${status}` : ''}\n`);
      }
      answer.writeHead(status >= 200 && status < 300 ? 200 : status).end();
    })().catch((error: unknown) => {
      printError(error instanceof Error ? error.message : String(error));
      if (!answer.headersSent) answer.writeHead(500).end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, '127.0.0.1', resolve);
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  const expiry = () => new Date(Date.now() + options.lease * 1000).toISOString();
  const subscribe = async () => expectOk(await context.tickets.call('createWebhook', { body: { url, events: options.events, description: 'eventsync webhooks listen', expires_at: expiry() } })).body;
  let created;
  try {
    created = await subscribe();
  } catch (error) {
    server.close();
    throw error;
  }
  verifier = new Webhook(created.secret);
  let webhookId = created.id;
  printNote(`listening on ${url} as webhook ${webhookId} (signing secret ${created.secret})${options.forwardTo ? `, forwarding to ${options.forwardTo}` : ''}; Ctrl-C to stop`);
  // Extends the subscription; one deleted meanwhile (by someone else, or expired while the machine slept) is made again.
  const renew = async (): Promise<void> => {
    const extended = await context.tickets.call('updateWebhook', { path: { webhook_id: webhookId }, body: { expires_at: expiry() } });
    if (extended.ok) return;
    if (extended.status !== 404) {
      printError(`could not extend webhook ${webhookId} (HTTP ${extended.status}): ${extended.problem.detail ?? extended.problem.title}; trying again`);
      return;
    }
    const again = await subscribe();
    verifier = new Webhook(again.secret);
    printNote(`webhook ${webhookId} was removed; subscribed again as webhook ${again.id} (signing secret ${again.secret})`);
    webhookId = again.id;
  };
  let renewing: Promise<void> | undefined;
  const renewal = setInterval(() => {
    // One renewal at a time: a slow one must not make two new subscriptions.
    renewing ??= renew()
      .catch((error: unknown) => printError(`could not extend the subscription: ${error instanceof Error ? error.message : String(error)}; trying again`))
      .finally(() => (renewing = undefined));
  }, (options.lease * 1000) / 3);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  clearInterval(renewal);
  await renewing;
  server.closeAllConnections();
  server.close();
  const removed = await context.tickets.call('deleteWebhook', { path: { webhook_id: webhookId } }).catch(() => undefined);
  printNote(removed?.ok ? `removed webhook ${webhookId}` : `could not remove webhook ${webhookId}; it expires by itself within a minute`);
}
