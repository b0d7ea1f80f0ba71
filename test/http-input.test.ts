/**
 * Input the HTTP layer must refuse before any route logic runs, on both services: numbers that are
 * not plain decimal or not finite, unknown query parameters, requests Node cannot parse; and the
 * empty body of a DELETE, which it must accept.
 */
import t from 'tap';
import type { Test } from 'tap';
import { connect } from 'node:net';
import { join } from 'node:path';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { specOperations, type ServiceName, type SpecOperation } from '../openapi/spec.js';
import { loadConfig, TicketServiceConfigSchema } from '../platform/config.js';
import { fastifySchema } from '../platform/openapi-routes.js';
import { createValidatorCompiler } from '../platform/validation.js';
import { buildTicketApp } from '../ticket-service/app.js';
import { serviceAuth, SERVICE_TOKEN, startEventApp, tempDir } from './helpers/event-app.js';
import { assertProblem, pointers, postVenue } from './helpers/event-api.js';
import { ContractChecker } from './helpers/contract.js';

type Inject = (options: InjectOptions) => Promise<LightMyRequestResponse>;

/** ticket-service in-process with event-service unreachable, every answer checked against its spec. */
async function startTicketApp(t: Test): Promise<{ app: FastifyInstance; inject: Inject }> {
  const dir = tempDir(t);
  const config = loadConfig(TicketServiceConfigSchema, { SERVICE_TOKEN, TICKET_DB_PATH: join(dir, 'ticket_data.db'), LOG_LEVEL: 'silent', TICKET_SERVICE_PORT: '0', EVENT_SERVICE_URL: 'http://127.0.0.1:1' });
  const app = await buildTicketApp(config, { background: false });
  t.teardown(() => app.close());
  const checker = new ContractChecker('ticket-service');
  const inject: Inject = async (options) => {
    const response = await app.inject(options);
    t.same(checker.check(String(options.method ?? 'GET'), String(options.url), response.statusCode, response.headers['content-type'] as string | undefined, response.body), [], `answer to ${options.method ?? 'GET'} ${options.url} conforms to the spec`);
    return response;
  };
  return { app, inject };
}

async function startBoth(t: Test): Promise<Record<ServiceName, Inject>> {
  const event = await startEventApp(t);
  const ticket = await startTicketApp(t);
  return { 'event-service': event.inject, 'ticket-service': ticket.inject };
}

/** Each answer must be a 400 validation problem naming exactly `parameter`. */
async function refusesParameter(t: Test, inject: Inject, requests: Array<[string, string]>, method = 'GET'): Promise<void> {
  for (const [url, parameter] of requests) {
    const problem = assertProblem(t, await inject({ method: method as 'GET', url, headers: serviceAuth }), 400, 'validation');
    t.same(pointers(problem), [parameter], `${method} ${url} names ${parameter}`);
  }
}

t.test('limit, offset and older_than that are infinite or beyond any number (Infinity, -Infinity, 1e400) are 400 naming the parameter, never 500', async (t) => {
  const inject = await startBoth(t);
  await refusesParameter(t, inject['event-service'], [
    ['/events?limit=Infinity', 'limit'],
    ['/events?limit=1e400', 'limit'],
    ['/events?offset=Infinity', 'offset'],
    ['/events?offset=-Infinity', 'offset'],
    ['/venues?limit=Infinity', 'limit'],
    ['/venues?offset=1e400', 'offset'],
    ['/holds?limit=Infinity', 'limit'],
    ['/holds?older_than=Infinity', 'older_than'],
    ['/holds?older_than=-Infinity', 'older_than'],
    ['/holds?older_than=1e400', 'older_than'],
    [`/events?limit=1${'0'.repeat(400)}`, 'limit'],
  ]);
  await refusesParameter(t, inject['ticket-service'], [
    ['/tickets?limit=Infinity', 'limit'],
    ['/tickets?limit=1e400', 'limit'],
    ['/tickets?offset=Infinity', 'offset'],
    ['/tickets?offset=-Infinity', 'offset'],
    ['/tickets?event_id=Infinity', 'event_id'],
  ]);
  const fractional = await inject['event-service']({ method: 'GET', url: '/holds?older_than=0.5', headers: serviceAuth });
  t.equal(fractional.statusCode, 200, 'a finite fractional older_than is still accepted');
});

