// @vitest-environment happy-dom
// The fault page against a fake admin API (a mocked fetch), rendered with React DOM.
import { act } from 'react';
import { createRoot, type Root } from 'react-dom/client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { App } from '../App';
import * as api from '../lib/api';
import { TOKEN_KEY } from '../lib/faults';
import { resetCartStore } from '../lib/store';
import { FaultsPage } from './Faults';

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

const TOKEN = 'let-me-break-it';
const CATALOG = [
  { name: 'basic-bug', value: null, what: 'Product search does slow work, then fails.', shows: 'Search: HTTP 500.' },
  { name: 'payment-failure', value: '<ratio>', what: 'Declines a share of payments.', shows: 'Checkout: declined.' },
  { name: 'payment-latency', value: '<ms>', what: 'Slows payments down.', shows: 'Checkout: slow.' },
  { name: 'cart-data-outage', value: null, what: 'cart cannot reach cart-data.', shows: 'Cart: 503.' },
  { name: 'bind-localhost', value: null, what: 'Binds 127.0.0.1.', shows: 'Everything.', live: false },
];

/**
 * A fake of the web-gateway's admin API. Each process applies a new version on the GET after
 * the PUT, unless `hold` keeps them on the old one (so the page first shows it landing
 * nowhere, then everywhere). `answer` forces the status of the next admin calls (401, 404,
 * 429 with Retry-After).
 */
function fakeAdmin() {
  const shop = {
    faults: [] as string[],
    until: null as number | null,
    version: 1,
    level: 1,
    scenario: { state: 'none', started: null, ends: null, steps: [] } as Record<string, unknown>,
    processes: [
      { service: 'payment', instance: 'payment-7f9c', faults: [] as string[], version: 1, seen: Date.now() },
      { service: 'cart', instance: 'cart-1a2b', faults: [] as string[], version: 1, seen: Date.now() },
    ],
    seen: [] as string[],
    bodies: [] as { method: string; url: string; body: unknown; auth: string | null }[],
    answer: null as null | { status: number; retryAfter?: string; reason?: string },
    hold: false,
  };
  const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
    new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json', ...headers } });
  const state = () => ({
    faults: shop.faults,
    until: shop.until,
    version: shop.version,
    shared: true,
    processes: shop.processes.map((p) => ({ ...p })),
    catalog: CATALOG,
    traffic: { level: shop.level },
  });
  const land = () => {
    if (shop.hold) return;
    for (const p of shop.processes) {
      p.faults = [...shop.faults];
      p.version = shop.version;
    }
  };
  const fetch = async (url: string, init: RequestInit) => {
    const method = init.method ?? 'GET';
    shop.seen.push(`${method} ${url}`);
    const auth = new Headers(init.headers).get('Authorization');
    const body = init.body ? JSON.parse(init.body as string) : undefined;
    if (!url.startsWith('/api/v1/admin/')) return json(200, { message: 'success', data: {} }); // the header's cart
    if (method !== 'GET') shop.bodies.push({ method, url, body, auth });
    if (shop.answer) {
      const { status, retryAfter, reason } = shop.answer;
      return json(status, { message: 'failure', reason: reason ?? 'no' }, retryAfter ? { 'Retry-After': retryAfter } : {});
    }
    if (auth !== `Bearer ${TOKEN}`) return json(401, { message: 'failure', reason: 'unauthorized' });
    if (url === '/api/v1/admin/faults' && method === 'GET') {
      const s = state();
      land();
      return json(200, s);
    }
    if (url === '/api/v1/admin/faults' && method === 'PUT') {
      if (body.faults.some((f: string) => !CATALOG.some((c) => c.name === f.split('=')[0])))
        return json(400, { message: 'failure', reason: `unknown fault '${body.faults[0]}'` });
      shop.faults = body.faults;
      shop.until = body.for ? Date.now() + 600_000 : null;
      shop.version++;
      return json(200, state());
    }
    if (url === '/api/v1/admin/scenario') {
      if (method === 'PUT') {
        const t = Date.now();
        shop.scenario = {
          state: 'running',
          started: t,
          ends: t + 180_000,
          steps: body.steps.map((s: object, i: number) => ({
            ...s,
            start: t + i * 60_000,
            end: t + (i + 2) * 60_000,
            state: i === 0 ? 'active' : 'pending',
          })),
        };
      }
      if (method === 'DELETE') shop.scenario = { ...shop.scenario, state: 'aborted' };
      return json(200, shop.scenario);
    }
    if (url === '/api/v1/admin/traffic' && method === 'PUT') {
      shop.level = body.level;
      return json(200, { level: shop.level });
    }
    return json(404, { message: 'failure', reason: 'unknown' });
  };
  api.setFetch(fetch as unknown as typeof globalThis.fetch);
  return shop;
}

