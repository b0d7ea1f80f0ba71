/**
 * Request validation as DESIGN.md's Errors section asks: bodies are validated without type coercion,
 * unknown fields are rejected and every error is reported; query, path and header parameters are
 * coerced from strings, but only from plain decimal notation. Fastify's default Ajv does the opposite
 * for bodies, so each HTTP part gets its own Ajv (JSON Schema 2020-12, the dialect of OpenAPI 3.1).
 */
import { Ajv2020, type ErrorObject, type Options } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import type { FastifySchemaCompiler } from 'fastify';
import type { FieldError } from './errors.js';
import { addContractFormats, CONTRACT_FORMATS } from './formats.js';

// ajv-formats is CommonJS; under NodeNext its default import is the module object.
const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default;

/** OpenAPI keywords that are annotations, not validation. */
const OPENAPI_VOCABULARY = ['example', 'xml', 'externalDocs', 'discriminator'];

function makeAjv(options: Options): Ajv2020 {
  const ajv = new Ajv2020({ allErrors: true, strict: true, strictRequired: false, verbose: true, ...options });
  ajv.addVocabulary(OPENAPI_VOCABULARY);
  addFormats(ajv);
  addContractFormats(ajv);
  return ajv;
}

const BODY_OPTIONS: Options = { coerceTypes: false, useDefaults: true, removeAdditional: false };

const PARAMETER_OPTIONS: Options = { coerceTypes: 'array', useDefaults: true, removeAdditional: false };

/** One Ajv per settings in a process, made when first needed: Ajv and its formats take milliseconds to set up. */
const ajvs = new Map<Options, Ajv2020>();
const ajvFor = (options: Options): Ajv2020 => {
  let ajv = ajvs.get(options);
  if (!ajv) {
    ajv = makeAjv(options);
    ajvs.set(options, ajv);
  }
  return ajv;
};

/**
 * A validator compiled when it first validates, not when its route is registered: a service starts
 * without compiling the schemas of the ~50 operations of its spec (most of its start-up CPU after
 * loading modules), and the first request of an operation pays for its schema once, a few
 * milliseconds. Compiling every schema of both specs is a test of its own (test/http-input.test.ts),
 * so a schema Ajv refuses still fails the build, not a request.
 */
function compiledOnFirstUse(compile: () => Validator): Validator {
  let compiled: Validator | undefined;
  const validate: Validator = (data: unknown) => {
    compiled ??= compile();
    const result = compiled(data);
    validate.errors = compiled.errors;
    return result;
  };
  return validate;
}

export function createValidatorCompiler(): FastifySchemaCompiler<Record<string, unknown>> {
  return ({ schema, httpPart }) =>
    httpPart === 'body'
      ? compiledOnFirstUse(() => ajvFor(BODY_OPTIONS).compile(schema))
      : withPlainNumbers(schema, compiledOnFirstUse(() => ajvFor(PARAMETER_OPTIONS).compile(schema)));
}

/**
 * Validates a value as a route validates its body (same settings, same field errors), for a part
 * of a body that is checked item by item: the invalid fields, or an empty list.
 */
export function bodyValidator(schema: Record<string, unknown>): (body: unknown) => FieldError[] {
  const validate = compiledOnFirstUse(() => ajvFor(BODY_OPTIONS).compile(schema));
  return (body) => (validate(body) ? [] : fieldErrors((validate.errors ?? []) as ErrorObject[], 'body'));
}

const PLAIN_INTEGER = /^-?[0-9]+$/;
const PLAIN_NUMBER = /^-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?$/;

type Validator = ReturnType<FastifySchemaCompiler<Record<string, unknown>>>;

interface NumericSchema {
  type: 'integer' | 'number';
  minimum?: number;
  maximum?: number;
}

