/**
 * Where a scenario's time went, from outside the services: CPU seconds by process group read from
 * /proc (the services' process trees, the load generator, the PostgreSQL backends of the bench's
 * databases, PostgreSQL's own background processes, and everything else on the machine), and on
 * PostgreSQL the commits and WAL flushes the server counted. Divided by the purchases made, they say
 * what one purchase costs and where; the rest of the machine says how much the run had to share.
 * Linux only (/proc); elsewhere the CPU part is left out.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import pg from 'pg';

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ: 100 on every Linux Node runs on). */
const TICKS_PER_SECOND = 100;

export type CpuGroup = 'event-service' | 'ticket-service' | 'load generator' | 'postgres: event database' | 'postgres: ticket database' | 'postgres: server processes' | 'bench itself' | 'rest of the machine';

interface ProcessSample {
  ticks: number;
  parent: number;
  command: string;
}

function sampleProcesses(): Map<number, ProcessSample> {
  const samples = new Map<number, ProcessSample>();
  if (!existsSync('/proc/self/stat')) return samples;
  for (const entry of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Fields after the command name (which may hold spaces), from field 3 (state) on.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const command = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
      samples.set(Number(entry), { ticks: Number(fields[11]) + Number(fields[12]), parent: Number(fields[1]), command });
    } catch {
      // The process ended between the listing and the read.
    }
  }
  return samples;
}

export interface CpuAccountingTargets {
  /** Root pids of each service (the primary with WORKERS > 1: its workers are its children). */
  services: Record<'event-service' | 'ticket-service', number | undefined>;
  /** PostgreSQL database names whose backends count for each service. */
  databases?: { event: string; ticket: string };
}

export interface CpuAccount {
  seconds: number;
  /** CPU seconds used by each group during the window. */
  cpuSeconds: Record<string, number>;
}

function descendants(samples: Map<number, ProcessSample>, root: number | undefined): Set<number> {
  const found = new Set<number>();
  if (root === undefined) return found;
  found.add(root);
  for (let grew = true; grew; ) {
    grew = false;
    for (const [pid, sample] of samples) {
      if (!found.has(pid) && found.has(sample.parent)) {
        found.add(pid);
        grew = true;
      }
    }
  }
  return found;
}

function groupOf(pid: number, sample: ProcessSample, targets: CpuAccountingTargets, trees: Record<'event-service' | 'ticket-service', Set<number>>): CpuGroup {
  if (trees['event-service'].has(pid)) return 'event-service';
  if (trees['ticket-service'].has(pid)) return 'ticket-service';
  if (pid === process.pid) return 'bench itself';
  if (sample.command.startsWith('postgres:')) {
    if (targets.databases && sample.command.includes(` ${targets.databases.event} `)) return 'postgres: event database';
    if (targets.databases && sample.command.includes(` ${targets.databases.ticket} `)) return 'postgres: ticket database';
    // Backends of other databases (other people's tests) are the rest of the machine; the server's own
    // processes (WAL writer, checkpointer, ...) work for everyone, the bench's databases included.
    if (/^postgres: [^:]+: (checkpointer|background writer|walwriter|autovacuum|logical replication|stats)/.test(sample.command)) return 'postgres: server processes';
  }
  return 'rest of the machine';
}

/**
 * Starts a window; `end(loadGeneratorSeconds)` gives the CPU seconds each group used since. The load
 * generator has exited by then: it reports its own CPU time, which is added as its group (and was
 * not counted in the rest of the machine).
 */
export function startCpuAccounting(targets: CpuAccountingTargets): { end: (loadGeneratorSeconds?: number) => CpuAccount | undefined } {
  const before = sampleProcesses();
  const began = performance.now();
  return {
    end: (loadGeneratorSeconds) => {
      if (before.size === 0) return undefined;
      const after = sampleProcesses();
      const trees = {
        'event-service': descendants(after, targets.services['event-service']),
        'ticket-service': descendants(after, targets.services['ticket-service']),
      };
      const cpuSeconds: Record<string, number> = {};
      for (const [pid, sample] of after) {
        const used = sample.ticks - (before.get(pid)?.ticks ?? 0);
        if (used <= 0) continue;
        const group = groupOf(pid, sample, targets, trees);
        cpuSeconds[group] = (cpuSeconds[group] ?? 0) + used / TICKS_PER_SECOND;
      }
      if (loadGeneratorSeconds !== undefined) cpuSeconds['load generator'] = loadGeneratorSeconds;
      return { seconds: (performance.now() - began) / 1000, cpuSeconds };
    },
  };
}

