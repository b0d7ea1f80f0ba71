/** The typed client (openapi/client.ts): several comma-separated URLs are replicas, balanced by undici's BalancedPool. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import t, { type Test } from 'tap';
import { eventServiceClient } from '../openapi/client.js';

async function replica(t: Test, name: string, seen: string[]): Promise<string> {
  const server: Server = createServer((request, response) => {
    seen.push(name);
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(JSON.stringify({ status: 'ok', service: 'event-service' }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

t.test('EVENT_SERVICE_URL with two comma-separated replicas spreads calls over both', async (t) => {
  const seen: string[] = [];
  const a = await replica(t, 'a', seen);
  const b = await replica(t, 'b', seen);
  const client = eventServiceClient({ baseUrl: `${a}, ${b}` });
  t.teardown(() => client.close());
  for (let call = 0; call < 20; call += 1) {
    const answer = await client.call('getHealth', {});
    t.equal(answer.status, 200);
  }
  t.equal(seen.length, 20, 'every call was answered by a replica');
  t.ok(seen.includes('a') && seen.includes('b'), `both replicas answered (a: ${seen.filter((x) => x === 'a').length}, b: ${seen.filter((x) => x === 'b').length})`);
});
