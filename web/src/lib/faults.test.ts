// @vitest-environment happy-dom
import { afterEach, describe, expect, it } from 'vitest';
import { ApiError, retryAfterSeconds, setFetch } from './api';
import {
  adminMessage,
  durationProblem,
  faultsBody,
  forgetToken,
  formatLeft,
  formFromState,
  getFaults,
  landed,
  landingSummary,
  loadToken,
  nextStepAt,
  normalizeState,
  parseDuration,
  parseLevel,
  saveToken,
  scenarioBody,
  stepProgress,
  SWITCHING_OFF,
  TOKEN_KEY,
  TOKEN_REFUSED,
  valueProblem,
  type CatalogEntry,
  type FaultState,
} from './faults';

const catalog: CatalogEntry[] = [
  { name: 'basic-bug', value: null, what: 'Search fails', shows: 'Search', live: true },
  { name: 'payment-failure', value: '<ratio>', what: 'Declines payments', shows: 'Checkout', live: true },
  { name: 'payment-latency', value: '<ms>', what: 'Slow payments', shows: 'Checkout', live: true },
  { name: 'cart-data-outage', value: null, what: 'Cart data down', shows: 'Cart', live: true },
  { name: 'memory-leak', value: '<role>', what: 'Leaks', shows: 'Memory', live: true },
  { name: 'upstream-drop', value: '<upstream>:<ratio>', what: 'Drops', shows: '502s', live: true },
  { name: 'bind-localhost', value: null, what: 'Binds 127.0.0.1', shows: 'Everything', live: false },
];

const state = (over: Partial<FaultState> = {}): FaultState => ({
  faults: [],
  until: null,
  version: 3,
  shared: true,
  processes: [],
  catalog,
  traffic: { level: 1 },
  ...over,
});

afterEach(() => {
  setFetch(null);
  sessionStorage.clear();
});

describe('the switch form', () => {
  it('starts from the live list: what it names is on, with its value; the rest off with a default', () => {
    const form = formFromState(catalog, ['payment-failure=0.25', 'cart-data-outage']);
    expect(form['payment-failure']).toEqual({ on: true, value: '0.25' });
    expect(form['cart-data-outage']).toEqual({ on: true, value: '' });
    expect(form['basic-bug']).toEqual({ on: false, value: '' });
    expect(form['payment-latency']).toEqual({ on: false, value: '800' });
    expect(form['upstream-drop']).toEqual({ on: false, value: '' });
  });

  it('builds the PUT body: the whole list of what is on, values trimmed, and `for` only when given', () => {
    const form = formFromState(catalog, []);
    form['payment-failure'] = { on: true, value: ' 1 ' };
    form['basic-bug'] = { on: true, value: '' };
    form['payment-latency'] = { on: false, value: 'not a number' }; // off: not checked, not sent
    expect(faultsBody(catalog, form, '')).toEqual({
      ok: true,
      body: { faults: ['basic-bug', 'payment-failure=1'] },
    });
    form['bind-localhost'] = { on: true, value: '' }; // decided at start: never sent
    expect(faultsBody(catalog, form, ' 10m ')).toEqual({
      ok: true,
      body: { faults: ['basic-bug', 'payment-failure=1'], for: '10m' },
    });
  });

  it('everything off is an empty list (which switches every fault off)', () => {
    expect(faultsBody(catalog, formFromState(catalog, ['basic-bug']), '')).toMatchObject({ ok: true });
    const off = formFromState(catalog, []);
    expect(faultsBody(catalog, off, '')).toEqual({ ok: true, body: { faults: [] } });
  });

  it('a bad value of a fault that is on, or a bad duration, is a problem of that field', () => {
    const form = formFromState(catalog, []);
    form['payment-failure'] = { on: true, value: '1.5' };
    form['memory-leak'] = { on: true, value: 'kitchen' };
    const built = faultsBody(catalog, form, '10 minutes');
    expect(built.ok).toBe(false);
    if (built.ok) return;
    expect(Object.keys(built.problems).sort()).toEqual(['for', 'memory-leak', 'payment-failure']);
    expect(built.problems['payment-failure']).toMatch(/from 0 to 1/);
    expect(built.problems.for).toMatch(/30s, 10m/);
  });

  it('checks values lightly by kind', () => {
    expect(valueProblem('ratio', '0')).toBeNull();
    expect(valueProblem('ratio', '0.3')).toBeNull();
    expect(valueProblem('ratio', '1')).toBeNull();
    expect(valueProblem('ratio', '-0.1')).not.toBeNull();
    expect(valueProblem('ratio', 'half')).not.toBeNull();
    expect(valueProblem('ms', '800')).toBeNull();
    expect(valueProblem('ms', '60001')).not.toBeNull();
    expect(valueProblem('ms', '1.5')).not.toBeNull();
    expect(valueProblem('role', 'cart')).toBeNull();
    expect(valueProblem('role', 'nope')).not.toBeNull();
    expect(valueProblem('level', '2.5')).toBeNull();
    expect(valueProblem('level', '11')).not.toBeNull();
    expect(valueProblem('text', 'cart:0.5')).toBeNull();
    expect(valueProblem('text', 'a,b')).not.toBeNull();
  });
});