t.test('ids in paths are plain decimal integers: DELETE /venues/0x10 is 400 and venue 16 is still there', async (t) => {
  const { inject, ...event } = await startEventApp(t);
  for (let i = 1; i <= 16; i += 1) await postVenue({ inject, ...event }, { name: `Hall ${i}` });
  await refusesParameter(t, inject, [['/venues/0x10', 'id']], 'DELETE');
  t.equal((await inject({ method: 'GET', url: '/venues/16' })).statusCode, 200, 'venue 16 was not deleted');
  await refusesParameter(t, inject, [
    ['/venues/1e1', 'id'],
    ['/venues/%20%201', 'id'],
    ['/venues/1.0', 'id'],
    ['/venues/+1', 'id'],
    ['/events/0x1', 'id'],
  ]);
  await refusesParameter(t, inject, [['/events/1e0/tickets', 'id']], 'PUT');
  t.equal((await inject({ method: 'GET', url: '/venues/1' })).statusCode, 200, 'a plain decimal id still resolves');
});

t.test('integer query parameters are plain decimal too: event_id=0x10 never means 16', async (t) => {
  const inject = await startBoth(t);
  await refusesParameter(t, inject['event-service'], [
    ['/events?venue_id=0x10', 'venue_id'],
    ['/events?limit=1e1', 'limit'],
    ['/events?limit=%2B5', 'limit'],
    ['/holds?event_id=0x10', 'event_id'],
    ['/venues?offset=%201', 'offset'],
  ]);
  await refusesParameter(t, inject['ticket-service'], [
    ['/tickets?event_id=0x10', 'event_id'],
    ['/tickets?event_id=1e1', 'event_id'],
    ['/tickets/0x1', 'id'],
  ]);
  await refusesParameter(t, inject['ticket-service'], [['/tickets/1e0/status', 'id']], 'PUT');
  t.equal((await inject['ticket-service']({ method: 'GET', url: '/tickets?event_id=16&limit=5' })).statusCode, 200, 'plain decimal values are accepted');
});

/** A request for `operation` that is valid except for what the test adds: path ids, the spec's example body. */
function validRequest(spec: SpecOperation): InjectOptions {
  // Every other path parameter is a numeric id (`{id}`, `{webhook_id}`, `{delivery_id}`…).
  const path = spec.path.replace('{hold_id}', '3f1c2a9e-8b7d-4c61-9f0a-2b5d7e8c1a44').replace(/\{[a-z_]+\}/g, '1');
  // Required query parameters (an event id, as DELETE /waitlist?event_id= needs) get a value too.
  const required = (spec.operation.parameters ?? []).filter((p) => p.in === 'query' && p.required === true).map((p) => `${p.name}=1`);
  const url = required.length > 0 ? `${path}?${required.join('&')}` : path;
  const media = spec.operation.requestBody?.content['application/json'] as { example?: unknown; examples?: Record<string, { value: unknown }> } | undefined;
  const payload = media ? (media.example ?? Object.values(media.examples ?? {})[0]?.value) : undefined;
  return { method: spec.method.toUpperCase() as 'GET', url, headers: serviceAuth, ...(payload === undefined ? {} : { payload: payload as object }) };
}

t.test('an unknown query parameter is 400 naming it on every operation of both services, as an unknown body field is', async (t) => {
  const inject = await startBoth(t);
  for (const service of ['event-service', 'ticket-service'] as const) {
    for (const spec of specOperations(service)) {
      const request = validRequest(spec);
      const url = `${String(request.url)}${String(request.url).includes('?') ? '&' : '?'}search=tech`;
      const problem = assertProblem(t, await inject[service]({ ...request, url }), 400, 'validation');
      t.same(problem.errors, [{ pointer: 'search', detail: 'is not a known field' }], `${service} ${spec.operation.operationId} refuses ?search=tech`);
    }
  }
  const misspelt = await inject['ticket-service']({ method: 'GET', url: '/tickets?limit=5&stauts=CONFIRMED' });
  t.same(assertProblem(t, misspelt, 400, 'validation').errors, [{ pointer: 'stauts', detail: 'is not a known field' }], 'a misspelt parameter beside a known one is named');
  for (const url of ['/openapi.json?search=tech', '/?search=tech']) {
    const answer = await inject['event-service']({ method: 'GET', url });
    t.ok(answer.statusCode < 400, `${url} is not a spec operation and is not refused (${answer.statusCode})`);
  }
});