/** Why a parameter's text is not a number of its schema, or undefined when it is one. */
function numberNotation(text: string, schema: NumericSchema): string | undefined {
  const integer = schema.type === 'integer';
  if (!(integer ? PLAIN_INTEGER : PLAIN_NUMBER).test(text)) {
    return integer ? 'must be an integer in plain decimal digits, e.g. 42' : 'must be a number in decimal notation, e.g. 2.5';
  }
  const value = Number(text);
  if (integer ? Number.isSafeInteger(value) : Number.isFinite(value)) return undefined;
  if (schema.maximum !== undefined && value > schema.maximum) return `must be <= ${schema.maximum}`;
  if (schema.minimum !== undefined && value < schema.minimum) return `must be >= ${schema.minimum}`;
  return integer ? `must be between -${Number.MAX_SAFE_INTEGER} and ${Number.MAX_SAFE_INTEGER}` : 'must be a finite number';
}

/**
 * Ajv's coercion reads `0x10`, `1e1`, ` 1` and `Infinity` as numbers and never checks the range of an
 * infinite one, so the text of every numeric parameter is checked first: an id in a path or query is
 * plain decimal digits and a number is finite, or the parameter is invalid.
 */
function withPlainNumbers(schema: Record<string, unknown>, validate: Validator): Validator {
  const properties = (schema.properties ?? {}) as Record<string, { type?: unknown }>;
  const numeric = Object.entries(properties).filter((entry): entry is [string, NumericSchema] => entry[1].type === 'integer' || entry[1].type === 'number');
  if (numeric.length === 0) return validate;
  const checked: Validator = (data: Record<string, unknown> | null): boolean => {
    const notation: ErrorObject[] = [];
    for (const [name, property] of numeric) {
      const text = data?.[name];
      const detail = typeof text === 'string' ? numberNotation(text, property) : undefined;
      if (detail) notation.push({ keyword: 'notation', instancePath: `/${name}`, schemaPath: `#/properties/${name}/type`, params: {}, message: detail });
    }
    const valid = validate(data) === true;
    const errors = [...notation, ...((validate.errors ?? []) as ErrorObject[])];
    checked.errors = errors.length > 0 ? errors : null;
    return valid && notation.length === 0;
  };
  return checked;
}

/** A readable detail for one Ajv error. */
function describe(error: ErrorObject): string {
  switch (error.keyword) {
    case 'required':
      return 'is required';
    case 'additionalProperties':
      return 'is not a known field';
    case 'pattern': {
      const description = (error.parentSchema as { description?: string } | undefined)?.description;
      // Lower-case the first word unless it is an acronym (RFC, ISO).
      const lead = description && /^[A-Z][a-z]/.test(description) ? description.charAt(0).toLowerCase() + description.slice(1) : description;
      return lead ? `must be ${lead}` : (error.message ?? 'is invalid');
    }
    case 'format': {
      const format = (error.params as { format: string }).format;
      return CONTRACT_FORMATS[format]?.message ?? `must be a valid ${format}`;
    }
    case 'enum':
      return `must be one of ${(error.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
    default:
      return error.message ?? 'is invalid';
  }
}

const COMBINATORS = new Set(['oneOf', 'anyOf', 'if']);

/**
 * One entry per invalid field: a JSON pointer into the body (`#/quantity`), or a parameter's name for
 * query, path and header parameters. The most specific message wins over `oneOf` summaries.
 */
export function fieldErrors(errors: ErrorObject[], context: string): FieldError[] {
  const byPointer = new Map<string, { detail: string; combinator: boolean }>();
  for (const error of errors) {
    // An optional body's `if null … else` (platform/openapi-routes.ts): the else branch names the fields.
    if (error.keyword === 'if' && errors.length > 1) continue;
    let path = error.instancePath;
    const params = error.params as { missingProperty?: string; additionalProperty?: string };
    if (error.keyword === 'required' && params.missingProperty) path += `/${params.missingProperty}`;
    if (error.keyword === 'additionalProperties' && params.additionalProperty) path += `/${params.additionalProperty}`;
    const pointer = context === 'body' ? `#${path}` : path.replace(/^\//, '').split('/')[0] || context;
    const combinator = COMBINATORS.has(error.keyword);
    const known = byPointer.get(pointer);
    if (!known || (known.combinator && !combinator)) byPointer.set(pointer, { detail: describe(error), combinator });
  }
  return [...byPointer].map(([pointer, { detail }]) => ({ pointer, detail }));
}
