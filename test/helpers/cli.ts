/**
 * Runs the compiled `eventsync` command (dist/cli/main.js) as a real process, as a person or a script
 * would, and captures its stdout, stderr and exit code. Run `npm run build` first (`npm test` does).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import type { Test } from 'tap';
import { join } from 'node:path';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { repoRoot, specOperations, type JsonSchema, type ServiceName } from '../../openapi/spec.js';
import type { components as EventComponents } from '../../openapi/generated/event-service.js';
import type { components as TicketComponents } from '../../openapi/generated/ticket-service.js';
import type { TestSystem } from './system.js';

const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default;

type EventCreate = EventComponents['schemas']['EventCreate'];
export type Event = EventComponents['schemas']['Event'];
export type Ticket = TicketComponents['schemas']['Ticket'];

export const cliPath = join(repoRoot, 'dist', 'cli', 'main.js');

export interface CliResult {
  /** Exit code; null only if the process was killed by a signal. */
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Added to a clean environment (PATH and NO_COLOR=1 only, so no EVENTSYNC_* leaks in from the caller). */
  env?: Record<string, string>;
  /** Set NO_COLOR=1 (default true). */
  noColor?: boolean;
  timeoutMs?: number;
  /** Called with each chunk of stderr as it arrives, for a test that acts on what the command says. */
  onStderr?: (text: string) => void;
}

/** What tap sets so that child node processes are measured for coverage; nothing else is inherited. */
export const coverageEnv = (): Record<string, string> =>
  Object.fromEntries(Object.entries(process.env).filter((entry): entry is [string, string] => entry[1] !== undefined && (entry[0] === 'NODE_OPTIONS' || entry[0] === 'NODE_V8_COVERAGE' || entry[0].startsWith('_TAPJS_PROCESSINFO_'))));

