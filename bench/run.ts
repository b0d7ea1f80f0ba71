/**
 * EventSync's load benchmark (`npm run bench`): both services as real processes over 100,000 seeded
 * events, run the way a deployment runs (metrics on, one webhook subscriber that answers): purchase
 * storms at 64 and 16 connections, each in rounds interleaved with a bare two-hop Fastify reference at
 * the same connections and, on SQLite, with the floor (bench/floor-server.ts: the bare hops writing a
 * purchase's rows durably and delivering its webhook, nothing else) (the machine drifts from minute
 * to minute: the ratios are the medians of the rounds'), a sell-out race checked for overselling and leaks, reads by id interleaved with the same
 * service's `/health`, and a text search. Load comes from a separate worker process. Prints a table
 * with the targets and writes bench/results/latest.json. Listed with --only, what metrics cost:
 * storms with METRICS on and off, and with /metrics scraped or not, in interleaved rounds.
 *
 * Exit 0 when it measured (even with targets missed), 1 when something oversold, leaked, or crashed.
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { eventServiceClient, ticketServiceClient } from '../openapi/client.js';
import { repoRoot } from '../openapi/spec.js';
import type { BurstResult, BurstSpec, CannonResult, CannonSpec, RequestPlan } from './load-worker.js';
import { killAllChildrenNow, runWorker, startServer, stopAllChildren, stopServer, type RunningServer } from './processes.js';
import { SEARCH_WORD, seedEventDatabase, type SeedTarget, type SeededEvents } from './seed.js';
import { createBenchDatabases, SERVER_URL, type BenchDatabases } from './databases.js';
import { floorSideName, startFloor, type Floor } from './floor-pair.js';
import { median } from './median.js';
import { startWebhookSubscriber } from './receiver.js';
import { ticketCount } from './ticket-count.js';
import { summariseProfiles } from './profile-summary.js';
import { addCounters, counterDelta, NO_COUNTERS, purchaseCosts, readServerCounters, startCpuAccounting, sumAccounts, type CpuAccount, type PurchaseCosts, type ServerCounters } from './accounting.js';
import { checkSellOut, type SellOutReport } from './sell-out.js';
import { count } from '../platform/words.js';

const SCENARIOS = ['storm', 'hot', 'race', 'by-id', 'search', 'webhooks', 'metrics'] as const;
type ScenarioName = (typeof SCENARIOS)[number];
/** Run only when listed with --only: the default run stays as it was (and within its time budget). */
const ONLY_WHEN_LISTED: readonly ScenarioName[] = ['hot', 'metrics'];

const USAGE = `usage: npm run bench -- [--store sqlite|postgres] [--workers N] [--quick] [--only ${SCENARIOS.join(',')}] [--profile] [--without-subscriber] [--services-from DIST] [--env NAME=VALUE ...] [--out FILE]
  --store sqlite|postgres  the services' store (default sqlite); postgres creates two fresh databases on the server
                        at TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres) and drops them at the end
  --workers N           processes per service (WORKERS=N; above 1 only with --store postgres)
  --quick               a smoke run of the harness itself (short runs, small catalogue), written to quick.json
  --only LIST           run only these scenarios (comma-separated); 'storm' runs its reference rounds itself;
                        'hot' (the storm's load on one event: its seat counter is the hot row) runs only when listed;
                        so does 'metrics' (storms with METRICS=on and off, restarting the services before each
                        round, then with and without a scraper; run last, it leaves the services restarted)
  --profile             run the services under --cpu-prof; profiles and their top costs go to bench/results/profiles/
  --without-subscriber  no webhook subscriber during the storms and reads (to see what one costs)
  --services-from DIST  run event-service and ticket-service from another compiled tree (an older commit's dist/)
  --env NAME=VALUE      extra configuration for both services (repeatable), e.g. SQLITE_SYNCHRONOUS=NORMAL
  --out FILE            write the JSON there instead of bench/results/latest.json`;

function options() {
  try {
    const { values } = parseArgs({
      options: {
        store: { type: 'string', default: 'sqlite' },
        workers: { type: 'string', default: '1' },
        quick: { type: 'boolean', default: false },
        only: { type: 'string' },
        profile: { type: 'boolean', default: false },
        'without-subscriber': { type: 'boolean', default: false },
        'services-from': { type: 'string' },
        out: { type: 'string' },
        env: { type: 'string', multiple: true },
        help: { type: 'boolean', default: false },
      },
    });
    if (values.help) {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    }
    const only = values.only?.split(',').map((name) => name.trim());
    const unknown = only?.filter((name) => !(SCENARIOS as readonly string[]).includes(name)) ?? [];
    if (unknown.length > 0) throw new Error(`unknown scenario ${unknown.join(', ')}`);
    const store = values.store;
    if (store !== 'sqlite' && store !== 'postgres') throw new Error(`--store takes sqlite or postgres, not ${store}`);
    const storeName: Results['store'] = store;
    const workers = Number(values.workers);
    if (!/^[1-9][0-9]*$/.test(values.workers) || workers > 64) throw new Error(`--workers takes a whole number from 1 to 64, not ${values.workers}`);
    if (workers > 1 && store !== 'postgres') throw new Error(`--workers ${workers} needs --store postgres: a SQLite service runs as one process`);
    if (workers > 1 && values.profile) throw new Error('--profile profiles one process per service: leave out --workers');
    const env: Record<string, string> = {};
    for (const pair of values.env ?? []) {
      const match = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(pair);
      if (!match?.[1] || match[2] === undefined) throw new Error(`--env takes NAME=VALUE, not ${pair}`);
      env[match[1]] = match[2];
    }
    return {
      store: storeName,
      workers,
      quick: values.quick,
      env,
      scenarios: new Set<ScenarioName>((only as ScenarioName[] | undefined) ?? SCENARIOS.filter((name) => !ONLY_WHEN_LISTED.includes(name))),
      profile: values.profile,
      withoutSubscriber: values['without-subscriber'],
      servicesFrom: values['services-from'] === undefined ? undefined : resolve(values['services-from']),
      out: values.out === undefined ? undefined : resolve(values.out),
    };
  } catch (error) {
    process.stderr.write(`bench: ${error instanceof Error ? error.message : String(error)}\n${USAGE}\n`);
    process.exit(2);
  }
}

const OPTIONS = options();
const QUICK = OPTIONS.quick;
const PROFILE_DIR = join(repoRoot, 'bench', 'results', 'profiles');
const CONNECTIONS = 64;
/** The storm runs at each of these connection counts, each with its own reference. */
const STORM_CONNECTIONS = [64, 16] as const;
/** Interleaved rounds (reference, then storm, per connection count; /health, then by id, for reads). */
const ROUNDS = QUICK ? 1 : 3;
const STORM_ROUND_SECONDS = QUICK ? 2 : 6;
const READ_ROUND_SECONDS = QUICK ? 2 : 4;
const READ_SECONDS = QUICK ? 3 : 10;
const WARMUP_SECONDS = 1;
/**
 * Before the storms' first round, the services and the floor each take this long a storm that is not
 * measured: every earlier run's first round came out at 0.6–0.7 of the floor against 0.8–0.9 in the
 * rounds after it (the JIT still compiling the purchase path on a machine the load already fills).
 */
const STORM_WARMUP_SECONDS = QUICK ? 1 : 6;
const CATALOGUE_EVENTS = QUICK ? 10_000 : 100_000;
const STORM_EVENTS = 100;
const STORM_SEATS = 1_000_000;
const RACE_SEATS = 500;
const RACE_PURCHASES = 2000;
const RACE_CONNECTIONS = 256;
/** Purchase rounds without and with a hanging webhook receiver subscribed, interleaved. */
const WEBHOOK_ROUNDS = 3;
const WEBHOOK_ROUND_SECONDS = QUICK ? 1 : 3;
/** The metrics scenario: storms at this many connections; /metrics of both services scraped this often. */
const METRICS_CONNECTIONS = 64;
const SCRAPE_INTERVAL_MS = 250;
/** Past this the run stops what is going on, skips the rest and reports what it has... */
const BUDGET_MS = 360_000;
/** ...and past this it exits whatever is still running. */
const HARD_LIMIT_MS = 380_000;

