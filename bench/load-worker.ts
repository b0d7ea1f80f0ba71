/**
 * The load generator, run as its own process so that it never shares a CPU budget with the servers'
 * event loops: `node dist/bench/load-worker.js '<spec as JSON>'` prints one JSON result on stdout.
 * - `cannon`: autocannon for a fixed duration, each request built by a plan (random ids, bodies);
 * - `burst`: a fixed number of purchases fired at once through an undici Pool.
 */
import autocannon, { type AutocannonRequest } from 'autocannon';
import { Pool } from 'undici';

export type RequestPlan =
  /** POST a one-seat purchase for an event picked at random from `eventIds`. */
  | { kind: 'purchase'; path: string; eventIds: number[] }
  /** GET `${pathPrefix}${id}` with `id` uniform in [minId, maxId]. */
  | { kind: 'get-by-id'; pathPrefix: string; minId: number; maxId: number }
  | { kind: 'get'; path: string };

export interface CannonSpec {
  kind: 'cannon';
  url: string;
  connections: number;
  durationSeconds: number;
  /** Unmeasured load first, same connections. */
  warmupSeconds: number;
  plan: RequestPlan;
}

export interface BurstSpec {
  kind: 'burst';
  url: string;
  path: string;
  eventId: number;
  requests: number;
  connections: number;
  timeoutMs: number;
}

export type LoadSpec = CannonSpec | BurstSpec;

export interface Latency {
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export interface CannonResult {
  kind: 'cannon';
  durationSeconds: number;
  /** Requests answered (any status). */
  completed: number;
  ok: number;
  non2xx: number;
  /** Socket errors and timeouts (autocannon counts timeouts among errors). */
  errors: number;
  timeouts: number;
  statusCodes: Record<string, number>;
  requestsPerSecond: number;
  okPerSecond: number;
  /** Milliseconds, every answer. */
  latencyMs: Latency & { average: number };
  /** CPU seconds the load generator itself used (user + system), warm-up included. */
  cpuSeconds?: number;
}

export interface BurstResult {
  kind: 'burst';
  requests: number;
  statusCodes: Record<string, number>;
  networkErrors: number;
  errorSamples: string[];
  elapsedMs: number;
  latencyMs: Latency;
}

let sequence = 0;
function purchaseBody(eventId: number): string {
  sequence += 1;
  return JSON.stringify({ event_id: eventId, customer_name: 'Bench Buyer', customer_email: `buyer${process.pid}-${sequence}@example.com`, quantity: 1 });
}

function pick<T>(items: readonly T[]): T {
  const item = items[Math.floor(Math.random() * items.length)];
  if (item === undefined) throw new Error('cannot pick from an empty list');
  return item;
}

function autocannonRequest(plan: RequestPlan): AutocannonRequest {
  switch (plan.kind) {
    case 'purchase':
      return {
        method: 'POST',
        path: plan.path,
        headers: { 'content-type': 'application/json' },
        setupRequest: (request) => ({ ...request, body: purchaseBody(pick(plan.eventIds)) }),
      };
    case 'get-by-id': {
      const span = plan.maxId - plan.minId + 1;
      return {
        method: 'GET',
        path: `${plan.pathPrefix}${plan.minId}`,
        setupRequest: (request) => ({ ...request, path: `${plan.pathPrefix}${plan.minId + Math.floor(Math.random() * span)}` }),
      };
    }
    case 'get':
      return { method: 'GET', path: plan.path };
  }
}

async function runCannon(spec: CannonSpec): Promise<CannonResult> {
  const result = await autocannon({
    url: spec.url,
    connections: spec.connections,
    duration: spec.durationSeconds,
    timeout: 10,
    requests: [autocannonRequest(spec.plan)],
    ...(spec.warmupSeconds > 0 ? { warmup: { connections: spec.connections, duration: spec.warmupSeconds } } : {}),
  });
  const statusCodes: Record<string, number> = {};
  for (const [code, { count }] of Object.entries(result.statusCodeStats)) statusCodes[code] = count;
  const seconds = result.duration > 0 ? result.duration : spec.durationSeconds;
  return {
    kind: 'cannon',
    durationSeconds: seconds,
    completed: result.requests.total,
    ok: result['2xx'],
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    statusCodes,
    requestsPerSecond: result.requests.total / seconds,
    okPerSecond: result['2xx'] / seconds,
    latencyMs: { p50: result.latency.p50, p90: result.latency.p90, p99: result.latency.p99, max: result.latency.max, average: result.latency.average },
    cpuSeconds: (process.cpuUsage().user + process.cpuUsage().system) / 1e6,
  };
}

function percentile(sorted: readonly number[], fraction: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1)] ?? 0;
}

async function runBurst(spec: BurstSpec): Promise<BurstResult> {
  const pool = new Pool(spec.url, { connections: spec.connections, keepAliveTimeout: 30_000, headersTimeout: spec.timeoutMs, bodyTimeout: spec.timeoutMs });
  const statusCodes: Record<string, number> = {};
  const latencies: number[] = [];
  const errorSamples: string[] = [];
  let networkErrors = 0;
  const started = performance.now();
  try {
    await Promise.all(
      Array.from({ length: spec.requests }, async () => {
        const sent = performance.now();
        try {
          const response = await pool.request({
            method: 'POST',
            path: spec.path,
            headers: { 'content-type': 'application/json' },
            body: purchaseBody(spec.eventId),
            signal: AbortSignal.timeout(spec.timeoutMs),
          });
          await response.body.dump();
          const code = String(response.statusCode);
          statusCodes[code] = (statusCodes[code] ?? 0) + 1;
          latencies.push(performance.now() - sent);
        } catch (error) {
          networkErrors += 1;
          if (errorSamples.length < 5) errorSamples.push(error instanceof Error ? `${error.name}: ${error.message}` : String(error));
        }
      }),
    );
  } finally {
    await pool.close();
  }
  const elapsedMs = performance.now() - started;
  latencies.sort((a, b) => a - b);
  return {
    kind: 'burst',
    requests: spec.requests,
    statusCodes,
    networkErrors,
    errorSamples,
    elapsedMs,
    latencyMs: { p50: percentile(latencies, 0.5), p90: percentile(latencies, 0.9), p99: percentile(latencies, 0.99), max: latencies.at(-1) ?? 0 },
  };
}

async function main(): Promise<void> {
  const text = process.argv[2];
  if (text === undefined) throw new Error("usage: load-worker.js '<spec as JSON>'");
  const spec = JSON.parse(text) as LoadSpec;
  const result = spec.kind === 'cannon' ? await runCannon(spec) : await runBurst(spec);
  // Exit once the document is flushed: autocannon may leave sockets and timers behind.
  await new Promise<void>((resolve) => process.stdout.write(`${JSON.stringify(result)}\n`, () => resolve()));
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error('load-worker:', error);
    process.exit(1);
  },
);
