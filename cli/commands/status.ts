/**
 * `eventsync status`: both services' health, readiness and key figures (read from their `/metrics`),
 * on one screen or as one JSON document. Exit 0 healthy, 1 degraded (not ready, an outbox release or a
 * webhook delivery waiting over a minute, a webhook endpoint disabled for failing, metrics unreadable),
 * 3 a service unreachable.
 */
import { Command } from 'commander';
import { ServiceUnreachableError, type Problem } from '../../openapi/client.js';
import { metricValue, parseMetrics, type Sample } from '../../platform/metrics-text.js';
import { cliContext } from '../context.js';
import { EXIT, count, paint, printJson } from '../output.js';

/** An outbox release older than this means event-service has not taken releases for a while. */
const OUTBOX_AGE_LIMIT_SECONDS = 60;
/**
 * A pending webhook delivery older than this means an endpoint has failed for a while (backoff from
 * WEBHOOK_RETRY_BASE_SECONDS), is disabled with deliveries waiting, or the dispatcher is behind.
 */
const WEBHOOK_AGE_LIMIT_SECONDS = 60;

type Figures = Record<string, number>;
type ServiceName = 'event-service' | 'ticket-service';
export type Verdict = 'healthy' | 'degraded' | 'unreachable';

export interface ServiceStatus {
  url: string;
  reachable: boolean;
  ready: boolean;
  /** Why it is not ready, or why its metrics could not be read. */
  problems: string[];
  figures: Figures;
}

/** The three calls status makes to a service (the same operations on both). */
export interface Probes {
  url: string;
  health: () => Promise<unknown>;
  ready: () => Promise<{ ok: boolean; status: number; problem?: Problem }>;
  metrics: () => Promise<{ ok: boolean; status: number; body?: unknown; problem?: Problem }>;
}

/** Why `/metrics` gave nothing: the token to send when refused, else what the service said (metrics off, say). */
function metricsRefusal(answer: { status: number; problem?: Problem }): string {
  if (answer.status === 401 || answer.status === 403) return `HTTP ${answer.status}: send --admin-token`;
  return answer.problem?.detail ?? `HTTP ${answer.status}`;
}

/**
 * What each service's screen shows, read from its metrics.
 */
const FIGURES: Record<ServiceName, Array<[string, string, Record<string, string>?]>> = {
  'event-service': [
    ['events', 'eventsync_events'],
    ['seats_total', 'eventsync_seats', { state: 'total' }],
    ['seats_available', 'eventsync_seats', { state: 'available' }],
    ['seats_held', 'eventsync_seats', { state: 'held' }],
    ['seats_sold', 'eventsync_seats', { state: 'sold' }],
    ['seats_manual', 'eventsync_seats', { state: 'manual' }],
  ],
  'ticket-service': [
    ['tickets_reserved', 'eventsync_tickets', { status: 'RESERVED' }],
    ['tickets_confirmed', 'eventsync_tickets', { status: 'CONFIRMED' }],
    ['tickets_cancelled', 'eventsync_tickets', { status: 'CANCELLED' }],
    ['outbox_pending', 'eventsync_outbox_pending'],
    ['outbox_oldest_age_seconds', 'eventsync_outbox_oldest_pending_age_seconds'],
    ['reconciler_abandoned_purchases', 'eventsync_reconciler_actions_total', { action: 'abandoned_purchase' }],
    ['reconciler_released_orphan_holds', 'eventsync_reconciler_actions_total', { action: 'released_orphan_hold' }],
    ['reconciler_completed_confirms', 'eventsync_reconciler_actions_total', { action: 'completed_confirm' }],
    ['sweeper_cancellations', 'eventsync_sweeper_cancellations_total'],
    ['webhook_deliveries_pending', 'eventsync_webhook_deliveries_pending'],
    ['webhook_oldest_age_seconds', 'eventsync_webhook_oldest_pending_age_seconds'],
    ['webhook_endpoints_failing', 'eventsync_webhook_failing_endpoints', { state: 'failing' }],
    ['webhook_endpoints_disabled', 'eventsync_webhook_failing_endpoints', { state: 'disabled' }],
    ['waitlist_waiting', 'eventsync_waitlist_entries', { status: 'WAITING' }],
    ['waitlist_offered', 'eventsync_waitlist_entries', { status: 'OFFERED' }],
  ],
};

