/** Starting a service that cannot start says why in one sentence, without a stack trace (DESIGN.md, Operations). */
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { repoRoot } from '../openapi/spec.js';
import { SERVICE_TOKEN, tempDir } from './helpers/event-app.js';

function runService(env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [join(repoRoot, 'dist', 'event-service', 'server.js')], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stderr })));
}

t.test('a port already in use stops the service with one sentence naming the address, not a stack trace', async (t) => {
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
  const port = (blocker.address() as AddressInfo).port;
  const { code, stderr } = await runService({ SERVICE_TOKEN, EVENT_SERVICE_PORT: String(port), EVENT_DB_PATH: join(tempDir(t), 'event_data.db'), LOG_LEVEL: 'silent' });
  t.equal(code, 1, 'it exits 1');
  t.equal(stderr.trim(), `event-service: cannot listen on 127.0.0.1:${port}: the port is already in use (set another port or stop what uses it)`, 'one sentence');
});

t.test('a service started without SERVICE_TOKEN refuses to start, saying why', async (t) => {
  const { code, stderr } = await runService({ EVENT_SERVICE_PORT: '0', EVENT_DB_PATH: join(tempDir(t), 'event_data.db'), LOG_LEVEL: 'silent' });
  t.equal(code, 1, 'it exits 1');
  t.match(stderr, /SERVICE_TOKEN is not set/, 'naming the variable');
  t.notMatch(stderr, /\n\s+at /, 'without a stack trace');
});

t.test('WORKERS above 1 without PostgreSQL is refused at start-up, saying why', async (t) => {
  const { code, stderr } = await runService({ SERVICE_TOKEN, WORKERS: '2', EVENT_SERVICE_PORT: '0', EVENT_DB_PATH: join(tempDir(t), 'event_data.db'), LOG_LEVEL: 'silent' });
  t.equal(code, 1, 'it exits 1');
  t.match(stderr, /WORKERS = 2: more than one process needs PostgreSQL \(set EVENT_DATABASE_URL\)/, 'naming WORKERS and the variable that would allow it');
  t.notMatch(stderr, /\n\s+at /, 'without a stack trace');
});
