/**
 * How the bench's bare servers (reference-server.ts, floor-server.ts) run: listen on an ephemeral
 * port of 127.0.0.1, print the line the bench waits for (bench/processes.ts), close on SIGTERM or
 * SIGINT, and exit 1 with the error if start-up fails.
 */
import type { FastifyInstance } from 'fastify';

export function serveUntilSignal(name: string, start: () => Promise<FastifyInstance>): void {
  const run = async () => {
    const app = await start();
    const address = await app.listen({ host: '127.0.0.1', port: 0 });
    process.stdout.write(`Server listening at ${address}\n`);
    const stop = () => {
      app.close().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  };
  run().catch((error: unknown) => {
    console.error(`${name}:`, error);
    process.exit(1);
  });
}