function collect(file: string, args: string[], options: RunOptions): Promise<CliResult> {
  if (!existsSync(cliPath)) throw new Error(`${cliPath} is missing: run \`npm run build\` first`);
  const env = { ...coverageEnv(), PATH: process.env.PATH ?? '', ...(options.noColor === false ? {} : { NO_COLOR: '1' }), ...options.env };
  const child = spawn(file, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
  child.stderr.on('data', (chunk: Buffer) => {
    stderr.push(chunk);
    options.onStderr?.(chunk.toString('utf8'));
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${file} ${args.join(' ')} did not finish in ${options.timeoutMs ?? 120_000} ms`));
    }, options.timeoutMs ?? 120_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(stdout).toString('utf8'), stderr: Buffer.concat(stderr).toString('utf8') });
    });
  });
}

/** `eventsync <args>` with nothing but the given environment. */
export function runCli(args: string[], options: RunOptions = {}): Promise<CliResult> {
  return collect(process.execPath, [cliPath, ...args], options);
}

/**
 * A shell command line as the CLI prints it (starting with `eventsync`), run by /bin/sh exactly as
 * written, with `eventsync` being the compiled CLI.
 */
export function runShell(commandLine: string, options: RunOptions = {}): Promise<CliResult> {
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const script = `eventsync() { ${quote(process.execPath)} ${quote(cliPath)} "$@"; }\n${commandLine}`;
  return collect('/bin/sh', ['-c', script], options);
}

/** `eventsync --event-url … --ticket-url … <args>` against a test system. */
export function cliFor(system: TestSystem, defaults: RunOptions = {}): (...args: string[]) => Promise<CliResult> {
  return (...args) => runCli(['--event-url', system.event.url, '--ticket-url', system.ticket.url, ...args], defaults);
}

/** Exit code, stdout and stderr of a run, for assertion messages. */
export const describeRun = (result: CliResult): string => `exit ${result.code}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`;

/**
 * Parses stdout as exactly one JSON document (JSON.parse refuses anything before or after it) and
 * returns it typed as the caller expects; throws with the output when it is not.
 */
export function parseJsonOutput<T>(result: CliResult): T {
  try {
    return JSON.parse(result.stdout) as T;
  } catch (error) {
    throw new Error(`stdout is not exactly one JSON document (${(error as Error).message}):\n${describeRun(result)}`);
  }
}

/** True when the text holds an ANSI escape sequence (colour, bold, cursor movement). */
export const hasAnsi = (text: string): boolean => /\u001b\[[0-9;?]*[A-Za-z]/.test(text);

/** The `application/json` schema of one answer in a service's spec, `$ref`s resolved. */
export function responseSchema(service: ServiceName, operationId: string, status: number): JsonSchema {
  const found = specOperations(service).find((o) => o.operation.operationId === operationId);
  if (!found) throw new Error(`${service} has no operation ${operationId}`);
  const schema = found.operation.responses[String(status)]?.content?.['application/json']?.schema;
  if (!schema) throw new Error(`${operationId} declares no application/json answer for ${status}`);
  return schema;
}

/** A validator for one answer's schema, compiled as the contract tests compile them (Ajv 2020, formats, all errors). */
export function responseValidator(service: ServiceName, operationId: string, status: number): { validate: ValidateFunction; errorsText: () => string } {
  const ajv = new Ajv2020({ allErrors: true, strict: false });
  addFormats(ajv);
  const validate = ajv.compile(responseSchema(service, operationId, status));
  return { validate, errorsText: () => ajv.errorsText(validate.errors) };
}

/** A local port that nothing listens on now (bound once, then closed). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
  return address.port;
}

/** The URL of a local port that nothing listens on. */
export const closedPortUrl = async (): Promise<string> => `http://127.0.0.1:${await freePort()}`;

/** One hour from now, RFC 3339. */
export const inAnHour = (): string => new Date(Date.now() + 3600_000).toISOString();

/** Creates an event straight on event-service (setup for a CLI test, not the thing under test). */
export async function seedEvent(system: Pick<TestSystem, 'events'>, fields: Partial<EventCreate> & { name: string }): Promise<Event> {
  const result = await system.events.call('createEvent', { body: { event_date: '2027-03-20T19:30:00Z', total_tickets: 10, ...fields } });
  if (!result.ok) throw new Error(`POST /events answered ${result.status}: ${JSON.stringify(result.problem)}`);
  return result.body;
}

/** Reserves tickets straight on ticket-service, optionally confirming them. */
export async function seedTicket(system: TestSystem, eventId: number, quantity = 1, status: 'RESERVED' | 'CONFIRMED' | 'CANCELLED' = 'RESERVED'): Promise<Ticket> {
  const created = await system.tickets.call('createTicket', { body: { event_id: eventId, customer_name: 'Ada Lovelace', customer_email: 'ada@example.com', quantity } });
  if (!created.ok) throw new Error(`POST /tickets answered ${created.status}: ${JSON.stringify(created.problem)}`);
  if (status === 'RESERVED') return created.body;
  const changed = await system.tickets.call('updateTicketStatus', { path: { id: created.body.id }, body: { status } });
  if (!changed.ok) throw new Error(`PUT /tickets/${created.body.id}/status answered ${changed.status}: ${JSON.stringify(changed.problem)}`);
  return changed.body;
}

/** The event as event-service has it now. */
export async function eventOnService(system: TestSystem, id: number): Promise<Event> {
  const result = await system.events.call('getEvent', { path: { id } });
  if (!result.ok) throw new Error(`GET /events/${id} answered ${result.status}`);
  return result.body;
}

/** The ticket as ticket-service has it now. */
export async function ticketOnService(system: TestSystem, id: number): Promise<Ticket> {
  const result = await system.tickets.call('getTicket', { path: { id } });
  if (!result.ok) throw new Error(`GET /tickets/${id} answered ${result.status}`);
  return result.body;
}

/** Awaits a run that must succeed and returns the one JSON document it printed. */
export async function succeedsWithJson<T>(run: Promise<CliResult>): Promise<T> {
  const result = await run;
  if (result.code !== 0) throw new Error(`the command failed:\n${describeRun(result)}`);
  return parseJsonOutput<T>(result);
}

/**
 * `eventsync <args>` on a pseudo-terminal (util-linux `script`), so that stdout is a TTY as in a
 * person's terminal. The output comes back with the terminal's CRLF line ends.
 */
export function runInTerminal(args: string[], options: RunOptions = {}): Promise<CliResult> {
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const commandLine = [process.execPath, cliPath, ...args].map(quote).join(' ');
  return collect('script', ['--quiet', '--return', '--command', commandLine, '/dev/null'], { ...options, env: { TERM: 'xterm-256color', ...options.env } });
}

/** An answer a test gives in place of the service's. */
export interface ScriptedAnswer {
  status: number;
  body: unknown;
}

/** One call as the proxy received it. */
export interface ProxiedCall {
  headers: Record<string, string>;
  body: string;
}

/**
 * A stand-in for a service's URL that passes every call on to it, except the calls a test answers
 * itself: `script(n, call)` for the n-th call (from 1) returns the answer to give instead, or undefined
 * to pass it on. The answer may wait for something the test awaits (a fault the test times, not a clock).
 */
export async function startScriptedProxy(t: Test, target: string, script: (n: number, call: ProxiedCall) => Promise<ScriptedAnswer | undefined>): Promise<{ url: string; calls: () => number }> {
  let calls = 0;
  const passOn = new Set(['content-type', 'accept', 'authorization', 'idempotency-key', 'x-request-id', 'x-ticket-reference']);
  const passBack = new Set(['content-type', 'idempotent-replayed', 'link', 'x-total-count']);
  const server = createHttpServer((incoming, outgoing) => {
    calls += 1;
    const n = calls;
    const chunks: Buffer[] = [];
    incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
    incoming.on('end', () => {
      const answer = async (): Promise<{ status: number; text: string; headers: Record<string, string> }> => {
        const headers = Object.fromEntries(Object.entries(incoming.headers).filter((entry): entry is [string, string] => passOn.has(entry[0]) && typeof entry[1] === 'string'));
        const body = Buffer.concat(chunks);
        const scripted = await script(n, { headers, body: body.toString('utf8') });
        if (scripted) return { status: scripted.status, text: JSON.stringify(scripted.body), headers: { 'content-type': scripted.status >= 400 ? 'application/problem+json' : 'application/json' } };
        const response = await fetch(`${target}${incoming.url ?? '/'}`, { method: incoming.method ?? 'GET', headers, ...(body.length > 0 ? { body } : {}) });
        const kept = Object.fromEntries([...response.headers].filter(([name]) => passBack.has(name)));
        return { status: response.status, text: await response.text(), headers: kept };
      };
      answer()
        .then(({ status, text, headers }) => {
          outgoing.writeHead(status, headers);
          outgoing.end(text);
        })
        .catch(() => {
          outgoing.writeHead(502);
          outgoing.end();
        });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return { url: `http://127.0.0.1:${address.port}`, calls: () => calls };
}
