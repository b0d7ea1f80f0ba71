/**
 * A pass-through HTTP proxy for the calls ticket-service makes to event-service, which can hold back
 * chosen answers (the request reaches event-service and takes effect at once, the answer comes late)
 * or hold back chosen requests until the test lets them through (they take effect only then), or
 * hold back chosen answers until the test lets them through, or replace chosen answers with a failure
 * (after the call took effect), or answer chosen calls itself.
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Test } from 'tap';
import { request } from 'undici';

export interface DelayingProxy {
  url: string;
  /** Where calls go; set once event-service runs. */
  target: string;
  /** How long to hold back the answer to a call (0: not at all). */
  delayFor: (method: string, path: string, body: string) => number;
  /** A promise to wait for before the call is passed on at all (undefined: pass it on at once). */
  gateFor: (method: string, path: string, body: string) => Promise<void> | undefined;
  /** Sees every call as it is passed on. */
  onForward: (method: string, path: string, body: string) => void;
  /** A promise to wait for before the answer, already given by event-service, is passed back (undefined: at once). */
  answerGateFor: (method: string, path: string, body: string) => Promise<void> | undefined;
  /**
   * What ticket-service gets instead of event-service's answer, once the call took effect: `reset`
   * drops the connection (unreachable, as ticket-service sees it), a status answers a problem with
   * it (a 503, say); undefined passes the answer back.
   */
  failAnswerFor: (method: string, path: string, body: string) => 'reset' | number | undefined;
  /** An answer the proxy gives itself, never passing the call on (undefined: pass it on), as a service without that route would. */
  answerInstead: (method: string, path: string, body: string) => { status: number; json: unknown } | undefined;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'host', 'content-length', 'expect', 'proxy-connection', 'te', 'trailer']);

function endToEnd(headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const kept: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) if (value !== undefined && !HOP_BY_HOP.has(name.toLowerCase())) kept[name] = value;
  return kept;
}

export async function startDelayingProxy(t: Test): Promise<DelayingProxy> {
  const proxy: DelayingProxy = {
    url: '',
    target: '',
    delayFor: () => 0,
    gateFor: () => undefined,
    onForward: () => undefined,
    answerGateFor: () => undefined,
    answerInstead: () => undefined,
    failAnswerFor: () => undefined,
  };
  const server = createServer((incoming, outgoing) => {
    const chunks: Buffer[] = [];
    incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
    incoming.on('end', () => {
      const method = incoming.method ?? 'GET';
      const path = incoming.url ?? '/';
      const body = Buffer.concat(chunks);
      const text = body.toString();
      const instead = proxy.answerInstead(method, path, text);
      if (instead) {
        outgoing.writeHead(instead.status, { 'content-type': 'application/problem+json' });
        outgoing.end(JSON.stringify(instead.json));
        return;
      }
      const delay = proxy.delayFor(method, path, text);
      Promise.resolve(proxy.gateFor(method, path, text))
        .then(() => {
          proxy.onForward(method, path, text);
          return request(`${proxy.target}${path}`, { method: method as 'GET', headers: endToEnd(incoming.headers), body: body.length > 0 ? body : null });
        })
        .then(async (answer) => {
          const body = Buffer.from(await answer.body.arrayBuffer());
          if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
          await proxy.answerGateFor(method, path, text);
          const failure = proxy.failAnswerFor(method, path, text);
          if (failure === 'reset') {
            outgoing.destroy();
            return;
          }
          if (failure !== undefined) {
            outgoing.writeHead(failure, { 'content-type': 'application/problem+json' });
            outgoing.end(JSON.stringify({ type: 'urn:eventsync:problem:unavailable', title: 'Service Unavailable', status: failure, detail: 'failed on purpose by the test proxy' }));
            return;
          }
          outgoing.writeHead(answer.statusCode, endToEnd(answer.headers));
          outgoing.end(body);
        })
        .catch(() => {
          outgoing.writeHead(502);
          outgoing.end();
        });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return proxy;
}
