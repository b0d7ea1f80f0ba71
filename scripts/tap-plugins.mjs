#!/usr/bin/env node
/**
 * tap compiles its Test class with the plugins its configuration names (package.json "tap": without
 * @tapjs/typescript, since tests run as tsc compiled them). A fresh `npm ci` leaves it compiled with
 * tap's default plugins; `tap` notices and rebuilds, but only after it has chosen the loaders of that
 * run's test processes, so the first run after an install put the TypeScript loader in every test
 * process (about 1.5 s of CPU each). `npm test` runs this first: `tap build` when the compiled plugins
 * are not the configured ones, nothing otherwise.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { TapConfig } from '@tapjs/config';

const config = await TapConfig.load();
const built = readFileSync(new URL('../node_modules/@tapjs/test/test-built/dist/esm/index.js', import.meta.url), 'utf8');
const signature = /^export const signature = `([^`]*)`/m.exec(built)?.[1]?.trim();
if (signature !== config.pluginSignature) {
  console.log('tap was built with other plugins than package.json configures: rebuilding it (tap build)');
  const result = spawnSync('npx', ['tap', 'build'], { stdio: 'inherit' });
  if (result.status !== 0) process.exit(result.status ?? 1);
}
