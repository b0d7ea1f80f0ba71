/**
 * `eventsync status` (DESIGN.md, Observability) against running services: one screen (or `--json`)
 * of both services' health, readiness and figures from /metrics; exit 0 healthy, 1 degraded, 3 unreachable.
 */
import t from 'tap';
import { eventually, startSystem } from './helpers/system.js';
import { sleep } from './helpers/system-api.js';
import { cliFor, closedPortUrl, describeRun, parseJsonOutput, runCli, seedEvent, seedTicket } from './helpers/cli.js';
import { judgeStatus, serviceStatus, type Probes, type ServiceStatus } from '../cli/commands/status.js';

interface StatusJson {
  status: string;
  services: Record<string, { reachable: boolean; ready: boolean; problems: string[]; figures: Record<string, number> }>;
}

t.test('a healthy system: exit 0, its figures on one screen and in --json; a service that does not answer: exit 3; a webhook endpoint disabled for failing: degraded, exit 1', async (t) => {
  // A webhook retry window of 0.36 s: a delivery to a dead endpoint fails for good at once, and the
  // endpoint is disabled at its first failed attempt after that long.
  const retryWindowMs = 360;
  const system = await startSystem(t, { env: { WEBHOOK_RETRY_HOURS: '0.0001', WEBHOOK_RETRY_BASE_SECONDS: '0.1' } });
  const event = await seedEvent(system, { name: 'Status Night', total_tickets: 10 });
  await seedTicket(system, event.id, 2, 'CONFIRMED');
  await seedTicket(system, event.id, 1);
  const eventsync = cliFor(system);

  const screen = await eventsync('status');
  t.equal(screen.code, 0, describeRun(screen));
  t.match(screen.stdout, /event-service\s+http:\/\/127\.0\.0\.1:\d+\s+up, ready/);
  t.match(screen.stdout, /1 event; seats 10: 7 available, 1 reserved, 2 sold, 0 set aside/);
  t.match(screen.stdout, /tickets: 1 reserved, 1 confirmed, 0 cancelled/);
  t.match(screen.stdout, /outbox: empty/);
  t.match(screen.stdout, /webhooks: no delivery pending; 0 endpoints failing, 0 disabled for failing/);
  t.match(screen.stdout, /status: healthy/);

  const json = parseJsonOutput<StatusJson>(await eventsync('--json', 'status'));
  t.equal(json.status, 'healthy');
  t.match(json.services['ticket-service']?.figures, { tickets_reserved: 1, tickets_confirmed: 1, outbox_pending: 0, outbox_oldest_age_seconds: 0 });
  t.match(json.services['ticket-service']?.figures, { webhook_deliveries_pending: 0, webhook_oldest_age_seconds: 0, webhook_endpoints_failing: 0, webhook_endpoints_disabled: 0 });
  t.match(json.services['event-service']?.figures, { events: 1, seats_total: 10, seats_held: 1, seats_sold: 2 });

  const unreachable = await runCli(['--event-url', system.event.url, '--ticket-url', await closedPortUrl(), 'status']);
  t.equal(unreachable.code, 3, describeRun(unreachable));
  t.match(unreachable.stdout, /ticket-service\s+\S+\s+unreachable/);
  t.match(unreachable.stdout, /status: unreachable/);

  const dead = await system.tickets.call('createWebhook', { body: { url: await closedPortUrl(), events: ['ticket.confirmed'] } });
  if (!dead.ok) throw new Error(`could not subscribe: ${JSON.stringify(dead.problem)}`);
  const ping = () => system.tickets.call('pingWebhook', { path: { webhook_id: dead.body.id } });
  t.equal((await ping()).status, 202);
  const failed = async () => {
    const log = await system.tickets.call('listWebhookDeliveries', { path: { webhook_id: dead.body.id } });
    return log.ok && log.body[0]?.status === 'failed';
  };
  t.ok(await eventually(failed), 'the ping failed for good');
  const failingSince = Date.now();
  await sleep(Math.max(0, failingSince + retryWindowMs + 50 - Date.now()));
  const enabled = async () => {
    const hook = await system.tickets.call('getWebhook', { path: { webhook_id: dead.body.id } });
    return hook.ok && hook.body.enabled;
  };
  // Another ping, unless a slow machine made the first one's retries last the whole window already.
  if (await enabled()) t.equal((await ping()).status, 202, 'another ping, once the endpoint has failed for the whole retry window');
  t.ok(await eventually(async () => !(await enabled())), 'the dispatcher disabled the endpoint');
  const degraded = await eventsync('status');
  t.equal(degraded.code, 1, describeRun(degraded));
  // The second ping, if any, waits (pending) for the endpoint to be enabled again.
  t.match(degraded.stdout, /webhooks: (no delivery|1 delivery) pending.*; 0 endpoints failing, 1 disabled for failing/);
  t.match(degraded.stdout, /1 webhook endpoint disabled for failing: fix the receiver, then eventsync webhooks update <id> --enable/);
  t.match(degraded.stdout, /status: degraded/);
});

