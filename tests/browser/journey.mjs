// The shop in a real headless browser: Debian's Chromium driven by playwright-core, against
// the shop running as separate processes (one per role, scripts/topology.sh).
//
//   node tests/browser/journey.mjs          (after `npm ci` in web/ and `cargo build`)
//
// It plays the shopper's journey once in a phone-sized window (375 px) and once in a desktop
// window (1440 px), each in its own browser context (its own session and cart):
// home with six best-rated drinks and their images, search suggestions for "swe", add
// Sweet Tea to the cart, the cart and its subtotal, a declined card (error shown, cart kept),
// a good card, the confirmation with the amount (also after a reload), the cart empty again,
// and the not-found page. Screenshots of every page go to test-output/screenshots/.
// It also measures the first load's size (HTML, JS, CSS gzipped) and fails past 150 KB, and
// fails if the page asks any host but the shop.
// Security (SPEC §5): every kind of response the page gets (the page, its script and style,
// the API, an image) carries the web-gateway's security headers (SECURITY_HEADERS: the
// Content-Security-Policy and three more), and the page runs under that policy without a
// single violation (securitypolicyviolation events and console reports both fail it). Every
// checkout request carries an Idempotency-Key: one per order attempt, a new one for the next
// order; on the desktop run the answer to the first payment is lost on its way back (the shop
// did place the order), and the retry, with the same key, shows that same order.
//
// Environment: ECOMMERCE_BIN (default target/debug/ecommerce), BASE_PORT (default: the first
// free block of 7 ports from 18480), CHROMIUM (default /usr/bin/chromium), SCREENSHOTS.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { atEachWidth, check, log, ok, pickBase, tally } from './harness.mjs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const require = createRequire(path.join(ROOT, 'web/package.json'));
const { chromium } = require('playwright-core');

const BIN = process.env.ECOMMERCE_BIN || path.join(ROOT, 'target/debug/ecommerce');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SHOTS = process.env.SCREENSHOTS || path.join(ROOT, 'test-output/screenshots');
const TOPOLOGY_DIR = path.join(ROOT, 'target/topology-browser');
const BUDGET = 150 * 1024;
const TIMEOUT = 15_000;
const ROLES = ['web-gateway', 'api-gateway', 'cart', 'checkout', 'content', 'payment', 'product'];

// The headers the web-gateway sends on every response (SPEC §5, web-gateway).
const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'same-origin',
};
// What the shop accepts as an Idempotency-Key.
const IDEMPOTENCY_KEY = /^[A-Za-z0-9_-]{1,128}$/;
// Every CSP violation seen, to explain a journey that fails further on because of one.
const cspSeen = [];

/** A CSP as directive name -> its sources in order ("default-src" -> "'self'"). */
const cspDirectives = (policy) =>
  new Map(
    policy
      .split(';')
      .map((d) => d.trim().split(/\s+/))
      .filter((d) => d[0])
      .map(([n, ...v]) => [n.toLowerCase(), v.join(' ')]),
  );

/** What is wrong with a response's security headers: [] when they are all as SECURITY_HEADERS. */
function securityHeaderProblems(headers) {
  const wrong = [];
  for (const [name, want] of Object.entries(SECURITY_HEADERS)) {
    const got = headers[name];
    if (got === undefined) wrong.push(`${name} is missing`);
    else if (name === 'content-security-policy') {
      const g = cspDirectives(got);
      const w = cspDirectives(want);
      const same = g.size === w.size && [...w].every(([d, v]) => g.get(d) === v);
      if (!same) wrong.push(`${name} is "${got}", not "${want}"`);
    } else if (got.trim().toLowerCase() !== want.toLowerCase()) wrong.push(`${name} is "${got}", not "${want}"`);
  }
  return wrong;
}

let failed = 0;