describe('durations', () => {
  it('reads Go-like durations', () => {
    expect(parseDuration('30s')).toBe(30_000);
    expect(parseDuration('10m')).toBe(600_000);
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('1m30s')).toBe(90_000);
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('0s')).toBe(0);
    expect(parseDuration(' 2m ')).toBe(120_000);
  });

  it('refuses what the shop would not read', () => {
    for (const bad of ['10', '0', 'm', '10 m', '10min', '-5s', '1d', '1.5h', 'abc', '5s10'])
      expect(parseDuration(bad), bad).toBeNull();
  });

  it('says what is wrong with a field: empty, zero, or not a duration', () => {
    expect(durationProblem('', { optional: true })).toBeNull();
    expect(durationProblem('')).toMatch(/Give a duration/);
    expect(durationProblem('0s')).toMatch(/longer than zero/);
    expect(durationProblem('0s', { zero: true })).toBeNull();
    expect(durationProblem('ten minutes')).toMatch(/such as 30s/);
    expect(durationProblem('24h')).toBeNull();
    expect(durationProblem('25h')).toMatch(/at most 24h/);
  });

  it('writes time left for a person', () => {
    expect(formatLeft(42_000)).toBe('42 s');
    expect(formatLeft(41_001)).toBe('42 s');
    expect(formatLeft(185_000)).toBe('3 m 05 s');
    expect(formatLeft(3_720_000)).toBe('1 h 02 m');
    expect(formatLeft(-5)).toBe('0 s');
  });
});

describe('has the switch landed?', () => {
  const p = (service: string, version: number) => ({ service, instance: service + '-1', faults: [], version, seen: 0 });

  it('a process has landed when its version is the state’s', () => {
    expect(landed(p('cart', 3), state())).toBe(true);
    expect(landed(p('cart', 2), state())).toBe(false);
  });

  it('sums the landing up', () => {
    expect(landingSummary(state())).toBe('Version 3: no process has reported yet.');
    expect(landingSummary(state({ processes: [p('cart', 3), p('payment', 2)] }))).toBe(
      'Version 3 has landed on 1 of 2 processes.',
    );
    expect(landingSummary(state({ processes: [p('cart', 3), p('payment', 3)] }))).toBe(
      'Version 3 has landed on all 2 processes.',
    );
  });
});

describe('what the shop answered', () => {
  it('401, 404 and 429 in words; the shop’s reason otherwise', () => {
    expect(adminMessage(new ApiError('unauthorized', 401))).toBe(TOKEN_REFUSED);
    expect(adminMessage(new ApiError('not found', 404))).toBe(SWITCHING_OFF);
    expect(adminMessage(new ApiError('x', 429, 27))).toBe('Too many wrong tokens: try again in 27 s.');
    expect(adminMessage(new ApiError('x', 429))).toBe('Too many wrong tokens: try again in a moment.');
    expect(adminMessage(new ApiError("unknown fault 'x'", 400))).toBe("unknown fault 'x'");
    expect(adminMessage(new ApiError('a scenario is running', 409))).toBe('a scenario is running');
  });

  it('reads Retry-After as seconds or as a date', () => {
    expect(retryAfterSeconds('30')).toBe(30);
    expect(retryAfterSeconds(null)).toBeNull();
    expect(retryAfterSeconds('soon')).toBeNull();
    const now = Date.parse('2030-01-01T00:00:00Z');
    expect(retryAfterSeconds('Tue, 01 Jan 2030 00:00:12 GMT', now)).toBe(12);
  });

  it('a 429 from the shop carries its Retry-After to the message', async () => {
    setFetch((async () =>
      new Response('{"message":"failure","reason":"too many attempts"}', {
        status: 429,
        headers: { 'Content-Type': 'application/json', 'Retry-After': '9' },
      })) as unknown as typeof fetch);
    const err = await getFaults('wrong').catch((e) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err.retryAfter).toBe(9);
    expect(adminMessage(err)).toBe('Too many wrong tokens: try again in 9 s.');
  });

  it('every call sends the token as a bearer token', async () => {
    let auth: string | null = null;
    setFetch((async (_url: string, init: RequestInit) => {
      auth = new Headers(init.headers).get('Authorization');
      return new Response(JSON.stringify(state()), { status: 200 });
    }) as unknown as typeof fetch);
    await getFaults('s3cret');
    expect(auth).toBe('Bearer s3cret');
  });

  it('a body with fields missing still reads as a whole state', () => {
    const s = normalizeState({ faults: ['basic-bug'], version: 2, catalog: [{ name: 'basic-bug' }, { value: 'x' }] });
    expect(s).toMatchObject({ faults: ['basic-bug'], version: 2, until: null, processes: [], traffic: { level: 1 } });
    expect(s.catalog).toEqual([{ name: 'basic-bug', value: null, what: '', shows: '', live: true }]);
  });
});

