/**
 * Real Chromium (Debian's, never a downloaded one) driven by playwright-core over the services'
 * Swagger UI pages, for the browser tests: a fresh profile per browser, a tab per test, a screenshot
 * per step in `test-artifacts/` (git-ignored), and bounded waits (15 s per expectation).
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Locator, type Page } from 'playwright-core';
import type { Test } from 'tap';
import { repoRoot } from '../../openapi/spec.js';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
/** Without the networking flags Chromium keeps calling home, which floods a closed network. */
export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--disable-sync',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
];
export const WAIT_MS = 15_000;
export const ARTIFACTS_DIR = join(repoRoot, 'test-artifacts');

/**
 * Whether the browser tests can run. A missing Chromium skips them loudly on a workstation and fails
 * the run on CI (`CI=true`), where skipping would hide that the pages went untested.
 */
export function chromiumAvailable(t: Test): boolean {
  if (existsSync(CHROMIUM_PATH)) return true;
  const message = `SKIPPING BROWSER TESTS: no Chromium at ${CHROMIUM_PATH} — install it with apt-get install chromium (or set CHROMIUM_PATH)`;
  if (process.env.CI === 'true') {
    t.fail(`${message}; on CI (CI=true) the browser tests must run`);
  } else {
    t.comment(message);
    console.error(`\n*** ${message} ***\n`);
  }
  return false;
}

/** A port nothing listens on right now (the OS picks it; the listener closes at once). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('no port was assigned'))));
    });
  });
}

/** Two distinct free ports, for event-service and ticket-service. */
export async function freePortPair(): Promise<[number, number]> {
  const first = await freePort();
  let second = await freePort();
  while (second === first) second = await freePort();
  return [first, second];
}

export interface BrowserPage {
  page: Page;
  /** Requests the page sent anywhere but loopback (the tests expect none). */
  externalRequests: string[];
  /** Console errors and uncaught page errors, shown when an expectation fails. */
  pageErrors: string[];
  /**
   * Saves `test-artifacts/<prefix>-<NN>-<step>.png`: the element `of` (an operation's live
   * response, say) or else the visible part of the page; returns the path.
   */
  screenshot(step: string, of?: Locator): Promise<string>;
}

/**
 * Launches Chromium with a fresh profile; `t.teardown` closes it and removes the profile.
 * No `route()` anywhere: while routing, Playwright answers CORS preflights itself, which would hide
 * exactly the cross-origin problems these tests are meant to catch.
 */
export async function launchBrowser(t: Test): Promise<BrowserContext> {
  const userDataDir = mkdtempSync(join(tmpdir(), 'eventsync-chromium-'));
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM_PATH,
      args: CHROMIUM_FLAGS,
      timeout: 30_000,
      viewport: { width: 1280, height: 900 },
    });
  } catch (error) {
    rmSync(userDataDir, { recursive: true, force: true });
    throw error;
  }
  t.teardown(async () => {
    await context.close();
    rmSync(userDataDir, { recursive: true, force: true });
  });
  context.setDefaultTimeout(WAIT_MS);
  context.setDefaultNavigationTimeout(WAIT_MS);
  return context;
}

/** A new tab for one test (closed by its teardown), recording what it loads and what goes wrong in it. */
export async function openPage(t: Test, context: BrowserContext, screenshotPrefix: string): Promise<BrowserPage> {
  mkdirSync(ARTIFACTS_DIR, { recursive: true });
  const page = await context.newPage();
  t.teardown(() => page.close());
  const externalRequests: string[] = [];
  const pageErrors: string[] = [];
  page.on('request', (request) => {
    const { hostname, protocol } = new URL(request.url());
    if ((protocol === 'http:' || protocol === 'https:') && hostname !== '127.0.0.1' && hostname !== 'localhost') externalRequests.push(request.url());
  });
  page.on('console', (message) => {
    if (message.type() === 'error') pageErrors.push(`console: ${message.text()}`);
  });
  page.on('pageerror', (error) => pageErrors.push(`page error: ${error.message}`));
  let step = 0;
  return {
    page,
    externalRequests,
    pageErrors,
    async screenshot(name, of) {
      step += 1;
      const path = join(ARTIFACTS_DIR, `${screenshotPrefix}-${String(step).padStart(2, '0')}-${name}.png`);
      if (of) await of.screenshot({ path, timeout: WAIT_MS });
      else await page.screenshot({ path, timeout: WAIT_MS });
      return path;
    },
  };
}