// ---- the first load's size ----
function bundleSize() {
  const dir = path.join(ROOT, 'assets/web');
  const html = readFileSync(path.join(dir, 'index.html'), 'utf8');
  const refs = [...html.matchAll(/(?:src|href)="(\/[^"]+\.(?:js|css))"/g)].map((m) => m[1]);
  const files = ['/index.html', ...new Set(refs)];
  let total = 0;
  for (const f of files) {
    const bytes = readFileSync(path.join(dir, f));
    const gz = gzipSync(bytes, { level: 9 }).length;
    total += gz;
    log(`     ${f.padEnd(32)} ${String(bytes.length).padStart(7)} B  gzip -9 ${String(gz).padStart(6)} B`);
  }
  log(`     first load (HTML + JS + CSS), gzipped: ${(total / 1024).toFixed(1)} KB of ${BUDGET / 1024} KB allowed`);
  check(total < BUDGET, `first load is under 150 KB gzipped (${(total / 1024).toFixed(1)} KB)`);
  return files;
}

// ---- the shop, as separate processes ----

const topology = path.join(ROOT, 'scripts/topology.sh');
async function startShop(base) {
  if (!existsSync(BIN)) throw new Error(`${BIN} is missing: run cargo build first`);
  const env = {
    ...process.env,
    BASE_PORT: String(base),
    ECOMMERCE_BIN: BIN,
    PAYMENT_DELAY_MS: '300', // long enough to see the button disabled, short enough to be quick
    TOPOLOGY_DIR,
    RUST_LOG: process.env.RUST_LOG || 'warn',
  };
  if (existsSync(topology)) {
    log(`starting the shop: scripts/topology.sh start (BASE_PORT=${base}, ${path.relative(ROOT, BIN)})`);
    const r = spawnSync('bash', [topology, 'start', '--stores', 'memory'], { env, stdio: 'inherit' });
    if (r.status !== 0) throw new Error('scripts/topology.sh start failed');
    return { stop: () => spawnSync('bash', [topology, 'stop'], { env, stdio: 'inherit' }) };
  }
  // No topology script: start each role ourselves, wired as a deployment is.
  log(`starting the shop: 7 processes of ${path.relative(ROOT, BIN)} from port ${base}`);
  const port = (role) => base + ROLES.indexOf(role);
  const api = `http://127.0.0.1:${port('api-gateway')}`;
  const children = [];
  for (const role of ROLES) {
    const args = ['serve', '--role', role, '--listen', `127.0.0.1:${port(role)}`, '--session-secret', 'x'];
    if (role === 'web-gateway' || role === 'checkout') args.push('--api-gateway-url', api);
    if (role === 'api-gateway')
      for (const up of ['cart', 'checkout', 'content', 'payment', 'product'])
        args.push('--upstream', `${up}=http://127.0.0.1:${port(up)}`);
    if (role === 'payment') args.push('--payment-delay-ms', env.PAYMENT_DELAY_MS);
    children.push(spawn(BIN, args, { env, stdio: ['ignore', 'inherit', 'inherit'] }));
  }
  const stop = () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  };
  const deadline = Date.now() + 20_000;
  for (const role of ROLES) {
    for (;;) {
      const r = await fetch(`http://127.0.0.1:${port(role)}/readyz`).catch(() => null);
      if (r?.status === 200) break;
      if (Date.now() > deadline) {
        stop();
        throw new Error(`${role} not ready`);
      }
      await new Promise((res) => setTimeout(res, 200));
    }
  }
  return { stop };
}

