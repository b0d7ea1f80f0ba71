/**
 * The reference for the purchase storm: a bare two-hop Fastify pair with no database. The front
 * answers POST /tickets by calling the back over an undici keep-alive Pool (as ticket-service calls
 * event-service) and returns the back's small JSON.
 *
 *   node dist/bench/reference-server.js back
 *   node dist/bench/reference-server.js front http://127.0.0.1:PORT
 */
import Fastify from 'fastify';
import { Pool } from 'undici';
import { serveUntilSignal } from './serve.js';

const [role, backUrl] = process.argv.slice(2);

serveUntilSignal('reference-server', async () => {
  const app = Fastify({ logger: false });
  let pool: Pool | undefined;
  if (role === 'back') {
    app.post('/holds', async (request, reply) => {
      const body = request.body as { event_id?: unknown };
      return reply.code(201).send({ hold_id: 'reference', event_id: body.event_id ?? null, state: 'HELD' });
    });
  } else if (role === 'front' && backUrl !== undefined) {
    const back = new Pool(backUrl, { connections: 128, keepAliveTimeout: 30_000 });
    pool = back;
    app.post('/tickets', async (request, reply) => {
      const response = await back.request({
        method: 'POST',
        path: '/holds',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(request.body),
      });
      const answer: unknown = await response.body.json();
      return reply.code(response.statusCode).send(answer);
    });
  } else {
    throw new Error('usage: reference-server.js back | front <back-url>');
  }
  app.addHook('onClose', async () => {
    await pool?.close();
  });
  return app;
});
