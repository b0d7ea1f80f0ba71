/**
 * DESIGN.md, Observability: W3C `traceparent` is propagated from ticket-service to event-service
 * beside `x-request-id` and logged, so one purchase can be followed across both services' logs.
 * Both services run as real processes with JSON logs; SQLite only (the store adds nothing here).
 */
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { eventually, startSystem, type ServiceName, type TestSystem } from './helpers/system.js';
import { createEvent, logsOf, raw, ticketBody } from './helpers/system-api.js';

interface LogLine {
  msg?: string;
  trace_id?: string;
  span_id?: string;
  request_id?: string;
  req?: { method?: string; url?: string };
}

/** The service's JSON log lines so far. */
function logLines(system: TestSystem, name: ServiceName): LogLine[] {
  const lines: LogLine[] = [];
  for (const text of logsOf(system, name).split('\n')) {
    if (!text.startsWith('{')) continue;
    try {
      lines.push(JSON.parse(text) as LogLine);
    } catch {
      // A line still being written.
    }
  }
  return lines;
}

const inTrace = (system: TestSystem, name: ServiceName, traceId: string) => logLines(system, name).filter((line) => line.trace_id === traceId);

/** The service's log lines in the trace, once its requests' completion lines are written (they follow the answer). */
async function completedTrace(system: TestSystem, name: ServiceName, traceId: string): Promise<LogLine[]> {
  const completed = () => {
    const lines = inTrace(system, name, traceId);
    return lines.filter((line) => line.msg === 'incoming request').length === lines.filter((line) => line.msg === 'request completed').length;
  };
  await eventually(async () => inTrace(system, name, traceId).length > 0 && completed(), 5000);
  return inTrace(system, name, traceId);
}

const isHoldCall = (line: LogLine) => line.msg === 'incoming request' && line.req?.method === 'POST' && line.req.url === '/holds';
const isBatchedHold = (line: LogLine) => line.msg === 'batched hold completed';

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/;

t.test("one purchase can be followed across both services' logs by its trace_id", async (t) => {
  const system = await startSystem(t);
  const event = await createEvent(system, { total_tickets: 10 });

  t.test('a purchase sent with a traceparent: both services log its trace_id, event-service as a child span of ticket-service', async (t) => {
    const traceId = randomBytes(16).toString('hex');
    const callerSpan = randomBytes(8).toString('hex');
    const answer = await raw(`${system.ticket.url}/tickets`, {
      method: 'POST',
      headers: { traceparent: `00-${traceId}-${callerSpan}-01`, tracestate: 'vendor=opaque', 'x-request-id': `purchase-${traceId}` },
      body: ticketBody(event.id, 2),
    });
    t.equal(answer.status, 201, 'the purchase succeeds');
    const [, answeredTrace, ticketSpan] = TRACEPARENT.exec(String(answer.headers.traceresponse)) ?? [];
    t.equal(answeredTrace, traceId, 'the answer names the same trace (traceresponse)');

    const ticketLines = await completedTrace(system, 'ticket-service', traceId);
    t.same(
      ticketLines.map((line) => line.msg),
      ['incoming request', 'request completed'],
      'ticket-service logs the purchase request with the trace_id',
    );
    t.ok(
      ticketLines.every((line) => line.span_id === ticketSpan && line.request_id === `purchase-${traceId}`),
      'with its own span (the one it answered) and the request id',
    );
    t.not(ticketSpan, callerSpan, "ticket-service's span is new");

    const eventLines = await completedTrace(system, 'event-service', traceId);
    const holdCall = eventLines.find(isHoldCall);
    t.ok(holdCall, "event-service's log line for the hold call carries the same trace_id");
    t.equal(holdCall?.request_id, `purchase-${traceId}`, 'beside the same request id');
    t.match(holdCall?.span_id, /^[0-9a-f]{16}$/);
    t.not(holdCall?.span_id, ticketSpan, 'event-service logs a span of its own');
    t.ok(eventLines.some((line) => line.msg === 'request completed' && line.span_id === holdCall?.span_id), 'and its completion line too');
  });

  t.test('a purchase sent without a traceparent (or with a malformed one) gets a fresh trace_id that both services log', async (t) => {
    const seen = new Set<string>();
    const sent: Array<Record<string, string>> = [{}, { traceparent: `00-${'A'.repeat(32)}-${'b'.repeat(16)}-01` }];
    for (const headers of sent) {
      const answer = await raw(`${system.ticket.url}/tickets`, { method: 'POST', headers, body: ticketBody(event.id, 1) });
      t.equal(answer.status, 201, 'the purchase succeeds');
      const [, traceId = 'none'] = TRACEPARENT.exec(String(answer.headers.traceresponse)) ?? [];
      t.match(traceId, /^[0-9a-f]{32}$/, 'the answer names a new trace');
      t.not(traceId, 'a'.repeat(32));
      seen.add(traceId);
      t.same(
        (await completedTrace(system, 'ticket-service', traceId)).map((line) => line.msg),
        ['incoming request', 'request completed'],
        'ticket-service logs the purchase with it',
      );
      const holdCall = (await completedTrace(system, 'event-service', traceId)).find(isHoldCall);
      t.ok(holdCall, "and event-service's hold call line carries it too");
    }
    t.equal(seen.size, 2, 'each purchase has a trace of its own');
  });

  t.test("purchases whose holds went to event-service in one batch: each one's trace_id is on its own hold line there, beside its request id", async (t) => {
    const roomy = await createEvent(system, { total_tickets: 30 });
    let batched = 0;
    // Until some holds were batched (purchases that reach ticket-service together), at most 5 rounds.
    for (let round = 1; round <= 5 && batched === 0; round += 1) {
      const purchases = Array.from({ length: 6 }, () => ({ traceId: randomBytes(16).toString('hex'), span: randomBytes(8).toString('hex') }));
      const answers = await Promise.all(
        purchases.map(({ traceId, span }) =>
          raw(`${system.ticket.url}/tickets`, {
            method: 'POST',
            headers: { traceparent: `00-${traceId}-${span}-01`, 'x-request-id': `purchase-${traceId}`, 'idempotency-key': `key-${traceId}` },
            body: ticketBody(roomy.id, 1),
          }),
        ),
      );
      t.same(answers.map((a) => a.status), Array(6).fill(201), `round ${round}: every purchase succeeds`);
      for (const [index, { traceId }] of purchases.entries()) {
        const [, , ticketSpan] = TRACEPARENT.exec(String(answers[index]?.headers.traceresponse)) ?? [];
        const holdLines = (await completedTrace(system, 'event-service', traceId)).filter((line) => isHoldCall(line) || isBatchedHold(line));
        t.equal(holdLines.length, 1, `purchase ${index}: one hold line in event-service's log carries its trace_id`);
        t.equal(holdLines[0]?.request_id, `purchase-${traceId}`, 'beside its own request id');
        t.match(holdLines[0]?.span_id, /^[0-9a-f]{16}$/);
        t.not(holdLines[0]?.span_id, ticketSpan, 'in a span of its own');
        if (holdLines[0] && isBatchedHold(holdLines[0])) batched += 1;
      }
    }
    t.ok(batched >= 2, `${batched} of the holds went in a batch`);
  });
});