// ---- the journey ----
async function journey(browser, origin, width) {
  const name = width < 800 ? 'phone' : 'desktop';
  const height = width < 800 ? 812 : 900;
  const context = await browser.newContext({
    viewport: { width, height },
    deviceScaleFactor: 1,
    isMobile: false,
    hasTouch: width < 800,
  });
  context.setDefaultTimeout(TIMEOUT);
  const foreign = [];
  const problems = [];
  // Any request to another host is recorded and refused.
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith(origin + '/') || url.startsWith('data:')) return route.continue();
    foreign.push(url);
    return route.abort();
  });
  // Content-Security-Policy violations: the page's securitypolicyviolation events (reported
  // from an init script, so from before the first byte of every page) and Chromium's console
  // reports of them ("Refused to ... because it violates the following Content Security
  // Policy directive ...").
  const csp = [];
  const violation = (v) => {
    csp.push(v);
    cspSeen.push(`[${name}] ${v}`);
  };
  await context.exposeBinding('__cspViolation', (_source, v) => violation(v));
  await context.addInitScript(() => {
    document.addEventListener(
      'securitypolicyviolation',
      (e) => {
        const where = `${e.sourceFile || document.URL}:${e.lineNumber}:${e.columnNumber}`;
        const what = `${e.effectiveDirective || e.violatedDirective} blocked ${e.blockedURI || '(inline)'} at ${where}`;
        const v = `securitypolicyviolation: ${what}${e.sample ? ` sample "${e.sample}"` : ''}`;
        if (typeof window.__cspViolation === 'function') window.__cspViolation(v);
        else console.error(`Content Security Policy violation: ${v}`);
      },
      true,
    );
  });
  const page = await context.newPage();
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) violation(`console ${m.type()}: ${m.text()}`);
    // Chromium logs every HTTP error status (a declined card's 400, an unknown drink's 404, the
    // simulated outage's 503) as "Failed to load resource"; the page handles those. Anything else
    // is worth reading.
    else if (m.type() === 'error' && !/^Failed to load resource/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  const noViolations = (when) =>
    check(csp.length === 0, `[${name}] no Content-Security-Policy violation ${when}`, csp.join(' | '));
  // The first response of each kind from the shop, for its security headers.
  const firstOfKind = new Map();
  page.on('response', (r) => {
    const kind = r.request().resourceType();
    if (r.url().startsWith(origin + '/') && !firstOfKind.has(kind)) firstOfKind.set(kind, r);
  });
  // The Idempotency-Key of every checkout request the page sends.
  const orderKeys = [];
  page.on('request', (r) => {
    if (r.method() === 'POST' && r.url() === origin + '/api/v1/checkout/process')
      orderKeys.push(r.headers()['idempotency-key']);
  });

  let shot = 0;
  const screenshot = async (label) => {
    const file = path.join(SHOTS, `${name}-${width}-${String(++shot).padStart(2, '0')}-${label}.png`);
    // From the top, so that a sticky header is drawn where a person sees it.
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: file, fullPage: true });
    // Readable at this width: nothing wider than the window.
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(overflow <= 0, `[${name}] ${label}: no sideways scrolling at ${width} px`, `${overflow}px too wide`);
  };
  const count = page.locator('[data-testid=cart-count]');
  const countIs = async (n) => {
    await page.waitForFunction(
      (want) => document.querySelector('[data-testid=cart-count]')?.textContent === want,
      String(n),
    );
    return (await count.textContent()) === String(n);
  };

  // Home: six best-rated drinks, every image loaded.
  const home = await page.goto(origin + '/');
  const cards = page.locator('ul.grid > li.card:not(.skel)');
  await cards.nth(5).waitFor();
  check((await cards.count()) === 6, `[${name}] home shows six products`, `${await cards.count()} shown`);
  await page.waitForFunction(
    () => {
      const imgs = [...document.querySelectorAll('ul.grid > li.card img')];
      return imgs.length === 6 && imgs.every((i) => i.complete && i.naturalWidth > 0);
    },
    null,
    { timeout: TIMEOUT },
  );
  const alts = await page.$$eval('ul.grid > li.card img', (imgs) => imgs.map((i) => i.alt));
  check(alts.every(Boolean), `[${name}] the six images loaded (naturalWidth > 0), each with alt text`, alts.join(', '));
  const cookie = (await context.cookies()).find((c) => c.name === 'session_id');
  check(!!cookie && cookie.value.includes('.'), `[${name}] the page load set a signed session_id cookie`);
  check(await countIs(0), `[${name}] header cart count is 0`);
  const pageHeaders = securityHeaderProblems(await home.allHeaders());
  check(pageHeaders.length === 0, `[${name}] the page's response carries the security headers (CSP and 3 more)`, pageHeaders.join('; '));
  for (const kind of ['script', 'stylesheet', 'fetch', 'image']) {
    const r = firstOfKind.get(kind);
    const a = /^[aeiou]/.test(kind) ? 'an' : 'a';
    check(!!r, `[${name}] the home page loaded ${a} ${kind} from the shop`);
    const wrong = securityHeaderProblems(await r.allHeaders());
    check(wrong.length === 0, `[${name}] ${a} ${kind} response carries the security headers (${new URL(r.url()).pathname})`, wrong.join('; '));
  }
  noViolations('on the home page');
  await screenshot('home');

  // Search suggestions as you type.
  const search = page.getByRole('combobox', { name: 'Search drinks' });
  await search.click();
  await search.pressSequentially('swe', { delay: 60 });
  const suggestion = page.getByRole('option', { name: /Sweet Tea/ });
  await suggestion.waitFor();
  check(true, `[${name}] typing "swe" suggests "Sweet Tea"`);
  await screenshot('suggestions');

  // The product page.
  await suggestion.click();
  await page.waitForURL(/\/products\/[^/]+$/);
  await page.getByRole('heading', { level: 1, name: 'Sweet Tea' }).waitFor();
  await page.waitForFunction(() => {
    const i = document.querySelector('img.hero-img');
    return i && i.complete && i.naturalWidth > 0;
  });
  check((await page.locator('.product .price').textContent()) === '$3.50', `[${name}] product page shows Sweet Tea at $3.50`);
  await screenshot('product');

  // Add to cart: the header counts 1.
  await page.getByRole('button', { name: 'Add to cart' }).click();
  check(await countIs(1), `[${name}] add to cart makes the header count 1`);
  await page.getByRole('status').filter({ hasText: 'Added to your cart' }).waitFor();
  await screenshot('product-added');

  // The cart: one line, subtotal $3.50.
  await page.locator('a.cart-link').click();
  await page.waitForURL(origin + '/cart');
  const lines = page.locator('[data-testid=cart-line]');
  await lines.first().waitFor();
  check(
    (await lines.count()) === 1 && (await lines.first().textContent()).includes('Sweet Tea'),
    `[${name}] cart page shows the Sweet Tea line`,
  );
  check((await page.locator('[data-testid=subtotal]').textContent()) === '$3.50', `[${name}] cart subtotal is $3.50`);
  await screenshot('cart');

  // Checkout with a declined card: the error is on the form, the cart is kept.
  await page.getByRole('link', { name: 'Proceed to checkout' }).click();
  await page.waitForURL(origin + '/checkout');
  await page.getByText('This store is a simulation').waitFor();
  const number = page.getByLabel('Card number');
  check((await number.inputValue()) === '4111 1111 1111 1111', `[${name}] checkout is prefilled with a Luhn-valid test card`);
  await screenshot('checkout');
  await number.fill('4111 1111 1111 1112');
  const pay = page.locator('button.pay');
  // Record whether the button gets disabled at any moment (a decline can come back at once).
  await page.evaluate(() => {
    window.__payDisabled = false;
    new MutationObserver((records) => {
      if (records.some((r) => r.target.classList?.contains('pay') && r.oldValue === null)) window.__payDisabled = true;
    }).observe(document.body, { subtree: true, attributes: true, attributeFilter: ['disabled'], attributeOldValue: true });
  });
  await pay.click();
  const error = page.locator('[data-testid=checkout-error]');
  await error.waitFor();
  check(
    await page.evaluate(() => window.__payDisabled),
    `[${name}] the pay button is disabled while the payment is in flight`,
  );
  const message = await error.textContent();
  check(/Invalid card number/.test(message), `[${name}] a declined card shows the error on the form`, message);
  check(await pay.isEnabled(), `[${name}] the pay button can be pressed again after the decline`);
  check(
    orderKeys.length === 1 && IDEMPOTENCY_KEY.test(orderKeys[0] ?? ''),
    `[${name}] the checkout request carried an Idempotency-Key header (${orderKeys[0]})`,
    JSON.stringify(orderKeys),
  );
  await screenshot('checkout-declined');
  check(await countIs(1), `[${name}] after the decline the header still counts 1`);
  await page.getByRole('link', { name: 'Edit cart' }).click();
  await page.waitForURL(origin + '/cart');
  await lines.first().waitFor();
  check(
    (await lines.count()) === 1 && (await page.locator('[data-testid=subtotal]').textContent()) === '$3.50',
    `[${name}] after the decline the cart still has the line`,
  );

  // A good card: the confirmation shows the amount.
  await page.getByRole('link', { name: 'Proceed to checkout' }).click();
  await page.waitForURL(origin + '/checkout');
  check((await page.getByLabel('Card number').inputValue()) === '4111 1111 1111 1111', `[${name}] the form offers the good test card again`);
  let lostOrder = null;
  if (name === 'desktop') {
    // The shop places the order, but its answer is lost on the way back: the page cannot know
    // the order went through, keeps the form, and the retry (same Idempotency-Key) must answer
    // that very order without charging again.
    await page.route(
      origin + '/api/v1/checkout/process',
      async (route) => {
        const res = await route.fetch();
        lostOrder = { status: res.status(), body: await res.json().catch(() => null) };
        await route.abort('connectionreset');
      },
      { times: 1 },
    );
  }
  await page.locator('button.pay').click();
  if (name === 'desktop') {
    await error.waitFor();
    const lost = await error.textContent();
    check(
      lostOrder?.status === 200 && !!lostOrder.body?.order_id,
      `[${name}] the shop placed the order whose answer was lost (${lostOrder?.body?.order_id})`,
      JSON.stringify(lostOrder),
    );
    check(/could not confirm your order/.test(lost) && /not be charged twice/.test(lost), `[${name}] a lost answer says the order may have gone through and a retry is safe`, lost);
    check(await pay.isEnabled(), `[${name}] the pay button can be pressed again after the lost answer`);
    await screenshot('checkout-lost-answer');
    await pay.click();
  }
  await page.waitForURL(origin + '/confirmation');
  const amount = page.locator('[data-testid=order-amount]');
  await amount.waitFor();
  check((await amount.textContent()) === '$3.50', `[${name}] the confirmation shows the amount $3.50`);
  const orderId = (await page.locator('.oid').textContent()).trim();
  check(orderId.length > 0, `[${name}] the confirmation shows an order id (${orderId})`);
  const attemptKeys = orderKeys.slice(1);
  check(
    attemptKeys.length === (name === 'desktop' ? 2 : 1) && attemptKeys.every((k) => IDEMPOTENCY_KEY.test(k ?? '')),
    `[${name}] every checkout request of the order carried an Idempotency-Key header`,
    JSON.stringify(orderKeys),
  );
  check(attemptKeys[0] !== orderKeys[0], `[${name}] the new checkout (after the decline and the cart) is a new attempt: a new key`);
  if (name === 'desktop') {
    check(attemptKeys[1] === attemptKeys[0], `[${name}] the retry after the lost answer sent the same Idempotency-Key`, JSON.stringify(attemptKeys));
    check(
      orderId === String(lostOrder.body.order_id),
      `[${name}] the retry shows the order placed by the lost attempt (${orderId})`,
      `the lost answer had ${lostOrder.body.order_id}`,
    );
  }
  check(await countIs(0), `[${name}] after the order the header counts 0`);
  await screenshot('confirmation');
  await page.reload();
  await amount.waitFor();
  check(
    (await page.locator('.oid').textContent()).trim() === orderId && (await amount.textContent()) === '$3.50',
    `[${name}] the confirmation survives a reload`,
  );

  // The cart is empty afterwards.
  await page.locator('a.cart-link').click();
  await page.waitForURL(origin + '/cart');
  await page.getByText('Your cart is empty').waitFor();
  check((await lines.count()) === 0, `[${name}] the cart is empty after the order`);
  await screenshot('cart-empty');

  // Not found: an unknown page and an unknown drink.
  await page.goto(origin + '/no/such/page');
  await page.getByRole('heading', { level: 1, name: 'Page not found' }).waitFor();
  check(true, `[${name}] an unknown address shows the not-found page`);
  await screenshot('not-found');
  await page.goto(origin + '/products/no-such-drink');
  await page.getByText('We could not find that drink').waitFor();
  check(true, `[${name}] an unknown drink shows the not-found page`);

  if (name === 'desktop') {
    // Keyboard only: search, choose a suggestion with the arrow keys, add to cart.
    await page.goto(origin + '/');
    await cards.nth(5).waitFor();
    await page.keyboard.press('Tab'); // skip link
    await page.keyboard.press('Tab'); // brand
    await page.keyboard.press('Tab'); // search box
    check(await search.evaluate((el) => el === document.activeElement), `[${name}] Tab reaches the search box`);
    await page.keyboard.type('tea', { delay: 40 });
    await page.getByRole('option').first().waitFor();
    await page.keyboard.press('ArrowDown');
    const chosen = await page.locator('[role=option][aria-selected=true]').textContent();
    await page.keyboard.press('Enter');
    await page.waitForURL(/\/products\//);
    await page.getByRole('heading', { level: 1 }).waitFor();
    check(chosen.includes(await page.locator('h1').textContent()), `[${name}] arrow keys and Enter open a suggestion`);
    await page.getByLabel('Quantity').focus();
    await page.keyboard.press('Enter');
    check(await countIs(1), `[${name}] Enter in the quantity field adds to the cart`);

    // An API failure shows a message and a retry, never a blank page.
    await page.route('**/api/v1/product/search', (route) =>
      route.fulfill({
        status: 503,
        contentType: 'application/json',
        body: '{"message":"failure","reason":"product-data is unavailable"}',
      }),
    );
    await page.goto(origin + '/');
    const alert = page.getByRole('alert').filter({ hasText: 'product-data is unavailable' });
    await alert.waitFor();
    check(await alert.getByRole('button', { name: 'Try again' }).isVisible(), `[${name}] a failing API shows a message with Try again`);
    await screenshot('api-error');
    await page.unroute('**/api/v1/product/search');
    await alert.getByRole('button', { name: 'Try again' }).click();
    await cards.nth(5).waitFor();
    check(true, `[${name}] Try again recovers when the API answers`);
  }

  noViolations('anywhere in the journey');
  check(foreign.length === 0, `[${name}] no request to any host but the shop`, foreign.join(', '));
  check(problems.length === 0, `[${name}] no script errors in the page`, problems.join(' | '));
  await context.close();
}

async function main() {
  log('browser journey: web front end in headless Chromium');
  bundleSize();
  rmSync(SHOTS, { recursive: true, force: true });
  mkdirSync(SHOTS, { recursive: true });
  const base = await pickBase(18480, 19000);
  const shop = await startShop(base);
  try {
    await atEachWidth(chromium, CHROMIUM, `http://127.0.0.1:${base}`, 'journey', journey);
  } finally {
    shop.stop();
  }
  log(`screenshots in ${path.relative(ROOT, SHOTS)}/`);
}

main().then(
  () => {
    console.log(`${tally.passed} passed, ${failed} failed`);
  },
  (e) => {
    failed++;
    console.error(`FAIL ${e.message}`);
    // A step that broke because the policy blocked something: say so.
    if (cspSeen.length) console.error(`Content-Security-Policy violations seen:\n  ${cspSeen.join('\n  ')}`);
    console.log(`${tally.passed} passed, ${failed} failed`);
    process.exitCode = 1;
  },
);
