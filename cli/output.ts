/** Output for people (tables, an availability bar, colour only on a TTY without NO_COLOR) and for scripts (--json). */
import { styleText } from 'node:util';
import Table from 'cli-table3';
import { ServiceUnreachableError, type Problem } from '../openapi/client.js';

export const EXIT = { ok: 0, refused: 1, usage: 2, unavailable: 3 } as const;

/** The API refused the request (4xx): exit 1. A 5xx answer counts as unavailable: exit 3. */
export class ApiRefusal extends Error {
  constructor(
    readonly status: number,
    readonly problem: Problem,
  ) {
    super(problem.detail ?? problem.title);
  }
}

export const useColour = (stream: NodeJS.WriteStream = process.stdout): boolean => stream.isTTY === true && !('NO_COLOR' in process.env) && process.env.TERM !== 'dumb';

type Style = Parameters<typeof styleText>[0];
export const paint = (style: Style, text: string, stream: NodeJS.WriteStream = process.stdout): string => (useColour(stream) ? styleText(style, text) : text);

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function printTable(head: string[], rows: Array<Array<string | number>>): void {
  const colour = useColour();
  const table = new Table({ head: head.map((h) => paint('bold', h)), style: colour ? { head: [], border: ['grey'] } : { head: [], border: [] } });
  for (const row of rows) table.push(row.map(String));
  process.stdout.write(`${table.toString()}\n`);
}

export function printRecord(record: Array<[string, string | number | null | undefined]>): void {
  const width = Math.max(...record.map(([key]) => key.length));
  for (const [key, value] of record) process.stdout.write(`${paint('bold', key.padEnd(width))}  ${value === null || value === undefined || value === '' ? '—' : value}\n`);
}

/** `1 seat`, `2 seats`: a count with its noun, singular for exactly one. */
export { count } from '../platform/words.js';

/** `███████░░░ 70%`: the share of seats taken (held + sold; DESIGN.md: "taken", not "sold"). */
export function availabilityBar(taken: number, total: number, width = 12): string {
  const ratio = total > 0 ? Math.min(1, taken / total) : 0;
  const filled = Math.round(ratio * width);
  const bar = '█'.repeat(filled) + '░'.repeat(width - filled);
  const style: Style = ratio >= 1 ? 'red' : ratio >= 0.8 ? 'yellow' : 'green';
  return `${paint(style, bar)} ${Math.round(ratio * 100)}%`;
}

/** Minor units to a readable amount with ICU's currency rules (10000 USD → $100.00). */
export function money(minor: number, currency: string): string {
  const format = new Intl.NumberFormat('en', { style: 'currency', currency });
  const digits = format.resolvedOptions().maximumFractionDigits ?? 2;
  return format.format(minor / 10 ** digits);
}

/** Every error the CLI prints starts so: `error: ` (commander's own style), red on a terminal. */
export function printError(message: string): void {
  process.stderr.write(`${paint('red', 'error:', process.stderr)} ${message}\n`);
}

/** A progress note on stderr, so that stdout stays one JSON document with --json. */
export function printNote(message: string): void {
  process.stderr.write(`${message}\n`);
}

/** Prints an error on stderr and returns the exit code it means. */
export function reportError(error: unknown): number {
  const err = (text: string) => process.stderr.write(`${text}\n`);
  if (error instanceof ApiRefusal) {
    const { problem } = error;
    printError(`${problem.title}${problem.detail ? `: ${problem.detail}` : ''} (HTTP ${error.status})`);
    const fields = problem.errors ?? [];
    // One invalid field is already the detail ("#/quantity must be >= 1"); list them only when there are several.
    const detailSaysIt = fields.length === 1 && problem.detail === `${fields[0]?.pointer} ${fields[0]?.detail}`;
    if (!detailSaysIt) for (const field of fields) err(`  ${field.pointer}: ${field.detail}`);
    if (Array.isArray(problem.allowed_transitions)) err(`  allowed transitions: ${problem.allowed_transitions.join(', ') || 'none'}`);
    // A request still in flight under the same key is not a refusal: it is worth retrying later.
    const retryLater = error.status >= 500 || problem.type === 'urn:eventsync:problem:idempotency-in-flight';
    return retryLater ? EXIT.unavailable : EXIT.refused;
  }
  if (error instanceof ServiceUnreachableError) {
    printError(`${error.message}. Is it running? Start both services with \`eventsync up\` or \`npm start\`.`);
    return EXIT.unavailable;
  }
  printError(error instanceof Error ? error.message : String(error));
  return EXIT.unavailable;
}
