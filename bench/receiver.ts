/**
 * The bench's webhook subscriber: a receiver on 127.0.0.1 that answers every delivery with 204 at
 * once and counts them, and the same receiver subscribed to every event type of a ticket-service.
 * Used by `npm run bench`, `bench/ab.ts` and the floor (bench/floor-pair.ts).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ticketServiceClient } from '../openapi/client.js';

export interface Receiver {
  url: string;
  /** Deliveries taken so far. */
  received: () => number;
  /** Closes it; how many deliveries it took. */
  stop: () => number;
}

export async function startReceiver(): Promise<Receiver> {
  let received = 0;
  const server = createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      received += 1;
      response.statusCode = 204;
      response.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    received: () => received,
    stop: () => {
      server.closeAllConnections();
      server.close();
      return received;
    },
  };
}

/** A receiver subscribed to every event type of the ticket-service at `ticketUrl`; `stop` deletes the subscription too. */
export async function startWebhookSubscriber(ticketUrl: string, description: string): Promise<{ received: () => number; stop: () => Promise<number> }> {
  const receiver = await startReceiver();
  const tickets = ticketServiceClient({ baseUrl: ticketUrl, timeoutMs: 10_000 });
  const created = await tickets.call('createWebhook', { body: { url: receiver.url, events: ['*'], description } });
  if (!created.ok) {
    await tickets.close();
    receiver.stop();
    throw new Error(`could not subscribe the bench's webhook receiver (HTTP ${created.status}): ${created.problem.detail ?? created.problem.title}`);
  }
  return {
    received: receiver.received,
    stop: async () => {
      let received = 0;
      try {
        await tickets.call('deleteWebhook', { path: { webhook_id: created.body.id } });
      } finally {
        await tickets.close();
        received = receiver.stop();
      }
      return received;
    },
  };
}