t.test('ticket-service up but not ready (it cannot reach event-service): degraded, exit 1', async (t) => {
  const nowhere = await closedPortUrl();
  const system = await startSystem(t, { eventServiceUrlForTickets: () => nowhere });
  const result = await cliFor(system)('status');
  t.equal(result.code, 1, describeRun(result));
  t.match(result.stdout, /ticket-service\s+\S+\s+up, NOT ready/);
  t.match(result.stdout, /not ready: event-service/);
  t.match(result.stdout, /status: degraded/);
});

t.test("the verdict from what was seen: a seat release or a webhook delivery waiting over a minute, an endpoint disabled for failing, or a service not ready is degraded (exit 1); one that did not answer is unreachable (exit 3)", async (t) => {
  const up = (figures: Record<string, number> = {}, more: Partial<ServiceStatus> = {}): ServiceStatus => ({ url: 'http://127.0.0.1:1', reachable: true, ready: true, problems: [], figures, ...more });
  const calm = { outbox_oldest_age_seconds: 60, webhook_oldest_age_seconds: 60, webhook_endpoints_disabled: 0 };
  const verdict = (ticket: ServiceStatus, event: ServiceStatus = up()) => {
    const judged = judgeStatus({ 'event-service': event, 'ticket-service': ticket });
    return { status: judged.status, exitCode: judged.exitCode, problems: judged.services['ticket-service'].problems.concat(judged.services['event-service'].problems) };
  };
  t.same(verdict(up(calm)), { status: 'healthy', exitCode: 0, problems: [] }, 'a release and a delivery waiting 60 s: healthy');
  const outbox = verdict(up({ ...calm, outbox_oldest_age_seconds: 61 }));
  t.same([outbox.status, outbox.exitCode], ['degraded', 1], 'a release waiting 61 s: degraded');
  t.match(outbox.problems, [/seat release has waited in the outbox over 60 s/]);
  const webhook = verdict(up({ ...calm, webhook_oldest_age_seconds: 61 }));
  t.same([webhook.status, webhook.exitCode], ['degraded', 1], 'a delivery pending 61 s: degraded');
  t.match(webhook.problems, [/webhook delivery has been pending over 60 s/]);
  const disabled = verdict(up({ ...calm, webhook_endpoints_disabled: 1 }));
  t.same([disabled.status, disabled.exitCode], ['degraded', 1], 'an endpoint disabled for failing: degraded');
  t.match(disabled.problems, [/1 webhook endpoint disabled for failing/]);
  t.same(verdict(up(calm), up({}, { ready: false })).status, 'degraded', 'event-service not ready: degraded');
  t.same(verdict(up(calm, { problems: ['metrics unreadable'] })).exitCode, 1, 'a problem seen on the way (metrics unreadable): degraded');
  const unreachable = verdict(up({ ...calm, outbox_oldest_age_seconds: 61 }), up({}, { reachable: false, ready: false }));
  t.same([unreachable.status, unreachable.exitCode], ['unreachable', 3], 'a service that did not answer: unreachable, whatever else');
});

t.test('metrics that cannot be read say why: the token to send when refused, the service\'s own reason otherwise (metrics off)', async (t) => {
  const probes = (metrics: Probes['metrics']): Probes => ({ url: 'http://127.0.0.1:1', health: async () => ({ ok: true }), ready: async () => ({ ok: true, status: 200 }), metrics });
  const problems = async (metrics: Probes['metrics']) => (await serviceStatus('ticket-service', probes(metrics))).problems;
  t.same(await problems(async () => ({ ok: false, status: 401 })), ['metrics unreadable (HTTP 401: send --admin-token)'], 'refused: send the admin token');
  const off = { type: 'urn:eventsync:problem:not-found', title: 'Not found', status: 404, detail: 'Metrics are off on this service (METRICS=off): it keeps none, so there is nothing to scrape.' };
  t.same(await problems(async () => ({ ok: false, status: 404, problem: off })), [`metrics unreadable (${off.detail})`], 'metrics off: says so, no token hint');
});
