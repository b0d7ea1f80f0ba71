/**
 * Child processes of the bench: servers started on ephemeral ports (the port read from their
 * "Server listening at" line) and load workers whose result is one JSON document on stdout. Every
 * child is registered so that one call stops them all, whatever happened before.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** dist/bench, where this module and its siblings run from. */
export const benchDir = dirname(fileURLToPath(import.meta.url));
/** The compiled tree (dist/). */
export const distDir = dirname(benchDir);

const running = new Set<ChildProcess>();
const OUTPUT_CHUNKS_KEPT = 200;
const LISTENING = /Server listening at (http:\/\/127\.0\.0\.1:(\d+))/;

export interface RunningServer {
  name: string;
  process: ChildProcess;
  url: string;
  port: number;
  /** The last chunks of its stdout and stderr, for error messages. */
  output: string[];
}

export interface ServerLaunch {
  name: string;
  /** Path of the compiled script, relative to dist/ (or to `root`). */
  script: string;
  /** Another compiled tree to run the script from (the bench's `--services-from`). */
  root?: string;
  /** Extra Node options, such as `--cpu-prof`. */
  nodeArgs?: string[];
  args?: string[];
  env: Record<string, string>;
  /** Preload bench/listen-reporter.js, for servers whose own log line is below their log level. */
  reportListening?: boolean;
  startTimeoutMs?: number;
}

function compiled(script: string, root = distDir): string {
  const path = join(root, script);
  if (!existsSync(path)) throw new Error(`${path} is missing: run \`npm run build\` first`);
  return path;
}

function keep(output: string[], chunk: string): void {
  output.push(chunk);
  if (output.length > OUTPUT_CHUNKS_KEPT) output.splice(0, output.length - OUTPUT_CHUNKS_KEPT);
}

function track(child: ChildProcess): void {
  running.add(child);
  child.once('exit', () => running.delete(child));
}

export async function startServer(launch: ServerLaunch): Promise<RunningServer> {
  const nodeArgs = [...(launch.nodeArgs ?? []), ...(launch.reportListening ? ['--import', pathToFileURL(compiled('bench/listen-reporter.js')).href] : [])];
  const child = spawn(process.execPath, [...nodeArgs, compiled(launch.script, launch.root), ...(launch.args ?? [])], {
    env: { PATH: process.env.PATH ?? '', ...launch.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  track(child);
  const output: string[] = [];
  const timeoutMs = launch.startTimeoutMs ?? 20_000;
  const url = await new Promise<string>((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`${launch.name} did not start in ${timeoutMs / 1000} s:\n${output.join('')}`)), timeoutMs);
    const onData = (chunk: Buffer) => {
      const text = chunk.toString();
      keep(output, text);
      // A line may arrive split over two chunks: look at the tail of what came before too.
      seen = (seen + text).slice(-4096);
      const match = LISTENING.exec(seen);
      if (match?.[1] !== undefined) {
        clearTimeout(timer);
        child.off('exit', onExit);
        resolve(match[1]);
      }
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
      clearTimeout(timer);
      reject(new Error(`${launch.name} exited (${signal ?? code}) before listening:\n${output.join('')}`));
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
  });
  // Keep draining both pipes so that a chatty child never blocks on a full pipe.
  child.stdout?.removeAllListeners('data').on('data', (chunk: Buffer) => keep(output, chunk.toString()));
  child.stderr?.removeAllListeners('data').on('data', (chunk: Buffer) => keep(output, chunk.toString()));
  return { name: launch.name, process: child, url, port: Number(new URL(url).port), output };
}

/** Runs `dist/bench/load-worker.js` with a spec and returns the JSON it prints; killed after `timeoutMs`. */
export async function runWorker<Result>(spec: unknown, timeoutMs: number): Promise<Result> {
  const child = spawn(process.execPath, [compiled('bench/load-worker.js'), JSON.stringify(spec)], {
    env: { PATH: process.env.PATH ?? '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  track(child);
  const stdout: string[] = [];
  const stderr: string[] = [];
  child.stdout?.on('data', (chunk: Buffer) => stdout.push(chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => keep(stderr, chunk.toString()));
  const outcome = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; timedOut: boolean }>((resolve) => {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, timedOut });
    });
  });
  if (outcome.timedOut) throw new Error(`load worker killed after ${timeoutMs / 1000} s:\n${stderr.join('')}`);
  if (outcome.code !== 0) throw new Error(`load worker exited (${outcome.signal ?? outcome.code}):\n${stderr.join('')}`);
  try {
    return JSON.parse(stdout.join('')) as Result;
  } catch {
    throw new Error(`load worker printed no JSON document:\n${stdout.join('').slice(0, 2000)}\n${stderr.join('')}`);
  }
}

async function stopOne(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** SIGTERM (a graceful stop), then SIGKILL if it is still there after `graceMs`. */
export async function stopServer(server: RunningServer, graceMs = 5000): Promise<void> {
  await stopOne(server.process, graceMs);
}

/** Stops every child still running, as `stopServer` does. */
export async function stopAllChildren(graceMs = 5000): Promise<void> {
  await Promise.all([...running].map((child) => stopOne(child, graceMs)));
}

/** Last resort on the way out (e.g. a second Ctrl-C): no waiting. */
export function killAllChildrenNow(): void {
  for (const child of running) child.kill('SIGKILL');
}