export async function serviceStatus(name: ServiceName, probes: Probes): Promise<ServiceStatus> {
  const status: ServiceStatus = { url: probes.url, reachable: false, ready: false, problems: [], figures: {} };
  try {
    await probes.health();
  } catch (error) {
    if (error instanceof ServiceUnreachableError) {
      status.problems.push(error.message);
      return status;
    }
    throw error;
  }
  status.reachable = true;
  const ready = await probes.ready().catch((error: unknown) => ({ ok: false, status: 0, problem: { type: 'about:blank', title: 'unreachable', status: 0, detail: error instanceof Error ? error.message : String(error) } }));
  status.ready = ready.ok;
  if (!ready.ok) status.problems.push(`not ready: ${ready.problem?.detail ?? `HTTP ${ready.status}`}`);
  const metrics = await probes.metrics().catch(() => undefined);
  if (!metrics?.ok || typeof metrics.body !== 'string') {
    status.problems.push(`metrics unreadable${metrics ? ` (${metricsRefusal(metrics)})` : ''}`);
    return status;
  }
  const samples: Sample[] = parseMetrics(metrics.body);
  for (const [key, metric, labels] of FIGURES[name]) status.figures[key] = metricValue(samples, metric, labels);
  return status;
}

/** What a service's figures show is wrong: a seat release or a webhook delivery waiting over a minute, an endpoint disabled for failing. */
function figureProblems(figures: Figures): string[] {
  const problems: string[] = [];
  if ((figures.outbox_oldest_age_seconds ?? 0) > OUTBOX_AGE_LIMIT_SECONDS) {
    problems.push(`a seat release has waited in the outbox over ${OUTBOX_AGE_LIMIT_SECONDS} s: is event-service taking releases?`);
  }
  if ((figures.webhook_oldest_age_seconds ?? 0) > WEBHOOK_AGE_LIMIT_SECONDS) {
    problems.push(`a webhook delivery has been pending over ${WEBHOOK_AGE_LIMIT_SECONDS} s: an endpoint failing or disabled with deliveries waiting (eventsync webhooks list)`);
  }
  if ((figures.webhook_endpoints_disabled ?? 0) > 0) {
    problems.push(`${count(figures.webhook_endpoints_disabled ?? 0, 'webhook endpoint')} disabled for failing: fix the receiver, then eventsync webhooks update <id> --enable (or delete it)`);
  }
  return problems;
}

/**
 * The verdict on both services as they were seen: unreachable when one did not answer, degraded when
 * one is not ready or has a problem (its metrics unreadable, or what its figures show), else healthy;
 * each service with the problems its figures show added, and the exit code (0, 1, 3).
 */
export function judgeStatus(seen: Record<ServiceName, ServiceStatus>): { status: Verdict; exitCode: number; services: Record<ServiceName, ServiceStatus> } {
  const judged = (status: ServiceStatus): ServiceStatus => ({ ...status, problems: [...status.problems, ...figureProblems(status.figures)] });
  const services = { 'event-service': judged(seen['event-service']), 'ticket-service': judged(seen['ticket-service']) };
  const all = Object.values(services);
  const status: Verdict = all.some((s) => !s.reachable) ? 'unreachable' : all.some((s) => !s.ready || s.problems.length > 0) ? 'degraded' : 'healthy';
  return { status, exitCode: status === 'healthy' ? EXIT.ok : status === 'degraded' ? EXIT.refused : EXIT.unavailable, services };
}