let root: Root;
let el: HTMLElement;
const text = () => el.textContent ?? '';
const $ = <T extends Element = HTMLElement>(sel: string) => el.querySelector<T>(sel);
const $$ = (sel: string) => [...el.querySelectorAll<HTMLElement>(sel)];

async function settle() {
  for (let i = 0; i < 10; i++) await act(async () => await new Promise((r) => setTimeout(r, 0)));
}
async function show(node: React.ReactNode) {
  await act(async () => root.render(node));
  await settle();
}
async function click(node: Element | null) {
  expect(node).not.toBeNull();
  await act(async () => (node as HTMLElement).click());
  await settle();
}
async function type(node: Element | null, value: string) {
  expect(node).not.toBeNull();
  const input = node as HTMLInputElement;
  const setter = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value')!.set!;
  await act(async () => {
    setter.call(input, value);
    input.dispatchEvent(new Event('input', { bubbles: true }));
  });
}
async function submit(form: Element | null) {
  expect(form).not.toBeNull();
  await act(async () => {
    (form as HTMLFormElement).dispatchEvent(new Event('submit', { bubbles: true, cancelable: true }));
  });
  await settle();
}
async function until(check: () => boolean, what: string) {
  for (let i = 0; i < 60 && !check(); i++) {
    await act(async () => await new Promise((r) => setTimeout(r, 10)));
  }
  expect(check(), what).toBe(true);
}
const label = (input: Element | null) => el.querySelector(`label[for="${input?.id}"]`)?.textContent ?? '';
const fault = (name: string) => $(`li[data-fault="${name}"]`);
const switchOf = (name: string) => fault(name)?.querySelector<HTMLButtonElement>('[role=switch]') ?? null;
const valueOf = (name: string) => fault(name)?.querySelector<HTMLInputElement>('input') ?? null;

async function signIn(token = TOKEN, pollMs = 40) {
  await show(<FaultsPage pollMs={pollMs} />);
  await type($('#admin-token'), token);
  await submit($('.signin form'));
}

beforeEach(() => {
  sessionStorage.clear();
  resetCartStore();
  el = document.createElement('div');
  document.body.append(el);
  root = createRoot(el);
});
afterEach(() => {
  act(() => root.unmount());
  el.remove();
  api.setFetch(null);
});

describe('signing in', () => {
  it('asks for the token; a good one is kept for the tab (sessionStorage), never a cookie or the address', async () => {
    const shop = fakeAdmin();
    await signIn();
    await until(() => !!fault('payment-failure'), 'the switches');
    expect(document.activeElement?.id, 'the focus moves from the gone form to what is live').toBe('live-title');
    expect(sessionStorage.getItem(TOKEN_KEY)).toBe(TOKEN);
    expect(document.cookie).not.toContain(TOKEN);
    expect(window.location.href).not.toContain(TOKEN);
    expect(shop.seen.filter((s) => s.startsWith('GET /api/v1/admin/faults')).length).toBeGreaterThan(0);
    // Every fault of the catalog, with what it does and where it shows.
    for (const c of CATALOG) {
      expect(fault(c.name)?.textContent).toContain(c.what);
      expect(fault(c.name)?.textContent).toContain(c.shows);
      if (c.live === false) {
        // Decided at start: no switch, said so.
        expect(switchOf(c.name)).toBeNull();
        expect(fault(c.name)?.textContent).toContain('cannot be switched here');
        continue;
      }
      expect(switchOf(c.name)?.getAttribute('aria-checked')).toBe('false');
      // A value field exactly when the fault has a value, labelled.
      expect(!!valueOf(c.name), c.name).toBe(c.value !== null);
    }
    expect(label(valueOf('payment-failure'))).toContain('Share, 0 to 1');
    expect($('[data-testid=live-faults]')?.textContent).toContain('No fault is on');
  });

  it('a wrong token: the shop’s 401 in words, nothing kept', async () => {
    fakeAdmin();
    await signIn('nope');
    expect($('[data-testid=signin-error]')?.textContent).toContain('did not accept this token');
    expect(sessionStorage.getItem(TOKEN_KEY)).toBeNull();
    expect($('#admin-token')).not.toBeNull();
  });

  it('too many wrong tokens: "try again in N s" from Retry-After', async () => {
    const shop = fakeAdmin();
    shop.answer = { status: 429, retryAfter: '17' };
    await signIn('nope');
    expect($('[data-testid=signin-error]')?.textContent).toContain('Too many wrong tokens: try again in 17 s.');
  });

  it('a shop without an admin token (404): switching is off', async () => {
    const shop = fakeAdmin();
    shop.answer = { status: 404 };
    await signIn();
    expect($('[data-testid=signin-error]')?.textContent).toContain('Switching is off');
    expect(sessionStorage.getItem(TOKEN_KEY)).toBeNull();
  });

  it('signing out forgets the token; a token refused later signs out with the reason', async () => {
    const shop = fakeAdmin();
    await signIn();
    await until(() => !!fault('basic-bug'), 'signed in');
    await click($$('button').find((b) => b.textContent === 'Sign out')!);
    expect(sessionStorage.getItem(TOKEN_KEY)).toBeNull();
    expect($('#admin-token')).not.toBeNull();
    expect(document.activeElement, 'the focus goes to the token field').toBe($('#admin-token'));
    expect(text()).toContain('Signed out');

    await type($('#admin-token'), TOKEN);
    await submit($('.signin form'));
    await until(() => !!fault('basic-bug'), 'signed in again');
    shop.answer = { status: 401 }; // the shop's token changed
    await until(() => !!$('[data-testid=signin-error]'), 'signed out by the poll');
    expect($('[data-testid=signin-error]')?.textContent).toContain('did not accept this token');
    expect(sessionStorage.getItem(TOKEN_KEY)).toBeNull();
  });

  it('the route /admin/faults opens the page (its own chunk)', async () => {
    fakeAdmin();
    window.history.replaceState(null, '', '/admin/faults');
    await show(<App />);
    await until(() => !!$('#admin-token'), 'the sign-in form');
    expect($('h1')?.textContent).toBe('Faults');
  });
});

