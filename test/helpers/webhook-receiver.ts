/** A webhook receiver on an ephemeral port of 127.0.0.1: records every delivery, answers as told, verifies with standardwebhooks. */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Test } from 'tap';
import { Webhook } from 'standardwebhooks';

export interface ReceivedDelivery {
  /** The path it was POSTed to (several subscriptions may share one receiver). */
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  /** The parsed body: `{type, timestamp, data}`. */
  message: { type: string; timestamp: string; data: Record<string, unknown> };
  receivedAt: number;
}

/** What to answer a delivery: a status code, or `hang` (never answer). */
export type Answer = number | 'hang';

export interface Receiver {
  url: string;
  port: number;
  deliveries: ReceivedDelivery[];
  /** Decides each answer (default 200). */
  answer: (delivery: ReceivedDelivery, index: number) => Answer;
  /** Answers this long after the request arrived (default 0: at once). */
  delayMs: number;
  /** Headers sent with every answer besides its content type (a redirect's `location`, say). */
  answerHeaders: Record<string, string>;
  close(): Promise<void>;
  /** Listens again on the same port after close(). */
  reopen(): Promise<void>;
}

export async function startReceiver(t: Test, path = '/hook'): Promise<Receiver> {
  const hanging = new Set<() => void>();
  let server: Server;
  const receiver: Receiver = {
    url: '',
    port: 0,
    deliveries: [],
    answer: () => 200,
    delayMs: 0,
    answerHeaders: {},
    async close() {
      for (const end of hanging) end();
      hanging.clear();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
    async reopen() {
      server = make();
      await new Promise<void>((resolve) => server.listen(receiver.port, '127.0.0.1', resolve));
    },
  };
  const make = () =>
    createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const delivery: ReceivedDelivery = { path: request.url ?? '', headers: request.headers, body, message: JSON.parse(body) as ReceivedDelivery['message'], receivedAt: Date.now() };
        receiver.deliveries.push(delivery);
        const answer = receiver.answer(delivery, receiver.deliveries.length - 1);
        if (answer === 'hang') {
          hanging.add(() => response.destroy());
          return;
        }
        const send = () => response.writeHead(answer, { 'content-type': 'text/plain', ...receiver.answerHeaders }).end(answer >= 300 ? `failing on purpose (${answer})` : 'ok');
        if (receiver.delayMs > 0) setTimeout(send, receiver.delayMs);
        else send();
      });
    });
  server = make();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  receiver.port = (server.address() as AddressInfo).port;
  receiver.url = `http://127.0.0.1:${receiver.port}${path}`;
  t.teardown(() => receiver.close().catch(() => undefined));
  return receiver;
}

/** Verifies a delivery as a receiver would: true when one of its signatures is by `secret` and its timestamp is fresh. */
export function verifies(secret: string, delivery: { body: string; headers: IncomingHttpHeaders }): boolean {
  try {
    new Webhook(secret).verify(delivery.body, {
      'webhook-id': String(delivery.headers['webhook-id']),
      'webhook-timestamp': String(delivery.headers['webhook-timestamp']),
      'webhook-signature': String(delivery.headers['webhook-signature']),
    });
    return true;
  } catch {
    return false;
  }
}
