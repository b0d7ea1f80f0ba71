/**
 * Preloaded (`node --import`) into the services the bench starts: they run at LOG_LEVEL=warn, so
 * Fastify's own "Server listening at" line (info) is off; this prints the same line on stderr, from
 * Node's `net.server.listen` tracing channel, so that ephemeral ports are still found the usual way.
 */
import { tracingChannel } from 'node:diagnostics_channel';
import type { Server } from 'node:net';

interface ListenMessage {
  server: Server;
}

tracingChannel<unknown, ListenMessage>('net.server.listen').subscribe({
  start() {},
  end() {},
  asyncStart() {},
  asyncEnd({ server }) {
    const address = server.address();
    if (address !== null && typeof address === 'object') {
      const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      process.stderr.write(`Server listening at http://${host}:${address.port}\n`);
    }
  },
  error() {},
});