describe('switching faults', () => {
  it('sends the whole list with the token, shows it live, and each process catches up', async () => {
    const shop = fakeAdmin();
    await signIn();
    await until(() => !!fault('payment-failure'), 'the switches');
    await click(switchOf('payment-failure'));
    expect(switchOf('payment-failure')?.getAttribute('aria-checked')).toBe('true');
    await type(valueOf('payment-failure'), '1');
    await click(switchOf('cart-data-outage'));
    expect(text()).toContain('not applied yet');
    shop.hold = true;
    await click($('[data-testid=apply]'));

    const put = shop.bodies.find((b) => b.method === 'PUT' && b.url === '/api/v1/admin/faults');
    expect(put?.body).toEqual({ faults: ['payment-failure=1', 'cart-data-outage'] });
    expect(put?.auth).toBe(`Bearer ${TOKEN}`);
    expect($('[data-testid=apply-status]')?.textContent).toContain('Applied: payment-failure=1, cart-data-outage.');
    expect($$('[data-testid=live-faults] li').map((li) => li.textContent)).toEqual([
      'payment-failure=1',
      'cart-data-outage',
    ]);
    expect(fault('payment-failure')?.className).toContain('live');
    // Version 2: the processes still have version 1 until they pick it up.
    expect($$('[data-testid=process]').map((r) => r.dataset.landed)).toEqual(['false', 'false']);
    expect($('[data-testid=landing]')?.textContent).toBe('Version 2 has landed on 0 of 2 processes.');
    expect(text()).toContain('Not yet (wants 2)');
    shop.hold = false;
    await until(() => $$('[data-testid=process]').every((r) => r.dataset.landed === 'true'), 'landed everywhere');
    expect($('[data-testid=landing]')?.textContent).toBe('Version 2 has landed on all 2 processes.');
    expect($$('[data-testid=process-faults]').map((td) => td.textContent)).toEqual([
      'payment-failure=1, cart-data-outage',
      'payment-failure=1, cart-data-outage',
    ]);

    // Off again: the switch off and Apply sends the list without it.
    await click(switchOf('payment-failure'));
    await click(switchOf('cart-data-outage'));
    await click($('[data-testid=apply]'));
    expect(shop.bodies.filter((b) => b.method === 'PUT').at(-1)?.body).toEqual({ faults: [] });
    expect($('[data-testid=live-faults]')?.textContent).toContain('No fault is on');
  });

  it('checks the duration and the values before sending; `for` goes along when given', async () => {
    const shop = fakeAdmin();
    await signIn();
    await until(() => !!fault('payment-latency'), 'the switches');
    await click(switchOf('payment-latency'));
    await type(valueOf('payment-latency'), 'slow');
    await type($('#fault-for'), '10 minutes');
    await click($('[data-testid=apply]'));
    expect(shop.bodies).toEqual([]);
    expect($('#fault-for')?.getAttribute('aria-invalid')).toBe('true');
    expect(text()).toContain('Use a duration such as 30s, 10m');
    expect(valueOf('payment-latency')?.getAttribute('aria-invalid')).toBe('true');
    expect($('[data-testid=apply-status]')?.textContent).toContain('some fields need a fix');

    await type(valueOf('payment-latency'), '800');
    await type($('#fault-for'), '10m');
    await click($('[data-testid=apply]'));
    expect(shop.bodies[0].body).toEqual({ faults: ['payment-latency=800'], for: '10m' });
    expect(text()).toContain('Switches itself off everywhere in');
  });

  it('the shop’s reason for a refused list is shown', async () => {
    const shop = fakeAdmin();
    await signIn();
    await until(() => !!fault('basic-bug'), 'the switches');
    shop.answer = { status: 400, reason: "fault 'payment-failure' needs a ratio from 0 to 1, got 'payment-failure=2'" };
    await click(switchOf('basic-bug'));
    await click($('[data-testid=apply]'));
    expect($('[data-testid=apply-status]')?.textContent).toBe(
      "Not applied: fault 'payment-failure' needs a ratio from 0 to 1, got 'payment-failure=2'",
    );
    shop.answer = { status: 409, reason: 'a scenario is running' };
    await click($('[data-testid=apply]'));
    expect($('[data-testid=apply-status]')?.textContent).toBe('Not applied: a scenario is running');
  });
});

