// The fault page (/admin/faults) in a real headless browser: Debian's Chromium driven by
// playwright-core, against the real shop (`ecommerce serve --role all --admin-token ...`).
//
//   node tests/browser/faults.mjs          (after `npm ci` in web/ and `cargo build`)
//
// Once in a phone-sized window (375 px) and once in a desktop window (1440 px), each in its own
// browser context: sign in with the admin token (a wrong one first, at 375 px: the shop's
// refusal is shown and nothing is kept); the token is in sessionStorage only, never in a cookie
// or the address; every fault of the catalog is listed; switch payment-failure=1 on and Apply
// (at 1440 px with the keyboard only: Tab to the switch, Space, the value, Tab to Apply,
// Enter; the focus is visible on the way); the page shows it live and landed on every process
// it lists; the shop's own GET /api/v1/admin/faults says the same; switch it off again, and
// sign out. Every page is free of sideways scrolling, Content-Security-Policy violations,
// script errors and requests to other hosts. Screenshots go to test-output/screenshots/.
//
// Environment: ECOMMERCE_BIN (default target/debug/ecommerce), BASE_PORT (default: the first
// free block of 7 ports from 18680), CHROMIUM (default /usr/bin/chromium), SCREENSHOTS.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { atEachWidth, check, log, ok, pickBase, tally } from './harness.mjs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const require = createRequire(path.join(ROOT, 'web/package.json'));
const { chromium } = require('playwright-core');

const BIN = process.env.ECOMMERCE_BIN || path.join(ROOT, 'target/debug/ecommerce');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SHOTS = process.env.SCREENSHOTS || path.join(ROOT, 'test-output/screenshots');
const TIMEOUT = 15_000;
// A process reports what it applied within about 2 s; the page reads it every 2 s.
const LANDING_TIMEOUT = 20_000;
const TOKEN = randomBytes(18).toString('base64url');
const FAULT = 'payment-failure';
const SPEC = 'payment-failure=1';

// ---- the shop: one process running every role ----

async function startShop(base) {
  if (!existsSync(BIN)) throw new Error(`${BIN} is missing: run cargo build first`);
  // --listen with every role: the web-gateway there, the others on the next six ports.
  const args = ['serve', '--role', 'all', '--listen', `127.0.0.1:${base}`, '--admin-token', TOKEN, '--session-secret', 'x'];
  log(`starting the shop: ${path.relative(ROOT, BIN)} serve --role all --listen 127.0.0.1:${base} --admin-token ***`);
  const env = { ...process.env, RUST_LOG: process.env.RUST_LOG || 'warn' };
  delete env.ECOMMERCE_ADMIN_TOKEN;
  delete env.ECOMMERCE_FAULT_STATE;
  delete env.ECOMMERCE_FAULTS;
  const child = spawn(BIN, args, { env, stdio: ['ignore', 'inherit', 'inherit'] });
  const stop = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the shop exited with ${child.exitCode}`);
    const r = await fetch(`http://127.0.0.1:${base}/readyz`, { signal: AbortSignal.timeout(2000) }).catch(() => null);
    if (r?.status === 200) break;
    if (Date.now() > deadline) {
      stop();
      throw new Error('the shop was not ready within 30 s');
    }
    await new Promise((res) => setTimeout(res, 250));
  }
  return { stop };
}

/** The shop's own word: GET /api/v1/admin/faults with the token. */
async function shopFaults(origin) {
  const r = await fetch(origin + '/api/v1/admin/faults', {
    headers: { Authorization: `Bearer ${TOKEN}`, Accept: 'application/json' },
    signal: AbortSignal.timeout(5000),
  });
  if (r.status !== 200) throw new Error(`GET /api/v1/admin/faults answered ${r.status}`);
  return r.json();
}

/** Waits until the shop's state holds `want` on every process at its version. */
async function shopSays(origin, want) {
  const deadline = Date.now() + LANDING_TIMEOUT;
  let s;
  for (;;) {
    s = await shopFaults(origin);
    const has = (list) => (want === null ? !list.some((f) => f.startsWith(FAULT)) : list.includes(want));
    const ok =
      has(s.faults) && s.processes.length > 0 && s.processes.every((p) => p.version === s.version && has(p.faults));
    if (ok) return s;
    if (Date.now() > deadline) return s;
    await new Promise((res) => setTimeout(res, 500));
  }
}