/** What the page shows under "Server response" after Execute. */
export interface LiveResponse {
  /** The status cell as shown, e.g. "201" (or "Undocumented" when the request failed in the browser). */
  statusText: string;
  status: number;
  /** The response body as the page shows it. */
  body: string;
  /** The "Request URL" the page shows it sent the request to. */
  requestUrl: string;
}

/** One Swagger UI page (swagger-ui 5 DOM) and the steps a person takes on it. */
export class SwaggerUiPage {
  constructor(readonly page: Page) {}

  /** Opens `url` and waits until the spec is rendered as operation blocks. */
  async open(url: string): Promise<void> {
    await this.page.goto(url, { timeout: WAIT_MS });
    await this.page.locator('.opblock').first().waitFor({ state: 'visible', timeout: WAIT_MS });
  }

  title(): Promise<string> {
    return this.page.title();
  }

  /** The spec's `info.title` heading as the page shows it (followed by its version badges). */
  async specTitle(): Promise<string> {
    return (await this.page.locator('.information-container .info .title').first().innerText({ timeout: WAIT_MS })).trim();
  }

  /**
   * The block with id `operations-<Tag>-<operationId>`, which swagger-ui builds as CSS.escape of
   * the tag with spaces as underscores (`Holds (internal)` becomes `Holds_\(internal\)`).
   */
  operation(tag: string, operationId: string): Locator {
    const cssEscape = (text: string) => text.replace(/[^\w-]/g, (character) => `\\${character}`);
    const domId = `operations-${cssEscape(tag.replace(/\s/g, '_'))}-${cssEscape(operationId)}`;
    return this.page.locator(`[id="${domId.replace(/\\/g, '\\\\')}"]`);
  }

  /** The operation ids of every operation block on the page. */
  async operationIds(): Promise<string[]> {
    const ids: string[] = [];
    for (const block of await this.page.locator('.opblock[id^="operations-"]').all()) {
      const id = await block.getAttribute('id');
      const operationId = id?.split('-').slice(2).join('-');
      if (operationId) ids.push(operationId);
    }
    return ids;
  }

  /** The spec selector in the top bar (swagger-ui's `urls`). */
  specSelector(): Locator {
    return this.page.locator('.download-url-wrapper select');
  }

  /** The names the spec selector offers. */
  async specNames(): Promise<string[]> {
    return (await this.specSelector().locator('option').allInnerTexts()).map((name) => name.trim());
  }

  /** Switches the top-bar selector to the spec named `name` and waits for `expectOperation` to render. */
  async selectSpec(name: string, expectOperation: Locator): Promise<void> {
    await this.specSelector().selectOption({ label: name }, { timeout: WAIT_MS });
    await expectOperation.waitFor({ state: 'visible', timeout: WAIT_MS });
  }

  /** Expands the operation (if collapsed) and turns on "Try it out" (if not already on). */
  async tryItOut(tag: string, operationId: string): Promise<Locator> {
    const block = this.operation(tag, operationId);
    await block.waitFor({ state: 'visible', timeout: WAIT_MS });
    if (!(await block.getAttribute('class'))?.split(/\s+/).includes('is-open')) {
      await block.locator('.opblock-summary-control').first().click({ timeout: WAIT_MS });
    }
    const button = block.locator('button.try-out__btn');
    await button.waitFor({ state: 'visible', timeout: WAIT_MS });
    // tryItOutEnabled makes the button start as "Cancel" (already trying out).
    if ((await button.innerText()).trim() === 'Try it out') await button.click({ timeout: WAIT_MS });
    await block.locator('button.execute').waitFor({ state: 'visible', timeout: WAIT_MS });
    return block;
  }