describe('the token', () => {
  it('is kept in sessionStorage only, and forgotten on sign-out', () => {
    saveToken('t0k');
    expect(sessionStorage.getItem(TOKEN_KEY)).toBe('t0k');
    expect(loadToken()).toBe('t0k');
    expect(document.cookie).not.toContain('t0k');
    forgetToken();
    expect(loadToken()).toBeNull();
  });
});

describe('scenarios', () => {
  it('builds the PUT body from the steps', () => {
    const built = scenarioBody(catalog, [
      { at: '0s', faults: 'payment-latency=800', for: '5m' },
      { at: '5m', faults: 'cart-data-outage, basic-bug', for: '2m' },
    ]);
    expect(built).toEqual({
      ok: true,
      body: {
        steps: [
          { at: '0s', faults: ['payment-latency=800'], for: '5m' },
          { at: '5m', faults: ['cart-data-outage', 'basic-bug'], for: '2m' },
        ],
      },
    });
  });

  it('names the field of each problem', () => {
    const built = scenarioBody(catalog, [
      { at: 'soon', faults: 'payment-failure', for: '0s' },
      { at: '1m', faults: 'no-such-fault', for: '1m' },
      { at: '1m', faults: '', for: '1m' },
      { at: '1m', faults: 'basic-bug=1', for: '1m' },
      { at: '1m', faults: 'bind-localhost', for: '1m' },
    ]);
    expect(built.ok).toBe(false);
    if (built.ok) return;
    expect(built.problems['0.at']).toMatch(/duration/);
    expect(built.problems['0.for']).toMatch(/longer than zero/);
    expect(built.problems['0.faults']).toMatch(/needs a value/);
    expect(built.problems['1.faults']).toMatch(/not a fault/);
    expect(built.problems['2.faults']).toMatch(/at least one/);
    expect(built.problems['3.faults']).toMatch(/takes no value/);
    expect(built.problems['4.faults']).toMatch(/decided at start/);
    expect(scenarioBody(catalog, [])).toEqual({ ok: false, problems: { steps: 'Add a step first.' } });
  });

  it('a new step starts where the last one ends', () => {
    expect(nextStepAt([{ at: '1m', faults: '', for: '1m' }])).toBe('2m');
    expect(nextStepAt([{ at: '30s', faults: '', for: '1m' }])).toBe('90s');
    expect(nextStepAt([{ at: 'x', faults: '', for: '1m' }])).toBe('0s');
    expect(nextStepAt([])).toBe('0s');
  });

  it('tells each step’s progress', () => {
    const step = { at: '1m', faults: ['basic-bug'], for: '1m', start: 60_000, end: 120_000 };
    expect(stepProgress({ ...step, state: 'pending' }, 15_000, 'running')).toBe('Starts in 45 s');
    expect(stepProgress({ ...step, state: 'active' }, 90_000, 'running')).toBe('Active: 30 s left');
    expect(stepProgress({ ...step, state: 'done' }, 130_000, 'done')).toBe('Done');
    expect(stepProgress({ ...step, state: 'pending' }, 15_000, 'aborted')).toBe('Aborted');
  });
});

describe('traffic', () => {
  it('takes 0 to 10 in steps of 0.5', () => {
    expect(parseLevel('2.5')).toEqual({ level: 2.5 });
    expect(parseLevel('0')).toEqual({ level: 0 });
    expect(parseLevel('10')).toEqual({ level: 10 });
    for (const bad of ['', '-1', '10.5', '2.3', 'lots']) expect(parseLevel(bad), bad).toHaveProperty('problem');
  });
});