t.test('an empty body on DELETE with a JSON content type is accepted; on POST and PUT it stays 400 malformed-body', async (t) => {
  const inject = await startBoth(t);
  const emptyJson = { 'content-type': 'application/json', 'content-length': '0' };
  const created = await inject['event-service']({ method: 'POST', url: '/venues', payload: { name: 'Hall', capacity: 10 } });
  const venueId = created.json<{ id: number }>().id;
  t.equal((await inject['event-service']({ method: 'DELETE', url: `/venues/${venueId}`, headers: emptyJson })).statusCode, 204, 'DELETE /venues/{id} deletes the venue');
  const missingTicket = await inject['ticket-service']({ method: 'DELETE', url: '/tickets/999', headers: emptyJson });
  assertProblem(t, missingTicket, 404, 'not-found');
  for (const [method, url] of [['POST', '/events'], ['PUT', '/events/1'], ['POST', '/tickets'], ['PUT', '/tickets/1/status']] as const) {
    const service = url.startsWith('/tickets') ? 'ticket-service' : 'event-service';
    assertProblem(t, await inject[service]({ method, url, headers: emptyJson }), 400, 'malformed-body');
  }
  const poisoned = await inject['event-service']({ method: 'POST', url: '/venues', headers: { 'content-type': 'application/json' }, payload: '{"name":"Hall","capacity":10,"__proto__":{"admin":true}}' });
  assertProblem(t, poisoned, 400, 'malformed-body');
});

/** Writes `bytes` to a listening app and returns everything it answers until it closes the connection. */
function rawExchange(port: number, bytes: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    // A reset after the answer is the server dropping the unread rest of an oversized request.
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
    socket.write(bytes);
  });
}

function parseRawAnswer(t: Test, raw: string, status: number, kind: string): void {
  const [head = '', body = ''] = raw.split('\r\n\r\n');
  const [statusLine = '', ...lines] = head.split('\r\n');
  const headers = Object.fromEntries(lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]));
  t.match(statusLine, new RegExp(`^HTTP/1\\.1 ${status} `), `the status line says ${status}`);
  t.equal(headers['content-type'], 'application/problem+json', 'as application/problem+json');
  t.equal(headers.connection, 'close', 'with Connection: close');
  t.equal(Number(headers['content-length']), Buffer.byteLength(body), 'Content-Length is the length of the body');
  t.match(JSON.parse(body), { type: `urn:eventsync:problem:${kind}`, status, title: String }, `the body is a ${kind} problem`);
}

t.test('a bad request line and headers too large get a complete problem+json answer (400, 431) and the connection closes', async (t) => {
  const event = await startEventApp(t);
  const ticket = await startTicketApp(t);
  for (const app of [event.app, ticket.app]) {
    await app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = app.server.address() as { port: number };
    parseRawAnswer(t, await rawExchange(port, 'GET /events HTTP/1.1 and more\r\nHost: x\r\n\r\n'), 400, 'malformed-request');
    parseRawAnswer(t, await rawExchange(port, 'NOT-HTTP\r\n\r\n'), 400, 'malformed-request');
    parseRawAnswer(t, await rawExchange(port, `GET /events HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`), 431, 'headers-too-large');
  }
});

t.test('every request schema of both specs compiles; validators compile on first use, so a schema Ajv refuses fails here and not on a request', async (t) => {
  const compile = createValidatorCompiler();
  const validatorOf = (schema: unknown, httpPart: string) => compile({ schema: schema as Record<string, unknown>, httpPart, method: 'POST', url: '/' });
  let parts = 0;
  for (const service of ['event-service', 'ticket-service'] as const) {
    for (const spec of specOperations(service)) {
      const { body, querystring, params, headers } = fastifySchema(spec);
      for (const [httpPart, schema] of Object.entries({ body, querystring, params, headers })) {
        if (schema === undefined) continue;
        parts += 1;
        t.doesNotThrow(() => validatorOf(schema, httpPart)({}), `${service} ${spec.operation.operationId}: its ${httpPart} schema compiles`);
      }
    }
  }
  t.ok(parts > 80, `${parts} schemas compiled`);
  // The check has teeth: a schema strict Ajv refuses throws when first used.
  const refused = validatorOf({ type: 'object', properties: {}, mistyped: true }, 'body');
  t.throws(() => refused({}), /unknown keyword/, 'an unknown keyword throws on first use');
});