// ---- the page ----
async function run(browser, origin, width) {
  const name = width < 800 ? 'phone' : 'desktop';
  const keyboard = name === 'desktop';
  const context = await browser.newContext({
    viewport: { width, height: width < 800 ? 812 : 900 },
    deviceScaleFactor: 1,
    hasTouch: width < 800,
  });
  context.setDefaultTimeout(TIMEOUT);
  const foreign = [];
  const problems = [];
  const csp = [];
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith(origin + '/') || url.startsWith('data:')) return route.continue();
    foreign.push(url);
    return route.abort();
  });
  await context.exposeBinding('__cspViolation', (_source, v) => csp.push(v));
  await context.addInitScript(() => {
    document.addEventListener(
      'securitypolicyviolation',
      (e) => window.__cspViolation?.(`${e.effectiveDirective} blocked ${e.blockedURI || '(inline)'} at ${e.sourceFile}:${e.lineNumber}`),
      true,
    );
  });
  const page = await context.newPage();
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) csp.push(m.text());
    // Chromium logs every HTTP error status (the wrong token's 401) as "Failed to load resource".
    else if (m.type() === 'error' && !/^Failed to load resource/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  const urls = [];
  page.on('request', (r) => urls.push(r.url()));

  let shot = 0;
  const screenshot = async (label) => {
    const file = path.join(SHOTS, `faults-${name}-${width}-${String(++shot).padStart(2, '0')}-${label}.png`);
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: file, fullPage: true });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(overflow <= 0, `[${name}] ${label}: no sideways scrolling at ${width} px`, `${overflow}px too wide`);
  };
  const focused = () =>
    page.evaluate(() => {
      const el = document.activeElement;
      if (!el || el === document.body) return '(body)';
      const label = el.getAttribute('aria-labelledby');
      const named = label ? document.getElementById(label)?.textContent : el.getAttribute('aria-label');
      return `${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}[${(named || el.textContent || '').trim().slice(0, 40)}]`;
    });
  /** Presses Tab until `locator` has the focus (at most `max` times); returns how many. */
  const tabTo = async (locator, what, max = 120) => {
    for (let n = 1; n <= max; n++) {
      await page.keyboard.press('Tab');
      if (await locator.evaluate((el) => el === document.activeElement)) return n;
    }
    throw new Error(`[${name}] Tab never reached ${what} (focus is on ${await focused()})`);
  };
  const focusVisible = (locator) =>
    locator.evaluate((el) => {
      const s = getComputedStyle(el);
      return el.matches(':focus-visible') && s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0;
    });

  // The page, and signing in.
  await page.goto(origin + '/admin/faults');
  await page.getByRole('heading', { level: 1, name: 'Faults' }).waitFor();
  const tokenField = page.getByLabel('Admin token');
  await tokenField.waitFor();
  check((await tokenField.getAttribute('type')) === 'password', `[${name}] the sign-in asks for the admin token in a password field`);
  await screenshot('sign-in');
  if (!keyboard) {
    // One wrong token (the shop locks an address out after a few).
    await tokenField.fill('not-the-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    const refused = page.getByTestId('signin-error');
    await refused.waitFor();
    check(/did not accept this token/.test(await refused.textContent()), `[${name}] a wrong token is refused with a message`);
    check(
      (await page.evaluate(() => Object.keys(sessionStorage).length)) === 0,
      `[${name}] a refused token is not kept`,
    );
  }
  if (keyboard) {
    await page.keyboard.press('Tab'); // from the top of the page: skip link, header, then the field
    await tabTo(tokenField, 'the token field');
    await page.keyboard.type(TOKEN);
    await page.keyboard.press('Enter');
  } else {
    await tokenField.fill(TOKEN);
    await page.getByRole('button', { name: 'Sign in' }).click();
  }
  const switchOn = page.getByRole('switch', { name: FAULT, exact: true });
  await switchOn.waitFor();
  check(true, `[${name}] signed in: the switches are shown`);
  const stored = await page.evaluate(() => Object.values(sessionStorage));
  check(stored.includes(TOKEN), `[${name}] the token is kept in sessionStorage (this tab only)`);
  const cookies = await context.cookies();
  check(!cookies.some((c) => c.value.includes(TOKEN)), `[${name}] no cookie holds the token`);
  check(!urls.some((u) => u.includes(TOKEN)) && !page.url().includes(TOKEN), `[${name}] no address holds the token`);

  // Every fault of the shop's catalog is on the page, with what it does and where it shows.
  const before = await shopFaults(origin);
  const cards = page.locator('li[data-fault]');
  check(
    (await cards.count()) === before.catalog.length,
    `[${name}] every fault of the catalog is listed (${before.catalog.length})`,
    `${await cards.count()} on the page`,
  );
  const pf = before.catalog.find((c) => c.name === FAULT);
  const card = page.locator(`li[data-fault="${FAULT}"]`);
  check(
    (await card.textContent()).includes(pf.what) && (await card.textContent()).includes(pf.shows),
    `[${name}] ${FAULT} says what it does and where it shows`,
  );
  check((await switchOn.getAttribute('aria-checked')) === 'false', `[${name}] ${FAULT} starts off`);
  await screenshot('signed-in');

  // Switch payment-failure=1 on and Apply.
  const value = card.getByLabel(/Share, 0 to 1/);
  const apply = page.getByTestId('apply');
  if (keyboard) {
    const presses = await tabTo(switchOn, `the ${FAULT} switch`);
    check(await focusVisible(switchOn), `[${name}] keyboard: Tab reaches the ${FAULT} switch (${presses} Tab${presses === 1 ? '' : 's'}), its focus visible`);
    await page.keyboard.press('Space');
    check((await switchOn.getAttribute('aria-checked')) === 'true', `[${name}] keyboard: Space switches it on`);
    await page.keyboard.press('Enter');
    check((await switchOn.getAttribute('aria-checked')) === 'false', `[${name}] keyboard: Enter switches it too (off again)`);
    await page.keyboard.press('Space');
    await page.keyboard.press('Tab');
    check(await value.evaluate((el) => el === document.activeElement), `[${name}] keyboard: the next Tab is its value`);
    await page.keyboard.press('ControlOrMeta+A');
    await page.keyboard.type('1');
    await tabTo(apply, 'Apply');
    check(await focusVisible(apply), `[${name}] keyboard: Tab reaches Apply, its focus visible`);
    await page.keyboard.press('Enter');
  } else {
    await switchOn.click();
    await value.fill('1');
    await apply.click();
  }
  await page.getByTestId('apply-status').filter({ hasText: `Applied: ${SPEC}` }).waitFor();
  check(true, `[${name}] Apply says ${SPEC} is applied`);
  const live = page.getByTestId('live-faults');
  check((await live.textContent()).includes(SPEC), `[${name}] "Live now" shows ${SPEC}`);

  // Landed on every process the page lists.
  await page.waitForFunction(
    (spec) => {
      const rows = [...document.querySelectorAll('[data-testid=process]')];
      return (
        rows.length > 0 &&
        rows.every(
          (r) => r.dataset.landed === 'true' && r.querySelector('[data-testid=process-faults]')?.textContent.includes(spec),
        )
      );
    },
    SPEC,
    { timeout: LANDING_TIMEOUT },
  );
  const rows = await page.locator('[data-testid=process]').count();
  check(true, `[${name}] every process listed (${rows}) has applied ${SPEC} at the state's version`);
  check(/has landed on (all \d+ processes|the only process)/.test(await page.getByTestId('landing').textContent()), `[${name}] the page says the version has landed everywhere`);
  const on = await shopSays(origin, SPEC);
  check(
    on.faults.includes(SPEC) && on.processes.every((p) => p.version === on.version && p.faults.includes(SPEC)),
    `[${name}] the shop's GET /api/v1/admin/faults says ${SPEC} is on, applied by every process (version ${on.version})`,
    JSON.stringify({ faults: on.faults, version: on.version, processes: on.processes }),
  );
  check(rows === on.processes.length, `[${name}] the page lists every process the shop reports (${rows})`);
  await screenshot('payment-failure-on');

  // And off again.
  await switchOn.click();
  check((await switchOn.getAttribute('aria-checked')) === 'false', `[${name}] the switch goes off`);
  await apply.click();
  await page.getByTestId('apply-status').filter({ hasText: 'Applied: every fault is off' }).waitFor();
  await page.waitForFunction(
    () => {
      const rows = [...document.querySelectorAll('[data-testid=process]')];
      return rows.length > 0 && rows.every((r) => r.dataset.landed === 'true' && !r.textContent.includes('payment-failure'));
    },
    null,
    { timeout: LANDING_TIMEOUT },
  );
  check((await live.textContent()).includes('No fault is on'), `[${name}] switched off: "Live now" shows no fault`);
  const off = await shopSays(origin, null);
  check(
    off.faults.length === 0 && off.processes.every((p) => p.version === off.version && p.faults.length === 0),
    `[${name}] the shop says every fault is off, on every process (version ${off.version})`,
    JSON.stringify({ faults: off.faults, processes: off.processes }),
  );
  await screenshot('all-off');

  if (name === 'desktop') {
    // A preset scenario: started, shown step by step, live in the shop, aborted.
    await page.getByRole('button', { name: 'Cart outage' }).click();
    await page.getByRole('button', { name: 'Start scenario' }).click();
    const progress = page.getByTestId('scenario-progress');
    await progress.filter({ hasText: 'Running' }).waitFor();
    await progress.locator('li.step.active').filter({ hasText: 'cart-data-outage' }).waitFor();
    check(/Active: (\d+ m )?\d+ s left/.test(await progress.textContent()), `[${name}] a started scenario shows its active step and the time left`);
    await live.filter({ hasText: 'cart-data-outage' }).waitFor({ timeout: LANDING_TIMEOUT });
    const during = await shopSays(origin, null);
    check(during.faults.includes('cart-data-outage'), `[${name}] the shop says the scenario's cart-data-outage is live`, JSON.stringify(during.faults));
    await screenshot('scenario-running');
    await page.getByRole('button', { name: 'Abort scenario' }).click();
    await progress.filter({ hasText: 'Aborted' }).waitFor();
    await live.filter({ hasText: 'No fault is on' }).waitFor({ timeout: LANDING_TIMEOUT });
    check((await shopFaults(origin)).faults.length === 0, `[${name}] aborting the scenario switches its faults off in the shop`);

    // The synthetic traffic level, read back from the shop's GET /api/v1/traffic (no token).
    const traffic = async () => (await (await fetch(origin + '/api/v1/traffic')).json()).level;
    await page.getByLabel('Traffic level, 0 to 10').fill('2.5');
    await page.getByRole('button', { name: 'Set traffic' }).click();
    await page.getByTestId('traffic-level').filter({ hasText: '2.5×' }).waitFor();
    check((await traffic()) === 2.5, `[${name}] the traffic level set on the page is the shop's (2.5)`);
    await page.getByLabel('Traffic level, 0 to 10').fill('1');
    await page.getByRole('button', { name: 'Set traffic' }).click();
    await page.getByTestId('traffic-level').filter({ hasText: /^1×$/ }).waitFor();
    check((await traffic()) === 1, `[${name}] and back to the normal load (1)`);
  }

  // Signing out forgets the token.
  await page.getByRole('button', { name: 'Sign out' }).click();
  await tokenField.waitFor();
  check(
    !(await page.evaluate(() => Object.values(sessionStorage))).includes(TOKEN),
    `[${name}] sign-out removes the token from the tab`,
  );

  check(csp.length === 0, `[${name}] no Content-Security-Policy violation`, csp.join(' | '));
  check(foreign.length === 0, `[${name}] no request to any host but the shop`, foreign.join(', '));
  check(problems.length === 0, `[${name}] no script errors in the page`, problems.join(' | '));
  await context.close();
}

async function main() {
  log('the fault page in headless Chromium');
  mkdirSync(SHOTS, { recursive: true });
  const base = await pickBase(18680, 19200);
  const shop = await startShop(base);
  try {
    await atEachWidth(chromium, CHROMIUM, `http://127.0.0.1:${base}`, 'the fault page', run);
  } finally {
    shop.stop();
  }
  log(`screenshots in ${path.relative(ROOT, SHOTS)}/`);
}

main().then(
  () => console.log(`${tally.passed} passed, 0 failed`),
  (e) => {
    console.error(`FAIL ${e.message}`);
    console.log(`${tally.passed} passed, 1 failed`);
    process.exitCode = 1;
  },
);
