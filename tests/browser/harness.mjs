// What the browser tests share: a log line with the time since start, checks that count
// what passed, and the first free block of seven ports (one per role) in a range.
import net from 'node:net';

const t0 = Date.now();
export const log = (...a) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s]`, ...a);

/** How many checks passed so far. */
export const tally = { passed: 0 };

export function ok(what) {
  tally.passed++;
  log(`ok   ${what}`);
}

export function check(cond, what, detail = '') {
  if (!cond) throw new Error(`${what}${detail ? `: ${detail}` : ''}`);
  ok(what);
}

const free = (port) =>
  new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });

/** BASE_PORT, or the first of seven free ports from `from` (in steps of ten) below `to`. */
export async function pickBase(from, to) {
  if (process.env.BASE_PORT) return Number(process.env.BASE_PORT);
  for (let base = from; base < to; base += 10) {
    let all = true;
    for (let i = 0; i < 7 && all; i++) all = await free(base + i);
    if (all) return base;
  }
  throw new Error(`no 7 free ports between ${from} and ${to}`);
}

/**
 * Launches Chromium headless at `executablePath` (with playwright-core's `chromium`) and
 * runs `each(browser, origin, width)` at a phone's and a desktop's width, closing it however
 * that ends.
 */
export async function atEachWidth(chromium, executablePath, origin, what, each) {
  let browser;
  try {
    browser = await chromium.launch({
      executablePath,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
    log(`Chromium ${browser.version()} against ${origin}`);
    for (const width of [375, 1440]) {
      log(`${what} at ${width} px`);
      await each(browser, origin, width);
    }
  } finally {
    await browser?.close().catch(() => {});
  }
}
