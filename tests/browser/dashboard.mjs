// dashboard.mjs - drives Debian's chromium (playwright-core) through the
// operator dashboard of a running system. Run by
// tests/integration/test_dashboard.py, which starts the api, a worker, the
// webhook daemon and the fee engine and passes:
//   RAMPART_URL   the api, e.g. http://127.0.0.1:8080
//   RAMPART_KEY   a valid API key
//   OUT_DIR       where the screenshot (dashboard.png) goes
// Prints one JSON line with what it saw; exits non-zero on any failed check.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const BASE = process.env.RAMPART_URL;
const KEY = process.env.RAMPART_KEY;
const OUT = process.env.OUT_DIR;
const WAIT_MS = Number(process.env.WAIT_MS || 60000);
const HAPPY = ['PENDING', 'ONRAMP_PENDING', 'ONRAMP_COMPLETE', 'OFFRAMP_PENDING', 'COMPLETED'];

function check(cond, what) {
  if (!cond) throw new Error('check failed: ' + what);
}

async function apiCall(method, path, body, extra = {}) {
  const res = await fetch(BASE + path, {
    method,
    headers: { Authorization: 'Bearer ' + KEY, 'Content-Type': 'application/json', ...extra },
    body: body ? JSON.stringify(body) : undefined,
  });
  const json = await res.json();
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

const profile = mkdtempSync(join(tmpdir(), 'rampart-chromium-'));
const urls = [];
let context;
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--no-first-run'],
    viewport: { width: 1440, height: 1000 },
    deviceScaleFactor: 1,
  });
  context.on('request', (r) => urls.push(r.url()));
  const page = context.pages()[0] || (await context.newPage());
  const consoleErrors = [];
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));

  // 1. Without a key: the prompt and nothing else, no API call.
  await page.goto(BASE + '/dashboard');
  await page.locator('#key').waitFor({ state: 'visible' });
  check(await page.locator('#app').isHidden(), 'the dashboard is hidden without a key');
  check(await page.locator('#status-bar').isHidden(), 'the status bar is hidden without a key');
  await page.waitForTimeout(500);
  check(!urls.some((u) => u.includes('/v1/')), 'no API request before a key: ' + urls.join(' '));

  // 2. The key: the dashboard shows and fills in.
  await page.fill('#key', KEY);
  await page.click('#login-submit');
  await page.locator('#app').waitFor({ state: 'visible' });
  await page.waitForFunction(() => document.querySelector('#state-COMPLETED .n').textContent !== '–');
  check(await page.locator('#login').isHidden(), 'the prompt is gone');
  check(await page.evaluate(() => sessionStorage.getItem('rampart.apiKey')) === KEY, 'key in sessionStorage');
  check(await page.evaluate(() => localStorage.length) === 0, 'nothing in localStorage');

  // 3. A payment through the API (quote, then payment with an Idempotency-Key).
  const quote = await apiCall('POST', '/v1/quotes', { from_currency: 'USD', to_currency: 'EUR', amount: 250000 });
  const pay = await apiCall('POST', '/v1/payments', {
    quote_id: quote.id, source_account: 'acct_src_dashboard', destination_account: 'acct_dest_dashboard',
  }, { 'Idempotency-Key': 'dashboard-' + Date.now() });
  const row = page.locator(`#payments tr[data-id="${pay.id}"]`);
  await row.waitFor({ state: 'attached', timeout: WAIT_MS });
  const rowHandle = await row.elementHandle();
  await page.waitForFunction((id) => {
    const tr = document.querySelector(`#payments tr[data-id="${id}"]`);
    return tr && tr.cells[1].textContent === 'COMPLETED';
  }, pay.id, { timeout: WAIT_MS });
  // Updated in place: the row seen first is the row that turned COMPLETED.
  check(await rowHandle.evaluate((el) => el.isConnected && el.cells[1].textContent === 'COMPLETED'),
    'the payment row was updated in place');

  // 4. Its detail view: the timeline holds every state, the events their deliveries.
  await row.click();
  await page.locator('#detail').waitFor({ state: 'visible' });
  await page.waitForFunction((states) => {
    const got = Array.from(document.querySelectorAll('#d-timeline li'), (li) => li.dataset.status);
    return states.every((s) => got.includes(s));
  }, HAPPY, { timeout: WAIT_MS });
  const timeline = await page.$$eval('#d-timeline li', (lis) => lis.map((li) => li.dataset.status));
  check(JSON.stringify(timeline) === JSON.stringify(HAPPY), 'timeline in order: ' + timeline);
  await page.waitForFunction(() => /payment\.completed/.test(document.querySelector('#d-events').textContent)
      && /delivered/.test(document.querySelector('#d-events').textContent), null, { timeout: WAIT_MS });

  // 5. A refresh keeps the open detail view, the same row nodes and the
  // scroll position.
  await page.evaluate(() => window.scrollTo(0, 300));
  const scrolled = await page.evaluate(() => window.scrollY);
  check(scrolled > 0, 'the page scrolls (detail view open)');
  const before = await page.locator('#updated').textContent();
  await page.waitForFunction((b) => document.querySelector('#updated').textContent !== b, before,
    { timeout: 15000 });
  await page.waitForTimeout(300);
  check(await page.locator('#detail').isVisible(), 'the detail view stays open across refreshes');
  check(await rowHandle.evaluate((el) => el.isConnected), 'the row survives a refresh');
  check(await page.evaluate(() => window.scrollY) === scrolled, 'the scroll position stays');
  await page.evaluate(() => window.scrollTo(0, 0));
  const summary = {
    completed: await page.locator('#state-COMPLETED .n').textContent(),
    webhook: await page.locator('#wh-rate').textContent(),
    fees_ai: await page.locator('#fee-ai').textContent(),
    fees_fallback: await page.locator('#fee-fallback').textContent(),
    market_rows: await page.locator('#market tbody tr').count(),
    rows: await page.locator('#payments tbody tr').count(),
  };
  await page.screenshot({ path: join(OUT, 'dashboard.png'), fullPage: true });

  // 6. Thousands of payments: one bounded page at a time, paged by cursor.
  const total = Number((await page.locator('#total').textContent()).split(' ')[0]);
  check(total >= Number(process.env.MIN_TOTAL || 0), 'the summary counts every payment: ' + total);
  check(summary.rows === 25, 'one page of 25 rows: ' + summary.rows);
  check(await page.locator('#older').isEnabled(), 'older pages exist');
  await page.click('#older');
  await page.waitForFunction(() => document.querySelector('#page').textContent === 'page 2'
      && document.querySelectorAll('#payments tbody tr').length === 25, null, { timeout: 15000 });
  check(await row.count() === 0, 'page 2 does not hold the newest payment');
  await page.click('#newer');
  await page.waitForFunction((id) => document.querySelector('#page').textContent === 'page 1'
      && document.querySelector(`#payments tr[data-id="${id}"]`), pay.id, { timeout: 15000 });

  // 7. A key the API refuses: back to the prompt, the key forgotten.
  await page.evaluate(() => sessionStorage.setItem('rampart.apiKey', 'sk_refused_by_the_api'));
  await page.reload();
  await page.locator('#login-error').waitFor({ state: 'visible' });
  const err = await page.locator('#login-error').textContent();
  check(/401/.test(err), 'the prompt says the key was refused: ' + err);
  check(await page.locator('#app').isHidden(), 'nothing shown after a 401');
  check(await page.evaluate(() => sessionStorage.getItem('rampart.apiKey')) === null, 'refused key forgotten');

  // 8. Neither key ever in a URL; nothing requested from another origin.
  for (const u of urls) {
    check(!u.includes(KEY) && !u.includes('sk_refused_by_the_api'), 'key in URL ' + u);
    check(u.startsWith(BASE + '/'), 'request to another origin: ' + u);
  }
  check(consoleErrors.filter((e) => !/401/.test(e)).length === 0, 'console errors: ' + consoleErrors.join(' | '));
  console.log(JSON.stringify({ ok: true, payment: pay.id, timeline, summary, total, requests: urls.length }));
} finally {
  if (context) await context.close();
  rmSync(profile, { recursive: true, force: true });
}
