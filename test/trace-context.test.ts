/**
 * W3C Trace Context (platform/trace-context.ts): which `traceparent` headers are continued and which
 * start a new trace, as https://www.w3.org/TR/trace-context/ says; and what a service answers and logs.
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import Fastify from 'fastify';
import t from 'tap';
import { parseTraceparent, registerTraceContext, traceOfHeaders, callOrigin } from '../platform/trace-context.js';
import { eventServiceClient } from '../openapi/client.js';
import { startEventApp } from './helpers/event-app.js';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT_ID = '00f067aa0ba902b7';
const VALID = `00-${TRACE_ID}-${PARENT_ID}-01`;
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

t.test('a valid version 00 traceparent is read field by field', async (t) => {
  t.same(parseTraceparent(VALID), { version: '00', traceId: TRACE_ID, parentId: PARENT_ID, flags: '01' });
  t.same(parseTraceparent(`00-${TRACE_ID}-${PARENT_ID}-00`)?.flags, '00', 'an unsampled one too');
});

t.test('a malformed traceparent is ignored (the request starts a new trace)', async (t) => {
  const invalid: Record<string, string | string[] | undefined> = {
    'a missing header': undefined,
    'an empty header': '',
    'two traceparent headers': [VALID, VALID],
    'uppercase hex in the trace-id': `00-${TRACE_ID.toUpperCase()}-${PARENT_ID}-01`,
    'uppercase hex in the parent-id': `00-${TRACE_ID}-00F067AA0BA902B7-01`,
    'uppercase hex in the version': `0A-${TRACE_ID}-${PARENT_ID}-01`,
    'an all-zero trace-id': `00-${'0'.repeat(32)}-${PARENT_ID}-01`,
    'an all-zero parent-id': `00-${TRACE_ID}-${'0'.repeat(16)}-01`,
    'version ff (forbidden)': `ff-${TRACE_ID}-${PARENT_ID}-01`,
    'a one-digit version': `0-${TRACE_ID}-${PARENT_ID}-01`,
    'a short trace-id': `00-${TRACE_ID.slice(1)}-${PARENT_ID}-01`,
    'a long trace-id': `00-${TRACE_ID}0-${PARENT_ID}-01`,
    'a short parent-id': `00-${TRACE_ID}-${PARENT_ID.slice(1)}-01`,
    'one-digit flags': `00-${TRACE_ID}-${PARENT_ID}-1`,
    'non-hex digits': `00-${TRACE_ID.slice(0, 31)}g-${PARENT_ID}-01`,
    'a version 00 header with a field after the flags': `${VALID}-extra`,
    'a version 00 header with a character after the flags': `${VALID}0`,
    'underscores instead of dashes': VALID.replaceAll('-', '_'),
    'a later version with no dash after the flags': `01-${TRACE_ID}-${PARENT_ID}-01x`,
    'a later version shorter than 55 characters': `01-${TRACE_ID}-${PARENT_ID}-0`,
  };
  for (const [what, header] of Object.entries(invalid)) t.equal(parseTraceparent(header), undefined, what);
});

t.test('a later version is read by its first four fields, whatever follows them', async (t) => {
  t.same(parseTraceparent(`cc-${TRACE_ID}-${PARENT_ID}-01-what-the-future-holds`), { version: 'cc', traceId: TRACE_ID, parentId: PARENT_ID, flags: '01' });
  t.same(parseTraceparent(`01-${TRACE_ID}-${PARENT_ID}-00`)?.traceId, TRACE_ID, 'also with nothing after them');
});

t.test('a valid traceparent is continued: same trace-id, a new span of this service, the caller span as parent, tracestate unchanged', async (t) => {
  const trace = traceOfHeaders({ traceparent: VALID, tracestate: 'rojo=00f067aa0ba902b7,congo=t61rcWkgMzE' });
  t.equal(trace.traceId, TRACE_ID);
  t.equal(trace.parentId, PARENT_ID);
  t.match(trace.spanId, /^[0-9a-f]{16}$/);
  t.not(trace.spanId, PARENT_ID, 'the span is new');
  t.equal(trace.traceparent, `00-${TRACE_ID}-${trace.spanId}-01`, 'calls made for the request name its span as their parent');
  t.equal(trace.tracestate, 'rojo=00f067aa0ba902b7,congo=t61rcWkgMzE');
});

t.test('only the sampled flag is passed on (version 00 defines no other), and a later version is continued as version 00', async (t) => {
  t.equal(traceOfHeaders({ traceparent: `00-${TRACE_ID}-${PARENT_ID}-00` }).traceparent.slice(-2), '00', 'unsampled stays unsampled');
  t.equal(traceOfHeaders({ traceparent: `00-${TRACE_ID}-${PARENT_ID}-ff` }).traceparent.slice(-2), '01', 'unknown flags are dropped');
  const later = traceOfHeaders({ traceparent: `01-${TRACE_ID}-${PARENT_ID}-01-more` });
  t.equal(later.traceId, TRACE_ID);
  t.match(later.traceparent, TRACEPARENT);
});

t.test('a missing or malformed traceparent starts a new trace, and its tracestate is dropped with it', async (t) => {
  for (const headers of [{}, { traceparent: `00-${TRACE_ID.toUpperCase()}-${PARENT_ID}-01`, tracestate: 'rojo=00f067aa0ba902b7' }]) {
    const trace = traceOfHeaders(headers);
    t.match(trace.traceId, /^[0-9a-f]{32}$/);
    t.not(trace.traceId, TRACE_ID);
    t.not(trace.traceId, '0'.repeat(32));
    t.equal(trace.parentId, undefined, 'no parent');
    t.equal(trace.tracestate, undefined, 'no tracestate');
    t.equal(trace.traceparent, `00-${trace.traceId}-${trace.spanId}-01`, 'a new trace is sampled: every request is logged');
  }
});

t.test('every request gets its own span and every new trace its own id', async (t) => {
  const traces = Array.from({ length: 2000 }, () => traceOfHeaders({}));
  t.equal(new Set(traces.map((trace) => trace.traceId)).size, traces.length);
  t.equal(new Set(traces.map((trace) => trace.spanId)).size, traces.length);
});

t.test('every request log line carries trace_id and span_id, and calls made for the request forward the trace beside the request id', async (t) => {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  const app = Fastify({ logger: { level: 'info', stream }, requestIdHeader: 'x-request-id' });
  registerTraceContext(app);
  app.get('/origin', async (request) => {
    request.log.info('handled');
    return callOrigin(request);
  });
  app.get('/fails', async () => {
    throw new Error('boom');
  });
  t.teardown(() => app.close());

  const answer = await app.inject({ url: '/origin', headers: { traceparent: VALID, tracestate: 'rojo=1', 'x-request-id': 'req-1' } });
  const origin = answer.json<{ requestId: string; traceparent: string; tracestate: string }>();
  const [, traceId, spanId] = TRACEPARENT.exec(origin.traceparent) ?? [];
  t.equal(origin.requestId, 'req-1');
  t.equal(traceId, TRACE_ID, 'the call continues the caller trace');
  t.not(spanId, PARENT_ID, 'with this request span as its parent');
  t.equal(origin.tracestate, 'rojo=1');
  t.equal(answer.headers.traceresponse, origin.traceparent, 'the answer names the trace and span (traceresponse)');

  await app.inject({ url: '/fails' });
  const requestLines = lines.filter((line) => line.reqId !== undefined);
  t.same(
    requestLines.map((line) => line.msg),
    ['incoming request', 'handled', 'request completed', 'incoming request', 'boom', 'request completed'],
    'the incoming, handler, error and completion lines',
  );
  for (const line of requestLines) {
    t.match(line.trace_id, /^[0-9a-f]{32}$/, `"${String(line.msg)}" has trace_id`);
    t.match(line.span_id, /^[0-9a-f]{16}$/, `"${String(line.msg)}" has span_id`);
  }
  t.equal(requestLines[0]?.trace_id, TRACE_ID);
  t.equal(requestLines[0]?.span_id, spanId);
  t.not(requestLines[3]?.trace_id, TRACE_ID, 'a request without traceparent has a trace of its own');
});

t.test('a service answers with traceresponse in the caller trace, also for errors and unknown routes', async (t) => {
  const { inject } = await startEventApp(t);
  for (const url of ['/health', '/events/999999', '/no-such-route']) {
    const answer = await inject({ url, headers: { traceparent: VALID } });
    const [, traceId, spanId] = TRACEPARENT.exec(String(answer.headers.traceresponse)) ?? [];
    t.equal(traceId, TRACE_ID, `${url} (${answer.statusCode}) continues the trace`);
    t.not(spanId, PARENT_ID, `${url} names a span of its own`);
  }
  const fresh = await inject({ url: '/health', headers: { traceparent: 'not-a-traceparent' } });
  t.match(fresh.headers.traceresponse, TRACEPARENT, 'a malformed traceparent gets a new trace, not an error');
  t.equal(fresh.statusCode, 200);
});

t.test('the typed client sends the trace of the request it calls for as traceparent and tracestate, beside x-request-id', async (t) => {
  const received: IncomingHttpHeaders[] = [];
  const server = createServer((request, response) => {
    received.push(request.headers);
    response.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok","service":"event-service"}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const client = eventServiceClient({ baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
  t.teardown(() => client.close());

  const trace = traceOfHeaders({ traceparent: VALID, tracestate: 'rojo=1' });
  await client.call('getHealth', {}, { requestId: 'req-2', traceparent: trace.traceparent, tracestate: trace.tracestate });
  await client.call('getHealth', {});
  t.equal(received[0]?.['x-request-id'], 'req-2');
  t.equal(received[0]?.traceparent, trace.traceparent);
  t.equal(received[0]?.tracestate, 'rojo=1');
  t.equal(received[1]?.traceparent, undefined, 'a call made for no request sends no trace (the other service starts one)');
});
