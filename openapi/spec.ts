/** Loads the hand-written OpenAPI documents (the contract) and resolves their local `$ref`s. */
import { readFileSync, existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

export type ServiceName = 'event-service' | 'ticket-service';

export type JsonSchema = Record<string, unknown>;

export interface ParameterObject {
  name: string;
  in: 'query' | 'path' | 'header' | 'cookie';
  required?: boolean;
  schema: JsonSchema;
}

export interface OperationObject {
  operationId: string;
  parameters?: ParameterObject[];
  requestBody?: { required?: boolean; content: Record<string, { schema: JsonSchema }> };
  responses: Record<string, { content?: Record<string, { schema: JsonSchema }> }>;
  security?: Array<Record<string, string[]>>;
  tags?: string[];
}

export interface OpenApiDocument {
  openapi: string;
  info: Record<string, unknown>;
  servers?: Array<{ url: string; description?: string }>;
  paths: Record<string, Record<string, unknown>>;
  components: Record<string, Record<string, unknown>>;
  [key: string]: unknown;
}

export const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'] as const;

export interface SpecOperation {
  method: (typeof HTTP_METHODS)[number];
  /** The path as written in the spec, e.g. `/events/{id}`. */
  path: string;
  operation: OperationObject;
}

function findRepoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'openapi', 'event-service.yaml'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('cannot find openapi/event-service.yaml above ' + fileURLToPath(import.meta.url));
    dir = parent;
  }
  return dir;
}

export const repoRoot = findRepoRoot();
export const specPath = (service: ServiceName): string => join(repoRoot, 'openapi', `${service}.yaml`);

const rawCache = new Map<ServiceName, OpenApiDocument>();

/** The build's JSON copy beside the compiled module, when it is at least as new as the YAML. */
function bundledSpec(service: ServiceName): OpenApiDocument | undefined {
  const bundled = join(dirname(fileURLToPath(import.meta.url)), `${service}.json`);
  if (!existsSync(bundled) || statSync(bundled).mtimeMs < statSync(specPath(service)).mtimeMs) return undefined;
  return JSON.parse(readFileSync(bundled, 'utf8')) as OpenApiDocument;
}

/** The document exactly as written (with `$ref`s), for serving. */
export function loadSpec(service: ServiceName): OpenApiDocument {
  let doc = rawCache.get(service);
  if (!doc) {
    doc = bundledSpec(service) ?? (parse(readFileSync(specPath(service), 'utf8')) as OpenApiDocument);
    rawCache.set(service, doc);
  }
  return structuredClone(doc);
}

/**
 * Replaces every local `$ref` by a copy of its target. The specs have no recursive schemas, so the
 * result is finite; a remote `$ref` is a mistake in the contract and throws.
 */
export function dereference<T>(root: unknown, node: T = root as T): T {
  if (Array.isArray(node)) return node.map((item) => dereference(root, item)) as T;
  if (node === null || typeof node !== 'object') return node;
  const record = node as Record<string, unknown>;
  if (typeof record.$ref === 'string') {
    const ref = record.$ref;
    if (!ref.startsWith('#/')) throw new Error(`only local $refs are supported: ${ref}`);
    let target: unknown = root;
    for (const token of ref.slice(2).split('/')) {
      const key = token.replace(/~1/g, '/').replace(/~0/g, '~');
      target = (target as Record<string, unknown> | undefined)?.[key];
      if (target === undefined) throw new Error(`unresolved $ref ${ref}`);
    }
    const { $ref: _ref, ...siblings } = record;
    const resolved = dereference(root, target);
    return (Object.keys(siblings).length > 0 ? { ...(resolved as object), ...dereference(root, siblings) } : resolved) as T;
  }
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(record)) out[key] = dereference(root, value);
  return out as T;
}

/** Every operation of a service's spec, with its `$ref`s resolved. */
export function specOperations(service: ServiceName): SpecOperation[] {
  const doc: OpenApiDocument = dereference(loadSpec(service));
  const operations: SpecOperation[] = [];
  for (const [path, item] of Object.entries(doc.paths) as Array<[string, Record<string, unknown>]>) {
    const shared = (item.parameters ?? []) as ParameterObject[];
    for (const method of HTTP_METHODS) {
      const operation = item[method] as OperationObject | undefined;
      if (!operation) continue;
      const own = operation.parameters ?? [];
      const merged = [...shared.filter((p) => !own.some((o) => o.name === p.name && o.in === p.in)), ...own];
      operations.push({ method, path, operation: { ...operation, parameters: merged } });
    }
  }
  return operations;
}
