/**
 * Reads the V8 CPU profiles that `npm run bench -- --profile` collects (`--cpu-prof`) and prints where
 * each service spent its time: self time by package or source area, then the costliest functions.
 * Open the `.cpuprofile` files in Chrome DevTools (Performance panel) for the full call trees.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
}

const TOP_AREAS = 12;
const TOP_FUNCTIONS = 20;
const TOP_OWN = 15;

/** `node_modules/fastify/...` → `fastify`; `node:internal/...` → `node`; our files → their folder. */
function area(url: string, functionName: string): string {
  if (url === '') return functionName.startsWith('(') ? functionName : '(native)';
  const modules = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (modules?.[1] !== undefined) return modules[1];
  if (url.startsWith('node:')) return 'node';
  const ours = /\/dist\/([^/]+\/(?:[^/]+\/)?)/.exec(url);
  return ours?.[1] ?? url;
}

function shortUrl(url: string): string {
  const modules = url.lastIndexOf('node_modules/');
  if (modules >= 0) return url.slice(modules + 'node_modules/'.length);
  const dist = url.lastIndexOf('/dist/');
  return dist >= 0 ? url.slice(dist + '/dist/'.length) : url;
}

function rank(totals: Map<string, number>, all: number, count: number): string[] {
  return [...totals.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([name, samples]) => `  ${((100 * samples) / all).toFixed(1).padStart(5)}%  ${name}`);
}

export function summariseProfile(file: string): string {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byArea = new Map<string, number>();
  const byFunction = new Map<string, number>();
  let all = 0;
  let idle = 0;
  for (const node of profile.nodes) {
    const hits = node.hitCount ?? 0;
    if (hits === 0) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    all += hits;
    if (functionName === '(idle)') idle += hits;
    const where = area(url, functionName);
    byArea.set(where, (byArea.get(where) ?? 0) + hits);
    const name = url === '' ? functionName : `${functionName || '(anonymous)'} ${shortUrl(url)}:${lineNumber + 1}`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + hits);
  }
  // Total (self + callees) time of EventSync's own functions: which of our steps cost what.
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const totalOf = new Map<number, number>();
  const total = (node: ProfileNode): number => {
    const known = totalOf.get(node.id);
    if (known !== undefined) return known;
    let sum = node.hitCount ?? 0;
    for (const child of node.children ?? []) {
      const next = byId.get(child);
      if (next) sum += total(next);
    }
    totalOf.set(node.id, sum);
    return sum;
  };
  const ownTotals = new Map<string, number>();
  const visit = (node: ProfileNode, onStack: Set<string>) => {
    const { functionName, url, lineNumber } = node.callFrame;
    let stack = onStack;
    if (url.includes('/dist/') && !url.includes('node_modules')) {
      const name = `${functionName || '(anonymous)'} ${shortUrl(url)}:${lineNumber + 1}`;
      // A function already on the stack (recursion, re-entry) is counted once.
      if (!onStack.has(name)) {
        ownTotals.set(name, (ownTotals.get(name) ?? 0) + total(node));
        stack = new Set(onStack).add(name);
      }
    }
    for (const child of node.children ?? []) {
      const next = byId.get(child);
      if (next) visit(next, stack);
    }
  };
  const root = profile.nodes[0];
  if (root) visit(root, new Set());
  const seconds = (profile.endTime - profile.startTime) / 1e6;
  const busy = all === 0 ? 0 : (100 * (all - idle)) / all;
  return [
    `${file}: ${seconds.toFixed(1)} s profiled, busy ${busy.toFixed(0)}% of samples`,
    'self time by area:',
    ...rank(byArea, all, TOP_AREAS),
    'costliest functions (self time):',
    ...rank(byFunction, all, TOP_FUNCTIONS),
    'EventSync functions (total time, callees included):',
    ...rank(ownTotals, all, TOP_OWN),
  ].join('\n');
}

/** One summary per `.cpuprofile` in `dir`. */
export function summariseProfiles(dir: string): string {
  const files = existsSync(dir) ? readdirSync(dir).filter((name) => name.endsWith('.cpuprofile')) : [];
  if (files.length === 0) return `no CPU profiles in ${dir} (did the services stop cleanly?)`;
  return files.map((name) => summariseProfile(join(dir, name))).join('\n\n');
}
