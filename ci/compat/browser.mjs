// Opens casefile's GraphiQL in headless Chromium, runs the default query, then runs a
// caseEvents subscription and waits for a message another client posts to show up.
//
//   node browser.mjs <base url> <token>
//
// Fails when the page asks any other host for anything (data: and blob: URLs aside), when
// a request of the page fails or answers 4xx/5xx, when the browser reports a Content
// Security Policy violation or a script error, or when running the default query does not
// show admin@localhost in the result pane. Leaves a screenshot in target/ci/graphiql.png
// (or $CASEFILE_SCREENSHOT), relative to the current directory.
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const [baseArg, token] = process.argv.slice(2);
if (!baseArg || !token) {
  console.error('usage: node browser.mjs <base url> <token>');
  process.exit(2);
}

const base = new URL(baseArg);
const screenshot = path.resolve(process.env.CASEFILE_SCREENSHOT || 'target/ci/graphiql.png');
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const EMAIL = 'admin@localhost';
const TIMEOUT_MS = 30_000;

const problems = [];
const requests = [];

function checkUrl(kind, raw) {
  const url = new URL(raw);
  if (url.protocol === 'data:' || url.protocol === 'blob:') return;
  requests.push(`${kind} ${raw}`);
  const sameHost = url.host === base.host;
  const knownScheme = ['http:', 'https:', 'ws:', 'wss:'].includes(url.protocol);
  if (!sameHost || !knownScheme) problems.push(`${kind} to another host: ${raw}`);
}

const userDataDir = await mkdtemp(path.join(tmpdir(), 'casefile-browser-'));
let context;
try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    viewport: { width: 1280, height: 800 },
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
  context.setDefaultTimeout(TIMEOUT_MS);
  context.on('request', (request) => checkUrl(request.method(), request.url()));
  context.on('requestfailed', (request) => {
    const url = request.url();
    if (!url.startsWith('data:') && !url.startsWith('blob:')) {
      problems.push(`request failed: ${request.method()} ${url} (${request.failure()?.errorText})`);
    }
  });
  context.on('response', (response) => {
    if (response.status() >= 400) problems.push(`HTTP ${response.status()} for ${response.request().method()} ${response.url()}`);
  });

  const page = context.pages()[0] ?? (await context.newPage());
  page.on('websocket', (socket) => checkUrl('WebSocket', socket.url()));
  page.on('pageerror', (error) => problems.push(`script error: ${error.message}`));
  page.on('console', (message) => {
    const text = message.text();
    if (message.type() === 'error' && /Content Security Policy|Refused to/i.test(text)) {
      problems.push(`CSP violation: ${text}`);
    }
  });

  const start = new URL('/', base);
  start.hash = `token=${encodeURIComponent(token)}`;
  console.log(`opening ${new URL('/', base)}#token=…`);
  await page.goto(start.toString(), { waitUntil: 'load' });

  const after = new URL(page.url());
  if (after.hash.includes('token=')) problems.push(`the token stayed in the URL: ${after.hash.slice(0, 12)}…`);
  else console.log('token taken from the URL fragment and removed from the address bar');

  await page.locator('.graphiql-container').waitFor();
  const editor = page.locator('.graphiql-query-editor');
  await editor.waitFor();
  const lines = await editor.locator('.CodeMirror-line').allInnerTexts();
  const query = lines.join(' ').replace(/\s+/g, ' ').trim();
  if (!/viewer \{ email/.test(query)) problems.push(`unexpected default query: ${query}`);
  else console.log(`default query: ${query}`);

  await page.locator('.graphiql-execute-button').click();
  console.log('clicked GraphiQL\'s run button');
  const result = page.locator('.result-window');
  try {
    await page.waitForFunction(
      (email) => document.querySelector('.result-window')?.textContent?.includes(email),
      EMAIL,
      { timeout: TIMEOUT_MS },
    );
    console.log(`result pane shows ${EMAIL}`);
  } catch {
    problems.push(`the result pane never showed ${EMAIL}: ${(await result.innerText().catch(() => '')).slice(0, 500)}`);
  }

  // A subscription: caseEvents of a new case, run in GraphiQL; another client (this
  // script, over HTTP) posts a message, and the result pane must show it as it arrives.
  const api = new URL('/graphql', base).toString();
  const call = async (query, variables) => {
    const response = await fetch(api, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query, variables }),
    });
    const body = await response.json();
    if (body.errors) throw new Error(JSON.stringify(body.errors));
    return body.data;
  };
  const created = await call('mutation($i: CreateCaseInput!) { createCase(input: $i) { case { id } } }', {
    i: { name: `GraphiQL live ${Date.now() % 100000}` },
  });
  const caseId = created.createCase.case.id;
  const subscription = `subscription { caseEvents(caseId: "${caseId}") { kind message { body } } }`;
  await page.evaluate((text) => {
    const editor = document.querySelector('.graphiql-query-editor .CodeMirror');
    editor.CodeMirror.setValue(text);
  }, subscription);
  await page.locator('.graphiql-execute-button').click();
  console.log('running caseEvents in GraphiQL');
  await page.waitForTimeout(1500);
  const body = `posted by another client at ${new Date().toISOString()}`;
  const posted = Date.now();
  await call('mutation($i: PostMessageInput!) { postMessage(input: $i) { message { id } } }', { i: { caseId, body } });
  try {
    await page.waitForFunction(
      (text) => document.querySelector('.result-window')?.textContent?.includes(text),
      body,
      { timeout: TIMEOUT_MS },
    );
    console.log(`result pane shows the MESSAGE_POSTED event ${Date.now() - posted} ms after the post`);
  } catch {
    problems.push(`the result pane never showed the posted message: ${(await result.innerText().catch(() => '')).slice(0, 500)}`);
  }

  await mkdir(path.dirname(screenshot), { recursive: true });
  await page.screenshot({ path: screenshot });
  console.log(`screenshot: ${screenshot}`);
} catch (error) {
  problems.push(`browser check broke: ${error.message}`);
} finally {
  await context?.close().catch(() => {});
  await rm(userDataDir, { recursive: true, force: true }).catch(() => {});
}

console.log(`requests (${requests.length}):`);
for (const request of requests) console.log(`  ${request}`);
for (const problem of problems) console.log(`FAIL ${problem}`);
console.log(`browser: ${problems.length === 0 ? 'ok' : `${problems.length} problem(s)`}`);
process.exit(problems.length === 0 ? 0 : 1);
