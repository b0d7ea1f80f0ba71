#!/usr/bin/env node
// Part of `npm run build`: the specs parsed once into dist/openapi/<service>.json, so that services and
// the CLI start without parsing YAML (the YAML files stay the contract; openapi/spec.ts falls back to
// them whenever they are newer than the JSON).
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
mkdirSync(join(root, 'dist', 'openapi'), { recursive: true });
for (const service of ['event-service', 'ticket-service']) {
  const spec = parse(readFileSync(join(root, 'openapi', `${service}.yaml`), 'utf8'));
  writeFileSync(join(root, 'dist', 'openapi', `${service}.json`), JSON.stringify(spec));
}