describe('scenarios and traffic', () => {
  it('a preset fills the steps; Start sends them; progress shows each step; Abort deletes it', async () => {
    const shop = fakeAdmin();
    await signIn(TOKEN, 10_000);
    await until(() => !!fault('basic-bug'), 'signed in');
    await click($$('.presets button').find((b) => b.textContent === 'Cart outage')!);
    expect($$('.step-row')).toHaveLength(1);
    await click($$('.presets button').find((b) => b.textContent === 'Payment trouble')!);
    expect($$('.step-row')).toHaveLength(2);
    await click($$('button').find((b) => b.textContent === 'Start scenario')!);
    const put = shop.bodies.find((b) => b.url === '/api/v1/admin/scenario');
    expect(put?.body).toEqual({
      steps: [
        { at: '0s', faults: ['payment-latency=800'], for: '2m' },
        { at: '1m', faults: ['payment-failure=0.3'], for: '1m' },
      ],
    });
    const progress = $('[data-testid=scenario-progress]')!;
    expect(progress.textContent).toContain('Running');
    expect($$('.steps li').map((li) => li.className)).toEqual(['step active', 'step pending']);
    expect(progress.textContent).toMatch(/Active: \d+ m \d+ s left/);
    expect(progress.textContent).toMatch(/Starts in 1 m \d+ s/);

    await click($$('button').find((b) => b.textContent === 'Abort scenario')!);
    expect(shop.bodies.at(-1)).toMatchObject({ method: 'DELETE', url: '/api/v1/admin/scenario' });
    expect($('[data-testid=scenario-progress]')?.textContent).toContain('Aborted');
  });

  it('a step with a problem is not sent', async () => {
    const shop = fakeAdmin();
    await signIn(TOKEN, 10_000);
    await until(() => !!fault('basic-bug'), 'signed in');
    await click($$('button').find((b) => b.textContent === 'Add a step')!);
    const rows = $$('.step-row');
    expect(rows).toHaveLength(3);
    await type(rows[2].querySelector('.f-faults input'), 'no-such-fault');
    await click($$('button').find((b) => b.textContent === 'Start scenario')!);
    expect(shop.bodies).toEqual([]);
    expect(rows[2].textContent).toContain('"no-such-fault" is not a fault of this shop.');
  });

  it('sets the traffic level, 0 to 10', async () => {
    const shop = fakeAdmin();
    await signIn(TOKEN, 10_000);
    await until(() => !!fault('basic-bug'), 'signed in');
    expect($('[data-testid=traffic-level]')?.textContent).toBe('1×');
    await type($('#traffic-level'), '11');
    await submit($('form.traffic'));
    expect(shop.bodies).toEqual([]);
    expect(text()).toContain('from 0 to 10');
    await type($('#traffic-level'), '2.5');
    await submit($('form.traffic'));
    expect(shop.bodies[0]).toMatchObject({ url: '/api/v1/admin/traffic', body: { level: 2.5 } });
    expect($('[data-testid=traffic-level]')?.textContent).toBe('2.5×');
  });
});