const TARGETS = {
  /** The storm's purchases/s against the reference's requests/s at the same connections (median of the rounds). */
  stormRatio: { 64: 0.33, 16: 0.25 } as Record<number, number>,
  stormP99Ms: 50,
  /** GET /events/{id} against the same service's /health, median of the rounds. */
  byIdRatioToHealth: 0.75,
  byIdRequestsPerSecond: 15_000,
  searchP99Ms: 20,
  /** What metrics may cost purchases/s (on against off; scraped against not), medians of interleaved rounds. */
  metricsCost: 0.05,
};

interface StormSeries {
  connections: number;
  /**
   * Each round: the reference, the floor (SQLite only) and the storm right after each other, and the
   * ratios: storm to reference (the issue's target), floor to reference, storm to floor.
   */
  rounds: Array<{
    referencePerSecond: number;
    stormPerSecond: number;
    stormP99Ms: number;
    ratio: number;
    /** Webhook deliveries the subscriber took per second during the storm, and how long after it they caught up with its purchases. */
    stormDeliveriesPerSecond?: number;
    stormDeliveriesCaughtUpSeconds?: number;
    floorPerSecond?: number;
    floorRatio?: number;
    stormToFloor?: number;
    floorDeliveriesCaughtUpSeconds?: number;
  }>;
  /** All rounds together (rates over the total time, percentiles weighted by answers). */
  reference: CannonResult;
  storm: CannonResult & { costs?: PurchaseCosts };
  floor?: CannonResult & { costs?: PurchaseCosts };
  medianRatio: number;
  medianP99Ms: number;
  medianFloorRatio?: number;
  medianStormToFloor?: number;
}

interface ReadSeries {
  rounds: Array<{ healthPerSecond: number; byIdPerSecond: number; ratio: number }>;
  health: CannonResult;
  byId: CannonResult;
  medianRatio: number;
  medianByIdPerSecond: number;
}

interface MachineFacts {
  cpus: number;
  cpuModel: string;
  node: string;
  totalMemoryBytes: number;
  platform: string;
  loadAverageAtStart: number[];
}

interface Target {
  scenario: string;
  target: string;
  met: boolean;
}

interface Results {
  timestamp: string;
  /** The services' store, and processes per service (WORKERS). */
  store: 'sqlite' | 'postgres';
  workers: number;
  quick: boolean;
  /** Scenarios run, and where the services came from when not from this tree. */
  scenarios: ScenarioName[];
  servicesFrom?: string;
  /** Configuration given with --env on top of the defaults. */
  env: Record<string, string>;
  profiled: boolean;
  seconds?: number;
  machine: MachineFacts;
  settings: Record<string, number>;
  seeding?: SeededEvents;
  /** The subscriber that answers every delivery during the storms and reads, as in a deployment. */
  webhookSubscriber?: { deliveriesReceived: number };
  /** One series per connection count: reference and storm rounds, interleaved. */
  storms?: StormSeries[];
  /** The storm's load on one event (the mega on-sale: every hold waits for one seat counter); not in the default run. */
  hotEvent?: CannonResult;
  sellOut?: SellOutReport;
  /** GET /events/{id} and the same service's /health, rounds interleaved. */
  reads?: ReadSeries;
  search?: CannonResult & { matchingEvents: number };
  /** Purchases/s (and p99) without and with a subscribed receiver that never answers: medians of interleaved rounds. */
  webhooks?: WebhookCost;
  /** Purchases/s with METRICS=off and on, and with /metrics scraped every 250 ms or not: medians of interleaved rounds. */
  metrics?: MetricsCost;
  targets: Target[];
  crashed: Array<{ scenario: string; error: string }>;
  loadAverageAtEnd?: number[];
  exitCode?: number;
}

function machineFacts(): MachineFacts {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    node: process.version,
    totalMemoryBytes: os.totalmem(),
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    loadAverageAtStart: os.loadavg(),
  };
}

const cannon = (url: string, durationSeconds: number, plan: RequestPlan, connections: number = CONNECTIONS): CannonSpec => ({
  kind: 'cannon',
  url,
  connections,
  durationSeconds,
  warmupSeconds: WARMUP_SECONDS,
  plan,
});
/** Room for start-up, warm-up and wind-down of a worker on a busy machine. */
const workerTimeout = (spec: CannonSpec) => (spec.durationSeconds + spec.warmupSeconds + 30) * 1000;

function log(message: string): void {
  process.stdout.write(`${message}\n`);
}

// ---- the table ---------------------------------------------------------------------------------

const number = (value: number, digits = 0) => value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const ms = (value: number) => `${value.toFixed(value < 10 ? 2 : 1)} ms`;

function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  const line = (row: string[]) => row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join('  ');
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  const [head, ...body] = rows;
  return [line(head ?? []), rule, ...body.map(line)].join('\n');
}

function cannonRow(name: string, result: CannonResult | undefined, perSecond: (r: CannonResult) => number, extra: string[]): string[] {
  if (!result) return [name, 'crashed', '', '', '', '', ...extra];
  return [name, number(perSecond(result)), ms(result.latencyMs.p50), ms(result.latencyMs.p90), ms(result.latencyMs.p99), number(result.non2xx + result.errors), ...extra];
}