function printService(name: string, status: ServiceStatus): void {
  const state = !status.reachable ? paint('red', 'unreachable') : status.ready ? paint('green', 'up, ready') : paint('yellow', 'up, NOT ready');
  process.stdout.write(`${paint('bold', name.padEnd(15))} ${status.url}  ${state}\n`);
  const f = status.figures;
  const has = (key: string) => f[key] !== undefined;
  if (has('events')) {
    process.stdout.write(`  ${count(f.events ?? 0, 'event')}; seats ${f.seats_total}: ${f.seats_available} available, ${f.seats_held} reserved, ${f.seats_sold} sold, ${f.seats_manual} set aside\n`);
  }
  if (has('tickets_reserved')) {
    process.stdout.write(`  tickets: ${f.tickets_reserved} reserved, ${f.tickets_confirmed} confirmed, ${f.tickets_cancelled} cancelled\n`);
    const age = f.outbox_oldest_age_seconds ?? 0;
    const outbox = f.outbox_pending ? `${count(f.outbox_pending, 'release')} waiting, the oldest for ${age} s` : 'empty';
    process.stdout.write(`  outbox: ${age > OUTBOX_AGE_LIMIT_SECONDS ? paint('yellow', outbox) : outbox}\n`);
    const webhookAge = f.webhook_oldest_age_seconds ?? 0;
    const queue = f.webhook_deliveries_pending ? `${count(f.webhook_deliveries_pending, 'delivery', 'deliveries')} pending, the oldest for ${webhookAge} s` : 'no delivery pending';
    const endpoints = `${count(f.webhook_endpoints_failing ?? 0, 'endpoint')} failing, ${f.webhook_endpoints_disabled ?? 0} disabled for failing`;
    process.stdout.write(`  webhooks: ${webhookAge > WEBHOOK_AGE_LIMIT_SECONDS ? paint('yellow', queue) : queue}; ${f.webhook_endpoints_disabled ? paint('yellow', endpoints) : endpoints}\n`);
    if (has('waitlist_waiting')) process.stdout.write(`  waiting list: ${f.waitlist_waiting} waiting, ${f.waitlist_offered} offered\n`);
    process.stdout.write(
      `  since start: reconciler abandoned ${f.reconciler_abandoned_purchases} purchases, released ${f.reconciler_released_orphan_holds} orphan holds, completed ${f.reconciler_completed_confirms} confirms; sweeper expired ${f.sweeper_cancellations}\n`,
    );
  }
  for (const problem of status.problems) process.stdout.write(`  ${paint('yellow', '!')} ${problem}\n`);
}

export function statusCommand(): Command {
  return new Command('status')
    .description("both services' health, readiness and key figures; exits 0 healthy, 1 degraded, 3 unreachable")
    .addHelpText('after', '\nExamples:\n  eventsync status\n  eventsync --admin-token "$ADMIN_TOKEN" status --json')
    .action(async (_options: unknown, command: Command) => {
      const context = cliContext(command);
      const { status, exitCode, services } = judgeStatus({
        'event-service': await serviceStatus('event-service', {
          url: context.events.baseUrl,
          health: () => context.events.call('getHealth', {}),
          ready: () => context.events.call('getReady', {}),
          metrics: () => context.events.call('getMetrics', {}),
        }),
        'ticket-service': await serviceStatus('ticket-service', {
          url: context.tickets.baseUrl,
          health: () => context.tickets.call('getHealth', {}),
          ready: () => context.tickets.call('getReady', {}),
          metrics: () => context.tickets.call('getMetrics', {}),
        }),
      });
      if (context.options.json) printJson({ status, services });
      else {
        for (const [name, service] of Object.entries(services)) printService(name, service);
        const colour = status === 'healthy' ? 'green' : status === 'degraded' ? 'yellow' : 'red';
        process.stdout.write(`status: ${paint(colour, status)}\n`);
      }
      process.exitCode = exitCode;
    });
}