  /** Types `value` into a parameter's input (query, path or header). */
  async fillParameter(block: Locator, name: string, value: string): Promise<void> {
    await block.locator(`tr[data-param-name="${name}"] input`).first().fill(value, { timeout: WAIT_MS });
  }

  /** The parameters that hold a value, as the page shows them (swagger-ui pre-fills `example`s). */
  async filledParameters(block: Locator): Promise<Record<string, string>> {
    const filled: Record<string, string> = {};
    for (const row of await block.locator('tr[data-param-name]').all()) {
      const name = await row.getAttribute('data-param-name');
      const field = row.locator('input, select').first();
      if (!name || (await field.count()) === 0) continue;
      const value = await field.inputValue({ timeout: WAIT_MS });
      if (value !== '') filled[name] = value;
    }
    return filled;
  }

  /** Empties every parameter except `keep`, as a person would before sending only what they chose. */
  async clearParameters(block: Locator, keep: string[] = []): Promise<void> {
    for (const row of await block.locator('tr[data-param-name]').all()) {
      const name = await row.getAttribute('data-param-name');
      if (!name || keep.includes(name)) continue;
      for (const input of await row.locator('input').all()) await input.fill('', { timeout: WAIT_MS });
      for (const select of await row.locator('select').all()) await select.selectOption('', { timeout: WAIT_MS });
    }
  }

  /** The request body exactly as pre-filled in the page (the spec's first example). */
  async requestBodyText(block: Locator): Promise<string> {
    return block.locator('textarea.body-param__text').inputValue({ timeout: WAIT_MS });
  }

  /** Replaces the request body text in the page. */
  async fillRequestBody(block: Locator, text: string): Promise<void> {
    await block.locator('textarea.body-param__text').fill(text, { timeout: WAIT_MS });
  }

  /** The "Server response" part of an operation: the request as curl, its URL, the status and the body. */
  liveResponse(block: Locator): Locator {
    return block.locator('.live-responses-table').locator('xpath=..');
  }

  /** Clears any earlier answer, clicks Execute and waits for the page to show the new live response. */
  async execute(block: Locator): Promise<LiveResponse> {
    const clear = block.locator('button.btn-clear');
    if (await clear.isVisible()) await clear.click({ timeout: WAIT_MS });
    const live = block.locator('.live-responses-table .response').first();
    await live.waitFor({ state: 'detached', timeout: WAIT_MS });
    await block.locator('button.execute').click({ timeout: WAIT_MS });
    await live.waitFor({ state: 'visible', timeout: WAIT_MS });
    const statusText = (await live.locator('.response-col_status').first().innerText({ timeout: WAIT_MS })).trim();
    // The response body is the highlighted block; without one (a failed fetch) the cell's text says why.
    const bodyBlock = live.locator('.response-col_description .highlight-code pre').first();
    const body = (await bodyBlock.count()) > 0 ? await bodyBlock.innerText({ timeout: WAIT_MS }) : await live.locator('.response-col_description').innerText({ timeout: WAIT_MS });
    const requestUrl = (await this.liveResponse(block).locator('.request-url pre').first().innerText({ timeout: WAIT_MS })).trim();
    return { statusText, status: Number.parseInt(statusText, 10), body, requestUrl };
  }
}

/** Parses a JSON object the page showed; the test fails with the text when it is not one. */
export function parseShownJson(t: Test, text: string, what: string): Record<string, unknown> | unknown[] | undefined {
  try {
    const value: unknown = JSON.parse(text);
    if (value && typeof value === 'object') return value as Record<string, unknown> | unknown[];
  } catch {
    // reported below
  }
  t.fail(`${what}: the page did not show JSON`, { found: text });
  return undefined;
}
