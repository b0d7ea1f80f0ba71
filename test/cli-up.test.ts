/**
 * `eventsync up` runs both services in one terminal with a shared generated service token; Ctrl-C
 * stops both, and if one dies the other is stopped too.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t, { type Test } from 'tap';
import { cliPath, coverageEnv, describeRun, freePort, parseJsonOutput, runCli, type Event, type Ticket } from './helpers/cli.js';
import { eventually } from './helpers/system.js';
import { tempDir } from './helpers/event-app.js';

// Starting services through a CLI process is slow on a loaded machine.
t.setTimeout(600_000);

interface Up {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
  urls: string[];
}

async function startUp(t: Test, env: (ports: { eventPort: number }) => Record<string, string> = () => ({})): Promise<Up> {
  const dir = tempDir(t);
  const [eventPort, ticketPort] = [await freePort(), await freePort()];
  const child = spawn(process.execPath, [cliPath, 'up'], {
    env: {
      ...env({ eventPort }),
      ...coverageEnv(),
      PATH: process.env.PATH ?? '',
      NO_COLOR: '1',
      EVENT_SERVICE_PORT: String(eventPort),
      TICKET_SERVICE_PORT: String(ticketPort),
      EVENT_DB_PATH: join(dir, 'event_data.db'),
      TICKET_DB_PATH: join(dir, 'ticket_data.db'),
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const chunks: string[] = [];
  child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => chunks.push(chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await exited;
    }
  });
  const output = () => chunks.join('');
  const ready = await eventually(async () => /eventsync: ready/.test(output()) || child.exitCode !== null, 60_000);
  if (!ready || child.exitCode !== null) throw new Error(`eventsync up did not get ready:\n${output()}`);
  return { child, output, exited, urls: ['--event-url', `http://127.0.0.1:${eventPort}`, '--ticket-url', `http://127.0.0.1:${ticketPort}`] };
}

/** The services `eventsync up` started: its child processes. */
async function childrenOf(pid: number): Promise<Array<{ pid: number; args: string }>> {
  const { stdout } = await promisify(execFile)('ps', ['-o', 'pid=,args=', '--ppid', String(pid)]).catch(() => ({ stdout: '' }));
  return stdout
    .split('\n')
    .map((line) => /^\s*(\d+)\s+(.*)$/.exec(line))
    .flatMap((match) => (match?.[1] && match[2] ? [{ pid: Number(match[1]), args: match[2] }] : []));
}

t.test('eventsync up starts both services sharing a generated service token, so a purchase works (EVENT_SERVICE_URL listing replicas), and Ctrl-C stops both with exit 0', async (t) => {
  // A list of event-service replicas, as with WORKERS or several hosts: start-up waits for the one it started.
  const up = await startUp(t, ({ eventPort }) => ({ EVENT_SERVICE_URL: `http://127.0.0.1:${eventPort},http://127.0.0.1:${eventPort}/` }));
  t.match(up.output(), /generated a service token shared by both services/);
  const pid = up.child.pid ?? 0;
  const services = await childrenOf(pid);
  t.equal(services.length, 2, 'two service processes');

  const created = await runCli([...up.urls, '--json', 'events', 'create', '--name', 'Up And Running', '--date', '2027-01-01T20:00:00Z', '--tickets', '5']);
  t.equal(created.code, 0, describeRun(created));
  const event = parseJsonOutput<Event>(created);
  const bought = await runCli([...up.urls, '--json', 'tickets', 'buy', '--event', String(event.id), '--name', 'Ada Lovelace', '--email', 'ada@example.com', '--quantity', '2']);
  t.equal(bought.code, 0, `ticket-service holds seats on event-service with the shared token: ${describeRun(bought)}`);
  t.equal(parseJsonOutput<Ticket>(bought).status, 'RESERVED');
  const after = await runCli([...up.urls, '--json', 'events', 'get', String(event.id)]);
  t.equal(parseJsonOutput<Event>(after).available_tickets, 3);

  up.child.kill('SIGINT');
  t.equal(await up.exited, 0, `Ctrl-C stops cleanly:\n${up.output()}`);
  t.same(await childrenOf(pid), [], 'no service is left running');
  for (const service of services) t.throws(() => process.kill(service.pid, 0), `${service.args} is gone`);
  const gone = await runCli([...up.urls, 'events', 'list']);
  t.equal(gone.code, 3, 'nothing answers any more');
});

t.test('eventsync up with a bad configuration says so with "error: ", as every CLI error, and exits non-zero', async (t) => {
  const dir = tempDir(t);
  const result = await runCli(['up'], { env: { EVENT_SERVICE_PORT: 'abc', EVENT_DB_PATH: join(dir, 'event_data.db'), TICKET_DB_PATH: join(dir, 'ticket_data.db') } });
  t.not(result.code, 0, describeRun(result));
  t.match(result.stderr, /EVENT_SERVICE_PORT/, 'the service names the bad variable');
  t.match(result.stderr, /^error: event-service did not start: exited with code 1$/m);
});

t.test('eventsync up stops ticket-service and exits non-zero when event-service dies', async (t) => {
  const up = await startUp(t);
  const services = await childrenOf(up.child.pid ?? 0);
  const eventService = services.find((s) => s.args.includes('event-service'));
  const ticketService = services.find((s) => s.args.includes('ticket-service'));
  if (!eventService || !ticketService) throw new Error(`unexpected children: ${JSON.stringify(services)}`);
  process.kill(eventService.pid, 'SIGKILL');
  const code = await up.exited;
  t.not(code, 0, `exit ${code}`);
  t.match(up.output(), /event-service stopped .*stopping the other service/);
  t.ok(await eventually(async () => {
    try {
      process.kill(ticketService.pid, 0);
      return false;
    } catch {
      return true;
    }
  }, 20_000), 'ticket-service was stopped too');
});