function report(results: Results): string {
  const mark = (scenario: string) => {
    const target = results.targets.find((t) => t.scenario === scenario);
    return target ? [target.target, target.met ? 'met' : 'MISSED'] : ['', ''];
  };
  const sellOut = results.sellOut;
  const stormRows = (results.storms ?? []).flatMap((series) => [
    cannonRow(`reference: two-hop Fastify, ${series.connections} connections`, series.reference, (r) => r.okPerSecond, ['1.00', '', '']),
    ...(series.floor && series.medianFloorRatio !== undefined
      ? [cannonRow(`floor: bare hops + durable rows${results.webhookSubscriber ? ' + delivery' : ''}, ${series.connections} conns`, series.floor, (r) => r.okPerSecond, [series.medianFloorRatio.toFixed(2), '', ''])]
      : []),
    cannonRow(`purchase storm: POST /tickets, ${series.connections} connections (purchases/s)`, series.storm, (r) => r.okPerSecond, [
      series.medianRatio.toFixed(2),
      ...mark(`purchase storm at ${series.connections}`),
    ]),
  ]);
  const reads = results.reads;
  const metrics = results.metrics;
  const rows: Array<[ScenarioName, string[]]> = [
    ...stormRows.map((row): [ScenarioName, string[]] => ['storm', row]),
    ['hot', cannonRow('one hot event: POST /tickets, 1 event (purchases/s)', results.hotEvent, (r) => r.okPerSecond, ['', '', ''])],
    ['race', sellOut
      ? [
          `sell-out race: ${number(sellOut.purchases)} buyers, ${sellOut.seats} seats`,
          number(sellOut.purchasesPerSecond),
          ms(sellOut.latencyMs.p50),
          ms(sellOut.latencyMs.p90),
          ms(sellOut.latencyMs.p99),
          number(sellOut.other),
          '',
          ...mark('sell-out race'),
        ]
      : ['sell-out race', 'crashed', '', '', '', '', '', ...mark('sell-out race')]],
    ['by-id', cannonRow('event-service GET /health', reads?.health, (r) => r.okPerSecond, ['1.00', '', ''])],
    ['by-id', cannonRow(`GET /events/{id} (random of ${number(CATALOGUE_EVENTS)})`, reads?.byId, (r) => r.okPerSecond, [reads ? reads.medianRatio.toFixed(2) : '', ...mark('GET /events/{id}')])],
    ['search', cannonRow(`GET /events?q=${SEARCH_WORD}&limit=20`, results.search, (r) => r.okPerSecond, ['', ...mark('search')])],
    ['metrics', cannonRow(`METRICS=off: POST /tickets, ${METRICS_CONNECTIONS} connections (purchases/s)`, metrics?.off.all, (r) => r.okPerSecond, ['1.00', '', ''])],
    ['metrics', cannonRow('METRICS=on (vs off: medians)', metrics?.on.all, (r) => r.okPerSecond, [metrics ? metrics.onToOff.toFixed(2) : '', ...mark('metrics on')])],
    ['metrics', cannonRow('METRICS=on, no scraper', metrics?.unscraped.all, (r) => r.okPerSecond, ['1.00', '', ''])],
    ['metrics', cannonRow(`/metrics of both scraped every ${SCRAPE_INTERVAL_MS} ms (vs none: medians)`, metrics?.scraped.all, (r) => r.okPerSecond, [metrics ? metrics.scrapedToUnscraped.toFixed(2) : '', ...mark('metrics scraped')])],
  ];
  const workers = `${count(results.workers, 'process', 'processes')} per service (WORKERS=${results.workers})`;
  const subscriber = results.webhookSubscriber ? `, one webhook subscriber (${number(results.webhookSubscriber.deliveriesReceived)} deliveries received)` : '';
  const title = `store: ${results.store === 'sqlite' ? 'SQLite' : 'PostgreSQL'}, ${workers}${subscriber}`;
  const head = ['scenario', 'req/s', 'p50', 'p90', 'p99', 'errors', 'vs ref', 'target', 'result'];
  const lines = [title, table([head, ...rows.filter(([name]) => results.scenarios.includes(name)).map(([, row]) => row)])];
  for (const series of results.storms ?? []) {
    lines.push(
      series.medianStormToFloor === undefined
        ? `storm at ${series.connections} connections, rounds (reference → storm = ratio): ` +
            series.rounds.map((r) => `${number(r.referencePerSecond)} → ${number(r.stormPerSecond)} = ${r.ratio.toFixed(2)}`).join('; ') +
            `; median ratio ${series.medianRatio.toFixed(2)}, median p99 ${ms(series.medianP99Ms)}`
        : `storm at ${series.connections} connections, rounds (reference → floor → storm; storm/reference, storm/floor): ` +
            series.rounds.map((r) => `${number(r.referencePerSecond)} → ${number(r.floorPerSecond ?? 0)} → ${number(r.stormPerSecond)}; ${r.ratio.toFixed(2)}, ${(r.stormToFloor ?? 0).toFixed(2)}`).join(' | ') +
            `; medians: storm/reference ${series.medianRatio.toFixed(2)}, floor/reference ${(series.medianFloorRatio ?? 0).toFixed(2)}, storm/floor ${series.medianStormToFloor.toFixed(2)}; median p99 ${ms(series.medianP99Ms)}`,
    );
  }
  if (reads) {
    lines.push(
      'reads, rounds (/health → GET /events/{id} = ratio): ' +
        reads.rounds.map((r) => `${number(r.healthPerSecond)} → ${number(r.byIdPerSecond)} = ${r.ratio.toFixed(2)}`).join('; ') +
        `; median ratio ${reads.medianRatio.toFixed(2)}, median ${number(reads.medianByIdPerSecond)} req/s`,
    );
  }
  if (sellOut) {
    lines.push(
      '',
      `sell-out race: sold ${sellOut.sold} (201), refused ${sellOut.refused} (409), other ${sellOut.other}` +
        `${sellOut.other > 0 ? ` ${JSON.stringify(sellOut.statusCodes)}, ${sellOut.networkErrors} without answer` : ''}; ` +
        `oversold ${sellOut.oversold}, leaked ${sellOut.leaked} (seats without ticket ${sellOut.seatsWithoutTicket}, audit problems ${sellOut.auditProblemCount}); ` +
        `event: total ${sellOut.event.total}, available ${sellOut.event.available}, held ${sellOut.event.held}, sold ${sellOut.event.sold}` +
        ` (counters ${sellOut.countersConsistent ? 'consistent' : 'INCONSISTENT'}); audit of the whole system took ${sellOut.auditSeconds.toFixed(1)} s`,
    );
    for (const problem of sellOut.auditProblems) lines.push(`  audit: ${problem}`);
  }
  for (const series of results.storms ?? []) {
    const floorCosts = series.floor?.costs;
    if (floorCosts) {
      lines.push(
        `floor at ${series.connections} connections, CPU per purchase${OPTIONS.withoutSubscriber ? '' : ' with its delivery'} (${number(floorCosts.purchases)} purchases; ms): ` +
          Object.entries(floorCosts.cpuMsPerPurchase)
            // A process that came and went (a PostgreSQL backend of another client) shows as 0.000.
            .filter(([, perPurchase]) => perPurchase >= 0.0005)
            .sort(([, a], [, b]) => b - a)
            .map(([group, perPurchase]) => `${floorSideName(group)} ${perPurchase.toFixed(3)}`)
            .join(', '),
      );
    }
    const costs = series.storm.costs;
    if (!costs) continue;
    const groups = Object.entries(costs.cpuMsPerPurchase).sort(([, a], [, b]) => b - a);
    lines.push(
      `storm at ${series.connections} connections, CPU per purchase${results.webhookSubscriber ? ' with its delivery' : ''} (${number(costs.purchases)} purchases; ms, and share of all cores): ` +
        groups.map(([group, perPurchase]) => `${group} ${perPurchase.toFixed(3)} (${((costs.cpuShare[group] ?? 0) * 100).toFixed(0)}%)`).join(', '),
    );
    if (costs.commitsPerPurchase) {
      lines.push(
        `storm at ${series.connections} connections, PostgreSQL: transactions per purchase (reads included) ${costs.commitsPerPurchase.event.toFixed(2)} (events) + ${costs.commitsPerPurchase.ticket.toFixed(2)} (tickets)` +
          `${costs.purchasesPerWalFlush === undefined ? '' : `, ${costs.purchasesPerWalFlush.toFixed(1)} purchases per WAL flush`}`,
      );
    }
  }
  const hooks = results.webhooks;
  if (hooks) {
    const side = (name: string, s: WebhookCost['without']) => `${name} ${number(s.medianPerSecond)} purchases/s, p99 ${ms(s.medianP99Ms)} (rounds ${s.perSecond.map((r) => number(r)).join(', ')})`;
    lines.push(`webhooks, medians of ${WEBHOOK_ROUNDS} interleaved ${WEBHOOK_ROUND_SECONDS} s rounds: ${side('without a receiver', hooks.without)}; ${side('with a hanging receiver subscribed', hooks.hanging)}`);
  }
  if (metrics) {
    const side = (name: string, s: StormSide) =>
      `${name} ${number(s.medianPerSecond)} purchases/s, p99 ${ms(s.medianP99Ms)}` +
      `${s.medianServicesCpuMsPerPurchase === undefined ? '' : `, services' CPU ${s.medianServicesCpuMsPerPurchase.toFixed(3)} ms per purchase`}` +
      ` (rounds ${s.perSecond.map((r) => number(r)).join(', ')})`;
    const cost = (ratio: number) => `${((1 - ratio) * 100).toFixed(1)}%`;
    const cpu = (name: string, more: StormSide, less: StormSide) =>
      more.medianServicesCpuMsPerPurchase === undefined || less.medianServicesCpuMsPerPurchase === undefined || less.medianServicesCpuMsPerPurchase === 0
        ? ''
        : `; services' CPU per purchase ${name} ${(more.medianServicesCpuMsPerPurchase / less.medianServicesCpuMsPerPurchase).toFixed(3)}`;
    lines.push(
      `metrics at ${metrics.connections} connections, no webhook subscriber, medians of ${metrics.on.perSecond.length} interleaved ${STORM_ROUND_SECONDS} s rounds, both services restarted before each: ` +
        `${side('METRICS=off', metrics.off)}; ${side('METRICS=on', metrics.on)}; purchases/s on/off ${metrics.onToOff.toFixed(3)}, cost ${cost(metrics.onToOff)}${cpu('on/off', metrics.on, metrics.off)}`,
    );
    lines.push(
      `scraping during the storm (METRICS=on, no restarts): ${side('no scraper', metrics.unscraped)}; ${side(`both /metrics every ${SCRAPE_INTERVAL_MS} ms`, metrics.scraped)}; ` +
        `purchases/s scraped/not ${metrics.scrapedToUnscraped.toFixed(3)}, cost ${cost(metrics.scrapedToUnscraped)}${cpu('scraped/not', metrics.scraped, metrics.unscraped)}; ` +
        `${number(metrics.scraped.scrapes)} scrapes, ${metrics.scraped.failedScrapes} failed, the slowest ${ms(metrics.scraped.slowestScrapeMs)}`,
    );
  }
  if (results.search) lines.push(`search matches ${number(results.search.matchingEvents)} events (X-Total-Count)`);
  lines.push('req/s counts 2xx answers; errors = non-2xx answers + socket errors + timeouts (for the race: answers other than 201 and 409, or none)');
  for (const crash of results.crashed) lines.push(`CRASHED ${crash.scenario}: ${crash.error}`);
  return lines.join('\n');
}