export interface ServerCounters {
  /** Transactions committed in each bench database. */
  commits: { event: number; ticket: number };
  /** WAL flushes of the whole server (pg_stat_wal.wal_sync; shared with anything else running). */
  walFlushes: number;
}

/** The server's counters for the two bench databases (pg_stat_database lags by up to its flush interval: read after a pause). */
export async function readServerCounters(serverUrl: string, databases: { event: string; ticket: string }): Promise<ServerCounters> {
  const client = new pg.Client({ connectionString: serverUrl, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    // A fresh snapshot of the statistics, not the one this session may have cached.
    await client.query('SELECT pg_stat_clear_snapshot()');
    const commits = await client.query<{ datname: string; xact_commit: string }>('SELECT datname, xact_commit FROM pg_stat_database WHERE datname = ANY($1)', [[databases.event, databases.ticket]]);
    const wal = await client.query<{ wal_sync: string }>('SELECT wal_sync FROM pg_stat_wal');
    const of = (name: string) => Number(commits.rows.find((row) => row.datname === name)?.xact_commit ?? 0);
    return { commits: { event: of(databases.event), ticket: of(databases.ticket) }, walFlushes: Number(wal.rows[0]?.wal_sync ?? 0) };
  } finally {
    await client.end();
  }
}

/** Several windows' CPU as one (their seconds and each group's CPU seconds added up). */
export function sumAccounts(accounts: Array<CpuAccount | undefined>): CpuAccount | undefined {
  const known = accounts.filter((account): account is CpuAccount => account !== undefined);
  if (known.length === 0) return undefined;
  const cpuSeconds: Record<string, number> = {};
  for (const account of known) for (const [group, seconds] of Object.entries(account.cpuSeconds)) cpuSeconds[group] = (cpuSeconds[group] ?? 0) + seconds;
  return { seconds: known.reduce((total, account) => total + account.seconds, 0), cpuSeconds };
}

export const NO_COUNTERS: ServerCounters = { commits: { event: 0, ticket: 0 }, walFlushes: 0 };

/** What the counters moved by between two readings. */
export const counterDelta = (before: ServerCounters, after: ServerCounters): ServerCounters => ({
  commits: { event: after.commits.event - before.commits.event, ticket: after.commits.ticket - before.commits.ticket },
  walFlushes: after.walFlushes - before.walFlushes,
});

export const addCounters = (a: ServerCounters, b: ServerCounters): ServerCounters => ({
  commits: { event: a.commits.event + b.commits.event, ticket: a.commits.ticket + b.commits.ticket },
  walFlushes: a.walFlushes + b.walFlushes,
});

/** Per purchase: CPU milliseconds by group, and on PostgreSQL commits and the purchases one WAL flush carried. */
export interface PurchaseCosts {
  purchases: number;
  cpuMsPerPurchase: Record<string, number>;
  /** Share of the machine's CPU (all cores over the window) each group took, 0..1. */
  cpuShare: Record<string, number>;
  commitsPerPurchase?: { event: number; ticket: number };
  purchasesPerWalFlush?: number;
}

export function purchaseCosts(purchases: number, cpu: CpuAccount | undefined, cores: number, counted?: ServerCounters): PurchaseCosts {
  const costs: PurchaseCosts = { purchases, cpuMsPerPurchase: {}, cpuShare: {} };
  for (const [group, seconds] of Object.entries(cpu?.cpuSeconds ?? {})) {
    costs.cpuMsPerPurchase[group] = purchases > 0 ? (seconds * 1000) / purchases : 0;
    costs.cpuShare[group] = cpu && cpu.seconds > 0 ? seconds / (cpu.seconds * cores) : 0;
  }
  if (counted && purchases > 0) {
    costs.commitsPerPurchase = { event: counted.commits.event / purchases, ticket: counted.commits.ticket / purchases };
    if (counted.walFlushes > 0) costs.purchasesPerWalFlush = purchases / counted.walFlushes;
  }
  return costs;
}
