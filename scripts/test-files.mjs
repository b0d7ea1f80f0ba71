#!/usr/bin/env node
/**
 * Runs some test files the way `npm test` runs them all: compiled by tsc into dist/test/ and run by tap
 * as JavaScript (no TypeScript loader in every test process; see README "Development").
 *   node scripts/test-files.mjs test/event-crud.test.ts [more files or tap options]
 * Compiles everything first (about 10 s), then maps each test/…​.ts argument to dist/test/….js.
 */
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';

const run = (command, args) => {
  const result = spawnSync(command, args, { stdio: 'inherit' });
  if (result.status !== 0) process.exit(result.status ?? 1);
};

rmSync('dist/test', { recursive: true, force: true });
run('npx', ['tsc', '-p', 'tsconfig.json']);
run('node', ['scripts/bundle-specs.mjs']);
run('node', ['scripts/tap-plugins.mjs']);
const args = process.argv.slice(2).map((arg) => (/^(\.\/)?test\/.*\.ts$/.test(arg) ? `dist/${arg.replace(/^\.\//, '').replace(/\.ts$/, '.js')}` : arg));
run('npx', ['tap', ...(args.some((arg) => arg.startsWith('dist/')) ? ['--disable-coverage'] : []), ...args]);