// ---- the run ------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const started = performance.now();
  const machine = machineFacts();
  const results: Results = {
    timestamp: new Date().toISOString(),
    store: OPTIONS.store,
    workers: OPTIONS.workers,
    quick: QUICK,
    scenarios: [...OPTIONS.scenarios],
    ...(OPTIONS.servicesFrom === undefined ? {} : { servicesFrom: OPTIONS.servicesFrom }),
    env: OPTIONS.env,
    profiled: OPTIONS.profile,
    machine,
    settings: {
      connections: CONNECTIONS,
      rounds: ROUNDS,
      stormRoundSeconds: STORM_ROUND_SECONDS,
      readRoundSeconds: READ_ROUND_SECONDS,
      readSeconds: READ_SECONDS,
      warmupSeconds: WARMUP_SECONDS,
      catalogueEvents: CATALOGUE_EVENTS,
      stormEvents: STORM_EVENTS,
      stormSeats: STORM_SEATS,
      raceSeats: RACE_SEATS,
      racePurchases: RACE_PURCHASES,
      raceConnections: RACE_CONNECTIONS,
    },
    targets: [],
    crashed: [],
  };
  log(`machine: ${machine.cpus} × ${machine.cpuModel}, Node ${machine.node}, ${(machine.totalMemoryBytes / 2 ** 30).toFixed(1)} GiB, ${machine.platform}, load ${machine.loadAverageAtStart.map((l) => l.toFixed(2)).join(' ')}`);

  const dir = mkdtempSync(join(os.tmpdir(), 'eventsync-bench-'));
  let databases: BenchDatabases | undefined;
  const dropDatabases = async () => {
    try {
      await databases?.drop();
    } catch (error) {
      process.stderr.write(`bench: could not drop the bench databases: ${error instanceof Error ? error.message : String(error)}\n`);
    }
  };
  let cleanedUp = false;
  const cleanUp = async () => {
    if (cleanedUp) return;
    cleanedUp = true;
    // A profiled service writes its profile on the way out, which takes a moment.
    await stopAllChildren(OPTIONS.profile ? 20_000 : 3000);
    rmSync(dir, { recursive: true, force: true });
    await dropDatabases();
  };
  const forceExit = () => {
    killAllChildrenNow();
    rmSync(dir, { recursive: true, force: true });
    // The databases still go (their services are gone), within a few seconds at most.
    const exit = () => process.exit(1);
    setTimeout(exit, 5000).unref();
    void dropDatabases().then(exit);
  };
  // Stopping early (over budget, or Ctrl-C): the children are stopped, so whatever runs fails fast,
  // and the scenarios not started yet are skipped.
  const halt = new AbortController();
  const stopEarly = (reason: string) => {
    if (halt.signal.aborted) return;
    log(reason);
    halt.abort(new Error(`stopped: ${reason}`));
    void stopAllChildren(2000);
  };
  let interrupted = false;
  const onSigint = () => {
    if (interrupted) forceExit();
    interrupted = true;
    stopEarly(`interrupted: stopping the services and removing the temporary files${OPTIONS.store === 'postgres' ? ' and databases' : ''}`);
    setTimeout(forceExit, 10_000).unref();
  };
  process.on('SIGINT', onSigint);
  const softLimit = setTimeout(() => stopEarly(`over the ${BUDGET_MS / 1000} s budget: stopping what runs and skipping the rest`), BUDGET_MS);
  const hardLimit = setTimeout(() => {
    process.stderr.write(`bench: still running after ${HARD_LIMIT_MS / 1000} s, exiting\n`);
    forceExit();
  }, HARD_LIMIT_MS);
  softLimit.unref();
  hardLimit.unref();

  const scenario = async <T>(name: string, body: () => Promise<T>): Promise<T | undefined> => {
    if (halt.signal.aborted) {
      results.crashed.push({ scenario: name, error: 'not run: stopped early' });
      return undefined;
    }
    const began = performance.now();
    log(`- ${name} ...`);
    try {
      const value = await body();
      log(`  done in ${((performance.now() - began) / 1000).toFixed(1)} s`);
      return value;
    } catch (error) {
      const reason: unknown = halt.signal.aborted ? halt.signal.reason : error;
      const message = reason instanceof Error ? reason.message : String(reason);
      results.crashed.push({ scenario: name, error: message });
      log(`  CRASHED: ${message}`);
      return undefined;
    }
  };

  const runServices = async (eventDbPath: string) => {
    if (OPTIONS.store === 'postgres') {
      databases = await scenario(`creating two databases on ${new URL(SERVER_URL).host}`, createBenchDatabases);
      if (!databases) {
        results.crashed.push({ scenario: 'service scenarios', error: 'not run: no databases' });
        return;
      }
    }
    const target: SeedTarget = databases ? { store: 'postgres', url: databases.eventUrl } : { store: 'sqlite', path: eventDbPath };
    const seeded = await scenario(`seeding ${number(CATALOGUE_EVENTS)} events through the store (${OPTIONS.store})`, () =>
      seedEventDatabase(target, { catalogueEvents: CATALOGUE_EVENTS, stormEvents: STORM_EVENTS, stormSeats: STORM_SEATS, raceSeats: RACE_SEATS, batch: 25_000, cacheMebibytes: 256 }, halt.signal),
    );
    results.seeding = seeded;
    if (seeded) log(`  ${number(seeded.catalogue.count)} events (${number(seeded.catalogue.zephyr)} mention "${SEARCH_WORD}") + ${seeded.stormEventIds.length} storm + 1 race in ${seeded.seconds.toFixed(1)} s`);

    const services = seeded
      ? await scenario('starting event-service and ticket-service', async () => {
          const serviceToken = randomBytes(32).toString('hex');
          const env: Record<string, string> = {
            NODE_ENV: 'production',
            HOST: '127.0.0.1',
            LOG_LEVEL: 'warn',
            SERVICE_TOKEN: serviceToken,
            EVENT_DB_PATH: eventDbPath,
            TICKET_DB_PATH: join(dir, 'ticket_data.db'),
            EVENT_SERVICE_PORT: '0',
            TICKET_SERVICE_PORT: '0',
            RESERVATION_TTL_SECONDS: '3600',
            WORKERS: String(OPTIONS.workers),
            ...(databases ? { EVENT_DATABASE_URL: databases.eventUrl, TICKET_DATABASE_URL: databases.ticketUrl } : {}),
            ...OPTIONS.env,
          };
          const launch = (name: string) => ({
            name,
            script: `${name}/server.js`,
            ...(OPTIONS.servicesFrom === undefined ? {} : { root: OPTIONS.servicesFrom }),
            nodeArgs: OPTIONS.profile ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`, `--cpu-prof-name=${name}.cpuprofile`] : [],
            reportListening: true,
          });
          if (OPTIONS.profile) rmSync(PROFILE_DIR, { recursive: true, force: true });
          const start = async (extra: Record<string, string>, ports = { event: '0', ticket: '0' }) => {
            const event = await startServer({ ...launch('event-service'), env: { ...env, ...extra, EVENT_SERVICE_PORT: ports.event } });
            const ticket = await startServer({
              ...launch('ticket-service'),
              env: { ...env, ...extra, EVENT_SERVICE_URL: event.url, EVENT_SERVICE_PORT: String(event.port), TICKET_SERVICE_PORT: ports.ticket },
            });
            const probe = ticketServiceClient({ baseUrl: ticket.url, timeoutMs: 10_000 });
            try {
              const ready = await probe.call('getReady', {});
              if (!ready.ok) throw new Error(`ticket-service is not ready (HTTP ${ready.status}): ${ready.problem.detail ?? ready.problem.title}`);
            } finally {
              await probe.close();
            }
            return { event, ticket };
          };
          const { event, ticket } = await start({});
          const restart = async (extra: Record<string, string>) => {
            await stopServer(ticket);
            await stopServer(event);
            const again = await start(extra, { event: String(event.port), ticket: String(ticket.port) });
            // The same objects, so that everything holding them follows the restart.
            Object.assign(event, again.event);
            Object.assign(ticket, again.ticket);
          };
          return { event, ticket, serviceToken, databases: databases?.names, restart };
        })
      : undefined;

    if (seeded && services) {
      await runServiceScenarios(results, seeded, services, scenario);
      for (const server of [services.event, services.ticket]) {
        const { exitCode, signalCode } = server.process;
        if (exitCode !== null || signalCode !== null) {
          results.crashed.push({ scenario: server.name, error: `exited (${signalCode ?? exitCode}) during the run:\n${server.output.join('').slice(-2000)}` });
        }
      }
    } else {
      results.crashed.push({ scenario: 'service scenarios', error: 'not run: seeding or start-up failed' });
    }
  };

  try {
    await runServices(join(dir, 'event_data.db'));
  } finally {
    await cleanUp();
    clearTimeout(softLimit);
    clearTimeout(hardLimit);
    process.off('SIGINT', onSigint);
  }
  return finish(results, started, interrupted);
}

function finish(results: Results, started: number, interrupted: boolean): number {
  // An interrupted run measured nothing worth keeping: the last results stay as they were.
  if (interrupted) return 130;

  evaluateTargets(results);
  results.loadAverageAtEnd = os.loadavg();
  results.seconds = (performance.now() - started) / 1000;
  const sellOut = results.sellOut;
  const raceFailed = OPTIONS.scenarios.has('race') && (!sellOut || sellOut.oversold > 0 || sellOut.leaked > 0 || !sellOut.countersConsistent);
  const failed = results.crashed.length > 0 || raceFailed;
  results.exitCode = failed ? 1 : 0;

  log('');
  log(report(results));
  const folder = join(repoRoot, 'bench', 'results');
  mkdirSync(folder, { recursive: true });
  const file = OPTIONS.out ?? join(folder, QUICK ? 'quick.json' : 'latest.json');
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  if (OPTIONS.profile) log(`\n${summariseProfiles(PROFILE_DIR)}`);
  log(`\n${relative(process.cwd(), file) || file} written; ${results.seconds.toFixed(0)} s in all`);
  return results.exitCode;
}

type Scenario = <T>(name: string, body: () => Promise<T>) => Promise<T | undefined>;

/** The bare two-hop Fastify pair (bench/reference-server.ts): the ceiling the storm is compared with. */
async function startReference(): Promise<{ url: string; stop: () => Promise<void> }> {
  const back = await startServer({ name: 'reference back', script: 'bench/reference-server.js', args: ['back'], env: { NODE_ENV: 'production' } });
  try {
    const front = await startServer({ name: 'reference front', script: 'bench/reference-server.js', args: ['front', back.url], env: { NODE_ENV: 'production' } });
    return {
      url: front.url,
      stop: async () => {
        await stopServer(front);
        await stopServer(back);
      },
    };
  } catch (error) {
    await stopServer(back);
    throw error;
  }
}

/** Several runs as one: rates over the total time, percentiles weighted by answers, the worst maximum. */
function combine(runs: CannonResult[]): CannonResult {
  const [first, ...rest] = runs;
  if (!first || rest.length === 0) return first as CannonResult;
  const sum = (pick: (r: CannonResult) => number) => runs.reduce((total, r) => total + pick(r), 0);
  const seconds = sum((r) => r.durationSeconds);
  const answers = sum((r) => r.completed) || 1;
  const weighted = (pick: (r: CannonResult) => number) => sum((r) => pick(r) * r.completed) / answers;
  const statusCodes: Record<string, number> = {};
  for (const run of runs) for (const [code, count] of Object.entries(run.statusCodes)) statusCodes[code] = (statusCodes[code] ?? 0) + count;
  return {
    ...first,
    durationSeconds: seconds,
    completed: sum((r) => r.completed),
    ok: sum((r) => r.ok),
    non2xx: sum((r) => r.non2xx),
    errors: sum((r) => r.errors),
    timeouts: sum((r) => r.timeouts),
    statusCodes,
    requestsPerSecond: sum((r) => r.completed) / seconds,
    okPerSecond: sum((r) => r.ok) / seconds,
    latencyMs: {
      p50: weighted((r) => r.latencyMs.p50),
      p90: weighted((r) => r.latencyMs.p90),
      p99: weighted((r) => r.latencyMs.p99),
      max: Math.max(...runs.map((r) => r.latencyMs.max)),
      average: weighted((r) => r.latencyMs.average),
    },
  };
}

/** How many tickets ticket-service holds (X-Total-Count of a one-item page; the bench runs without ADMIN_TOKEN). */
async function runServiceScenarios(
  results: Results,
  seeded: SeededEvents,
  services: Services,
  scenario: Scenario,
): Promise<void> {
  const { ticket } = services;
  const subscriber = OPTIONS.withoutSubscriber ? undefined : await startWebhookSubscriber(ticket.url, 'bench: a receiver that answers at once');
  try {
    if (OPTIONS.scenarios.has('storm')) {
      const storms = await scenario(`purchase storms at ${STORM_CONNECTIONS.join(' and ')} connections: ${ROUNDS} rounds of ${STORM_ROUND_SECONDS} s each, interleaved with the reference${OPTIONS.store === 'sqlite' ? ' and the floor' : ''}, after a ${STORM_WARMUP_SECONDS} s warm-up`, () => runStorms(services, seeded, subscriber));
      if (storms) results.storms = storms;
    }
    await runOtherScenarios(results, seeded, services, scenario);
  } finally {
    if (subscriber) results.webhookSubscriber = { deliveriesReceived: await subscriber.stop() };
  }
  if (OPTIONS.scenarios.has('webhooks')) results.webhooks = await scenario(`purchases without and with a hanging webhook receiver: ${WEBHOOK_ROUNDS} interleaved rounds of ${WEBHOOK_ROUND_SECONDS} s each`, () => measureWebhookCost(ticket.url, seeded.stormEventIds));
  // Last: it restarts the services.
  if (OPTIONS.scenarios.has('metrics')) {
    results.metrics = await scenario(
      `what metrics cost purchases at ${METRICS_CONNECTIONS} connections: ${ROUNDS} rounds of ${STORM_ROUND_SECONDS} s with METRICS on and off, interleaved, then ${ROUNDS} without and with /metrics scraped every ${SCRAPE_INTERVAL_MS} ms`,
      () => measureMetricsCost(services, seeded.stormEventIds),
    );
  }
}

type Services = {
  event: RunningServer;
  ticket: RunningServer;
  serviceToken: string;
  databases: { event: string; ticket: string } | undefined;
  /** Stops both services and starts them again on the same ports and databases, with `extra` over their configuration. */
  restart: (extra: Record<string, string>) => Promise<void>;
};

/**
 * Waits until a webhook receiver has taken `target()` deliveries (one per purchase of the storms), or
 * took none for 10 s, or 60 s passed; the seconds it waited. Deliveries fall behind purchases during
 * a storm (they run beside the purchases and yield to them); caught up, the next run does not share
 * the machine with the last one's deliveries, and the last one's CPU includes them.
 */
async function deliveriesCaughtUp(received: () => number, target: () => number | Promise<number>): Promise<number> {
  const started = performance.now();
  let last = received();
  let lastProgress = started;
  const goal = await target();
  while (received() < goal && performance.now() - started < 60_000 && performance.now() - lastProgress < 10_000) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    if (received() > last) {
      last = received();
      lastProgress = performance.now();
    }
  }
  return (performance.now() - started) / 1000;
}

/**
 * The storm at each connection count, in rounds: the reference at those connections, then the storm
 * right after it, so that both see the machine in the same minute. CPU is accounted per storm run, its
 * deliveries included.
 */
async function runStorms(services: Services, seeded: SeededEvents, subscriber: { received: () => number } | undefined): Promise<StormSeries[]> {
  const { event, ticket } = services;
  const reference = await startReference();
  // The floor (SQLite: what the services' own store is measured against), with a subscriber when the services have one.
  const floorDirectory = OPTIONS.store === 'sqlite' ? mkdtempSync(join(os.tmpdir(), 'eventsync-bench-floor-')) : undefined;
  type FloorRun = { run: CannonResult; purchases: number; account: CpuAccount | undefined; caughtUpSeconds: number };
  const runs = new Map<number, Array<{ reference: CannonResult; storm: CannonResult; purchases: number; account: CpuAccount | undefined; delivery?: { deliveriesPerSecond: number; caughtUpSeconds: number }; floor?: FloorRun; before?: ServerCounters; after?: ServerCounters }>>();
  let floor: Floor | undefined;
  try {
    if (floorDirectory) floor = await startFloor({ directory: floorDirectory, delivery: !OPTIONS.withoutSubscriber });
    const warmups = [cannon(ticket.url, STORM_WARMUP_SECONDS, { kind: 'purchase', path: '/tickets', eventIds: seeded.stormEventIds }, STORM_CONNECTIONS[0])];
    if (floor) warmups.push(cannon(floor.url, STORM_WARMUP_SECONDS, { kind: 'purchase', path: '/tickets', eventIds: floor.eventIds }, STORM_CONNECTIONS[0]));
    for (const spec of warmups) await runWorker<CannonResult>(spec, workerTimeout(spec));
    const started = floor;
    const floorCaughtUp = async () => (started ? deliveriesCaughtUp(() => started.delivered(), () => started.tickets()) : 0);
    const stormCaughtUp = async () => (subscriber ? deliveriesCaughtUp(subscriber.received, () => ticketCount(ticket.url)) : 0);
    await floorCaughtUp();
    await stormCaughtUp();
    for (let round = 0; round < ROUNDS; round += 1) {
      for (const connections of STORM_CONNECTIONS) {
        const referenceSpec = cannon(reference.url, STORM_ROUND_SECONDS, { kind: 'purchase', path: '/tickets', eventIds: Array.from({ length: STORM_EVENTS }, (_, i) => i + 1) }, connections);
        const referenceRun = await runWorker<CannonResult>(referenceSpec, workerTimeout(referenceSpec));
        let floorRun: FloorRun | undefined;
        if (floor) {
          const floorSpec = cannon(floor.url, STORM_ROUND_SECONDS, { kind: 'purchase', path: '/tickets', eventIds: floor.eventIds }, connections);
          const floorBefore = floor.tickets();
          const floorCpu = startCpuAccounting({ services: { 'event-service': floor.back.process.pid, 'ticket-service': floor.front.process.pid } });
          const run = await runWorker<CannonResult>(floorSpec, workerTimeout(floorSpec));
          const purchases = floor.tickets() - floorBefore;
          const caughtUpSeconds = await floorCaughtUp();
          floorRun = { run, account: floorCpu.end(run.cpuSeconds), purchases, caughtUpSeconds };
        }
        const spec = cannon(ticket.url, STORM_ROUND_SECONDS, { kind: 'purchase', path: '/tickets', eventIds: seeded.stormEventIds }, connections);
        const names = services.databases;
        const before = names ? await readServerCounters(SERVER_URL, names) : undefined;
        const ticketsBefore = await ticketCount(ticket.url);
        const deliveredBefore = subscriber?.received() ?? 0;
        const cpu = startCpuAccounting({ services: { 'event-service': event.process.pid, 'ticket-service': ticket.process.pid }, ...(names ? { databases: names } : {}) });
        const storm = await runWorker<CannonResult>(spec, workerTimeout(spec));
        // Every ticket the window made (the warm-up's too, which the CPU window also covers).
        const purchases = (await ticketCount(ticket.url)) - ticketsBefore;
        const deliveredInWindow = subscriber ? subscriber.received() - deliveredBefore : 0;
        const caughtUpSeconds = await stormCaughtUp();
        // The CPU of the purchases and of their deliveries.
        const account = cpu.end(storm.cpuSeconds);
        let after: ServerCounters | undefined;
        if (names) {
          // pg_stat_database is updated when a backend's statistics are flushed (at most a second late).
          await new Promise((resolve) => setTimeout(resolve, 1500));
          after = await readServerCounters(SERVER_URL, names);
        }
        const delivery = subscriber ? { deliveriesPerSecond: deliveredInWindow / (STORM_ROUND_SECONDS + WARMUP_SECONDS), caughtUpSeconds } : undefined;
        log(
          `  round ${round + 1}, ${connections} connections: reference ${number(referenceRun.okPerSecond)} req/s, ` +
            `${floorRun ? `floor ${number(floorRun.run.okPerSecond)} purchases/s (p99 ${ms(floorRun.run.latencyMs.p99)}; deliveries caught up ${floorRun.caughtUpSeconds.toFixed(1)} s after), ` : ''}` +
            `storm ${number(storm.okPerSecond)} purchases/s (p99 ${ms(storm.latencyMs.p99)}${delivery ? `; ${number(delivery.deliveriesPerSecond)} deliveries/s during it, caught up ${delivery.caughtUpSeconds.toFixed(1)} s after` : ''})`,
        );
        runs.set(connections, [...(runs.get(connections) ?? []), { reference: referenceRun, storm, purchases, account, ...(delivery ? { delivery } : {}), ...(floorRun ? { floor: floorRun } : {}), ...(before ? { before } : {}), ...(after ? { after } : {}) }]);
      }
    }
  } finally {
    await reference.stop();
    await floor?.stop();
    if (floorDirectory) rmSync(floorDirectory, { recursive: true, force: true });
  }
  return [...runs].map(([connections, series]) => {
    const rounds = series.map((run) => ({
      referencePerSecond: run.reference.okPerSecond,
      stormPerSecond: run.storm.okPerSecond,
      stormP99Ms: run.storm.latencyMs.p99,
      ratio: run.reference.okPerSecond > 0 ? run.storm.okPerSecond / run.reference.okPerSecond : 0,
      ...(run.delivery ? { stormDeliveriesPerSecond: run.delivery.deliveriesPerSecond, stormDeliveriesCaughtUpSeconds: run.delivery.caughtUpSeconds } : {}),
      ...(run.floor
        ? {
            floorDeliveriesCaughtUpSeconds: run.floor.caughtUpSeconds,
            floorPerSecond: run.floor.run.okPerSecond,
            floorRatio: run.reference.okPerSecond > 0 ? run.floor.run.okPerSecond / run.reference.okPerSecond : 0,
            stormToFloor: run.floor.run.okPerSecond > 0 ? run.storm.okPerSecond / run.floor.run.okPerSecond : 0,
          }
        : {}),
    }));
    const floorRuns = series.flatMap((run) => (run.floor ? [run.floor] : []));
    const floor =
      floorRuns.length === series.length && floorRuns.length > 0
        ? {
            floor: {
              ...combine(floorRuns.map((run) => run.run)),
              costs: purchaseCosts(
                floorRuns.reduce((total, run) => total + run.purchases, 0),
                sumAccounts(floorRuns.map((run) => run.account)),
                os.cpus().length,
              ),
            },
            medianFloorRatio: median(rounds.map((r) => r.floorRatio ?? 0)),
            medianStormToFloor: median(rounds.map((r) => r.stormToFloor ?? 0)),
          }
        : {};
    // Only the storm runs' transactions and flushes: the reference touches no database.
    const counted = series.every((run) => run.before && run.after)
      ? series.reduce((total, run) => addCounters(total, counterDelta(run.before as ServerCounters, run.after as ServerCounters)), NO_COUNTERS)
      : undefined;
    const purchases = series.reduce((total, run) => total + run.purchases, 0);
    return {
      connections,
      rounds,
      reference: combine(series.map((run) => run.reference)),
      storm: { ...combine(series.map((run) => run.storm)), costs: purchaseCosts(purchases, sumAccounts(series.map((run) => run.account)), os.cpus().length, counted) },
      medianRatio: median(rounds.map((r) => r.ratio)),
      medianP99Ms: median(rounds.map((r) => r.stormP99Ms)),
      ...floor,
    };
  });
}

/** GET /events/{id} against the same service's /health, in interleaved rounds. */
async function runReads(services: Services, seeded: SeededEvents): Promise<ReadSeries> {
  const url = services.event.url;
  const health: CannonResult[] = [];
  const byId: CannonResult[] = [];
  for (let round = 0; round < ROUNDS; round += 1) {
    const healthSpec = cannon(url, READ_ROUND_SECONDS, { kind: 'get', path: '/health' });
    health.push(await runWorker<CannonResult>(healthSpec, workerTimeout(healthSpec)));
    const byIdSpec = cannon(url, READ_ROUND_SECONDS, { kind: 'get-by-id', pathPrefix: '/events/', minId: seeded.catalogue.firstId, maxId: seeded.catalogue.lastId });
    byId.push(await runWorker<CannonResult>(byIdSpec, workerTimeout(byIdSpec)));
  }
  const rounds = health.map((h, i) => {
    const read = byId[i]?.okPerSecond ?? 0;
    return { healthPerSecond: h.okPerSecond, byIdPerSecond: read, ratio: h.okPerSecond > 0 ? read / h.okPerSecond : 0 };
  });
  return {
    rounds,
    health: combine(health),
    byId: combine(byId),
    medianRatio: median(rounds.map((r) => r.ratio)),
    medianByIdPerSecond: median(rounds.map((r) => r.byIdPerSecond)),
  };
}

async function runOtherScenarios(results: Results, seeded: SeededEvents, services: Services, scenario: Scenario): Promise<void> {
  const { event, ticket } = services;
  if (OPTIONS.scenarios.has('hot')) results.hotEvent = await scenario(`one hot event: ${CONNECTIONS} connections buying seats of one event, ${READ_SECONDS} s`, () => {
    const spec = cannon(ticket.url, READ_SECONDS, { kind: 'purchase', path: '/tickets', eventIds: seeded.stormEventIds.slice(0, 1) });
    return runWorker<CannonResult>(spec, workerTimeout(spec));
  });

  if (OPTIONS.scenarios.has('race')) results.sellOut = await scenario(`sell-out race: ${RACE_PURCHASES} purchases for ${RACE_SEATS} seats, then the audit`, async () => {
    const spec: BurstSpec = {
      kind: 'burst',
      url: ticket.url,
      path: '/tickets',
      eventId: seeded.raceEventId,
      requests: RACE_PURCHASES,
      connections: RACE_CONNECTIONS,
      timeoutMs: 20_000,
    };
    const burst = await runWorker<BurstResult>(spec, 50_000);
    const events = eventServiceClient({ baseUrl: event.url, token: services.serviceToken, timeoutMs: 30_000 });
    const tickets = ticketServiceClient({ baseUrl: ticket.url, timeoutMs: 30_000 });
    try {
      return await checkSellOut(events, tickets, seeded.raceEventId, RACE_SEATS, burst);
    } finally {
      await Promise.all([events.close(), tickets.close()]);
    }
  });

  if (OPTIONS.scenarios.has('by-id')) {
    const reads = await scenario(`GET /events/{id} and GET /health: ${CONNECTIONS} connections, ${ROUNDS} interleaved rounds of ${READ_ROUND_SECONDS} s each`, () => runReads(services, seeded));
    if (reads) results.reads = reads;
  }

  const search = !OPTIONS.scenarios.has('search') ? undefined : await scenario(`GET /events?q=${SEARCH_WORD}&limit=20: ${CONNECTIONS} connections, ${READ_SECONDS} s`, async () => {
    const events = eventServiceClient({ baseUrl: event.url, timeoutMs: 10_000 });
    let matchingEvents: number;
    try {
      const probe = await events.call('listEvents', { query: { q: SEARCH_WORD, limit: 20 } });
      if (!probe.ok) throw new Error(`the search answered HTTP ${probe.status}`);
      matchingEvents = Number(probe.headers['x-total-count']);
      if (probe.body.length === 0) throw new Error(`the search for "${SEARCH_WORD}" found nothing: the benchmark would measure an empty answer`);
    } finally {
      await events.close();
    }
    const spec = cannon(event.url, READ_SECONDS, { kind: 'get', path: `/events?q=${SEARCH_WORD}&limit=20` });
    return { ...(await runWorker<CannonResult>(spec, workerTimeout(spec))), matchingEvents };
  });
  if (search) results.search = search;
}

interface WebhookCost {
  without: { perSecond: number[]; medianPerSecond: number; medianP99Ms: number };
  hanging: { perSecond: number[]; medianPerSecond: number; medianP99Ms: number };
}

/**
 * What a receiver that never answers costs purchases: rounds without and with it subscribed (to
 * every event type), interleaved so that the machine's drift falls on both sides alike.
 */
async function measureWebhookCost(ticketUrl: string, eventIds: number[]): Promise<WebhookCost> {
  const hanging = createServer(() => undefined);
  await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve));
  const receiverUrl = `http://127.0.0.1:${(hanging.address() as AddressInfo).port}/hook`;
  const tickets = ticketServiceClient({ baseUrl: ticketUrl, timeoutMs: 10_000 });
  const rounds = { without: [] as CannonResult[], hanging: [] as CannonResult[] };
  try {
    for (let round = 0; round < WEBHOOK_ROUNDS * 2; round += 1) {
      const subscribed = round % 2 === 1;
      let webhookId: number | undefined;
      if (subscribed) {
        const created = await tickets.call('createWebhook', { body: { url: receiverUrl, events: ['*'], description: 'bench: a receiver that never answers' } });
        if (!created.ok) throw new Error(`could not subscribe the hanging receiver (HTTP ${created.status}): ${created.problem.detail ?? created.problem.title}`);
        webhookId = created.body.id;
      }
      const spec = { ...cannon(ticketUrl, WEBHOOK_ROUND_SECONDS, { kind: 'purchase', path: '/tickets', eventIds }), warmupSeconds: 1 };
      const result = await runWorker<CannonResult>(spec, workerTimeout(spec));
      (subscribed ? rounds.hanging : rounds.without).push(result);
      if (webhookId !== undefined) await tickets.call('deleteWebhook', { path: { webhook_id: webhookId } });
    }
  } finally {
    await tickets.close();
    hanging.closeAllConnections();
    hanging.close();
  }
  const side = (runs: CannonResult[]) => ({ perSecond: runs.map((r) => r.okPerSecond), medianPerSecond: median(runs.map((r) => r.okPerSecond)), medianP99Ms: median(runs.map((r) => r.latencyMs.p99)) });
  return { without: side(rounds.without), hanging: side(rounds.hanging) };
}

/** One storm round: the load generator's result, and what the two services' CPU cost per purchase (Linux only). */
interface StormRound {
  run: CannonResult;
  servicesCpuMsPerPurchase: number | undefined;
}

interface StormSide {
  perSecond: number[];
  p99Ms: number[];
  /** CPU milliseconds of event-service and ticket-service together per purchase: less at the mercy of the machine's drift than the rates. */
  servicesCpuMsPerPurchase: number[];
  medianPerSecond: number;
  medianP99Ms: number;
  medianServicesCpuMsPerPurchase: number | undefined;
  /** The side's rounds as one (rates over their total time, percentiles weighted by answers). */
  all: CannonResult;
}

interface MetricsCost {
  connections: number;
  /** Each round after a restart of both services with METRICS=off, or on: interleaved (on, off, on, off …). */
  off: StormSide;
  on: StormSide;
  /** Median purchases/s with metrics on over with them off: 1 − this is what metrics cost. */
  onToOff: number;
  /** METRICS=on, without restarts: rounds without a scraper and with one, interleaved. */
  unscraped: StormSide;
  scraped: StormSide & { scrapes: number; failedScrapes: number; slowestScrapeMs: number };
  /** Median purchases/s while scraped over while not. */
  scrapedToUnscraped: number;
}

function stormSide(rounds: StormRound[]): StormSide {
  const runs = rounds.map((round) => round.run);
  const cpu = rounds.flatMap((round) => (round.servicesCpuMsPerPurchase === undefined ? [] : [round.servicesCpuMsPerPurchase]));
  return {
    perSecond: runs.map((r) => r.okPerSecond),
    p99Ms: runs.map((r) => r.latencyMs.p99),
    servicesCpuMsPerPurchase: cpu,
    medianPerSecond: median(runs.map((r) => r.okPerSecond)),
    medianP99Ms: median(runs.map((r) => r.latencyMs.p99)),
    medianServicesCpuMsPerPurchase: cpu.length === rounds.length ? median(cpu) : undefined,
    all: combine(runs),
  };
}

/** Scrapes both services' /metrics every `intervalMs` (both at once, the next once both answered) until stopped. */
function startScraper(urls: { event: string; ticket: string }, intervalMs: number): { stop: () => Promise<{ scrapes: number; failed: number; slowestMs: number }> } {
  const events = eventServiceClient({ baseUrl: urls.event, timeoutMs: 10_000 });
  const tickets = ticketServiceClient({ baseUrl: urls.ticket, timeoutMs: 10_000 });
  const tally = { scrapes: 0, failed: 0, slowestMs: 0 };
  let stopped = false;
  const scrape = async (call: () => Promise<{ ok: boolean }>) => {
    const began = performance.now();
    const answer = await call().catch(() => ({ ok: false }));
    tally.scrapes += 1;
    if (!answer.ok) tally.failed += 1;
    tally.slowestMs = Math.max(tally.slowestMs, performance.now() - began);
  };
  const loop = (async () => {
    while (!stopped) {
      const began = performance.now();
      await Promise.all([scrape(() => events.call('getMetrics', {})), scrape(() => tickets.call('getMetrics', {}))]);
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, intervalMs - (performance.now() - began))));
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await loop;
      await Promise.all([events.close(), tickets.close()]);
      return tally;
    },
  };
}

/**
 * What metrics cost the purchase path. First storms with METRICS=on and METRICS=off in interleaved
 * rounds, both services restarted (same ports, same databases) before every round, so that each
 * round starts alike whatever its setting. Then, METRICS=on, storms without and with a scraper
 * reading both services' /metrics every 250 ms, interleaved. The machine drifts from minute to
 * minute: the medians of each side are compared. It runs after the webhook subscriber is gone: on
 * the cheaper purchase path metrics are a larger share of the cost.
 */
async function measureMetricsCost(services: Services, eventIds: number[]): Promise<MetricsCost> {
  const storm = async (): Promise<StormRound> => {
    const spec = cannon(services.ticket.url, STORM_ROUND_SECONDS, { kind: 'purchase', path: '/tickets', eventIds }, METRICS_CONNECTIONS);
    const ticketsBefore = await ticketCount(services.ticket.url);
    const cpu = startCpuAccounting({ services: { 'event-service': services.event.process.pid, 'ticket-service': services.ticket.process.pid } });
    const run = await runWorker<CannonResult>(spec, workerTimeout(spec));
    const account = cpu.end(run.cpuSeconds);
    // Every ticket the window made (the warm-up's too, which the CPU window also covers).
    const purchases = (await ticketCount(services.ticket.url)) - ticketsBefore;
    const servicesSeconds = account === undefined ? undefined : (account.cpuSeconds['event-service'] ?? 0) + (account.cpuSeconds['ticket-service'] ?? 0);
    return { run, servicesCpuMsPerPurchase: servicesSeconds === undefined || purchases === 0 ? undefined : (servicesSeconds * 1000) / purchases };
  };
  const described = (round: StormRound) =>
    `${number(round.run.okPerSecond)} purchases/s (p99 ${ms(round.run.latencyMs.p99)}${round.servicesCpuMsPerPurchase === undefined ? '' : `, services' CPU ${round.servicesCpuMsPerPurchase.toFixed(3)} ms per purchase`})`;
  const settings = { on: [] as StormRound[], off: [] as StormRound[] };
  for (let round = 0; round < ROUNDS * 2; round += 1) {
    const setting = round % 2 === 0 ? 'on' : 'off';
    await services.restart({ METRICS: setting });
    const result = await storm();
    settings[setting].push(result);
    log(`  round ${Math.floor(round / 2) + 1}, METRICS=${setting}: ${described(result)}`);
  }
  await services.restart({ METRICS: 'on' });
  const scraping = { without: [] as StormRound[], with: [] as StormRound[] };
  const tally = { scrapes: 0, failed: 0, slowestMs: 0 };
  for (let round = 0; round < ROUNDS * 2; round += 1) {
    const scraped = round % 2 === 1;
    const scraper = scraped ? startScraper({ event: services.event.url, ticket: services.ticket.url }, SCRAPE_INTERVAL_MS) : undefined;
    const result = await storm().finally(async () => {
      const done = await scraper?.stop();
      if (done) Object.assign(tally, { scrapes: tally.scrapes + done.scrapes, failed: tally.failed + done.failed, slowestMs: Math.max(tally.slowestMs, done.slowestMs) });
    });
    (scraped ? scraping.with : scraping.without).push(result);
    log(`  round ${Math.floor(round / 2) + 1}, ${scraped ? `/metrics scraped every ${SCRAPE_INTERVAL_MS} ms` : 'no scraper'}: ${described(result)}`);
  }
  const [off, on, unscraped, scrapedSide] = [stormSide(settings.off), stormSide(settings.on), stormSide(scraping.without), stormSide(scraping.with)];
  return {
    connections: METRICS_CONNECTIONS,
    off,
    on,
    onToOff: off.medianPerSecond > 0 ? on.medianPerSecond / off.medianPerSecond : 0,
    unscraped,
    scraped: { ...scrapedSide, scrapes: tally.scrapes, failedScrapes: tally.failed, slowestScrapeMs: tally.slowestMs },
    scrapedToUnscraped: unscraped.medianPerSecond > 0 ? scrapedSide.medianPerSecond / unscraped.medianPerSecond : 0,
  };
}

function evaluateTargets(results: Results): void {
  const ran = OPTIONS.scenarios;
  if (ran.has('storm')) {
    for (const connections of STORM_CONNECTIONS) {
      const series = results.storms?.find((s) => s.connections === connections);
      const ratio = TARGETS.stormRatio[connections] ?? 0;
      results.targets.push({
        scenario: `purchase storm at ${connections}`,
        target: `ratio ≥ ${ratio}, p99 < ${TARGETS.stormP99Ms} ms`,
        met: series !== undefined && series.medianRatio >= ratio && series.medianP99Ms < TARGETS.stormP99Ms,
      });
    }
  }
  const sellOut = results.sellOut;
  if (ran.has('race')) results.targets.push({
    scenario: 'sell-out race',
    target: 'oversold 0, leaked 0',
    met: sellOut !== undefined && sellOut.oversold === 0 && sellOut.leaked === 0 && sellOut.countersConsistent,
  });
  if (ran.has('by-id')) results.targets.push({
    scenario: 'GET /events/{id}',
    target: `≥ ${TARGETS.byIdRatioToHealth} of /health, ≥ ${number(TARGETS.byIdRequestsPerSecond)} req/s`,
    met: results.reads !== undefined && results.reads.medianRatio >= TARGETS.byIdRatioToHealth && results.reads.medianByIdPerSecond >= TARGETS.byIdRequestsPerSecond,
  });
  if (ran.has('search')) results.targets.push({
    scenario: 'search',
    target: `p99 < ${TARGETS.searchP99Ms} ms`,
    met: results.search !== undefined && results.search.latencyMs.p99 < TARGETS.searchP99Ms,
  });
  const metrics = results.metrics;
  const cost = `cost ≤ ${TARGETS.metricsCost * 100}%`;
  if (ran.has('metrics')) {
    results.targets.push({ scenario: 'metrics on', target: cost, met: metrics !== undefined && metrics.onToOff >= 1 - TARGETS.metricsCost });
    results.targets.push({
      scenario: 'metrics scraped',
      target: `${cost}, every scrape 200`,
      met: metrics !== undefined && metrics.scrapedToUnscraped >= 1 - TARGETS.metricsCost && metrics.scraped.failedScrapes === 0,
    });
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error('bench:', error);
    process.exit(1);
  },
);
