// The web-gateway's admin API (faults, scenarios, synthetic traffic) and the fault page's
// logic that does not need React: the PUT bodies built from the forms, their light checks
// (the shop is the judge), and the words for what the shop answered.
import { ApiError, failureMessage, request } from './api';

export interface CatalogEntry {
  name: string;
  /** What the value is, e.g. "<ratio>"; null for a fault without one. */
  value: string | null;
  what: string;
  shows: string;
  /** False for a fault decided at start (it cannot be switched while the shop runs). */
  live: boolean;
}

export interface ProcessState {
  service: string;
  instance: string;
  faults: string[];
  version: number;
  seen: number;
}

export interface FaultState {
  faults: string[];
  /** When the list switches itself off (unix ms), or null. */
  until: number | null;
  version: number;
  /** One state shared by every process (true), or this process's only. */
  shared: boolean;
  processes: ProcessState[];
  catalog: CatalogEntry[];
  traffic: { level: number };
}

export interface ScenarioStep {
  at: string;
  faults: string[];
  for: string;
}

export type StepState = 'pending' | 'active' | 'done';
export interface ScenarioStepState extends ScenarioStep {
  start: number;
  end: number;
  state: StepState;
}

export interface ScenarioState {
  state: 'none' | 'running' | 'done' | 'aborted';
  started: number | null;
  ends: number | null;
  steps: ScenarioStepState[];
}

export const POLL_MS = 2000;
export const TRAFFIC_MAX = 10;

// ---- the token: this tab only (sessionStorage), never a cookie or the address ----

export const TOKEN_KEY = 'ecommerce.adminToken';

export function loadToken(storage: Storage | undefined = globalThis.sessionStorage): string | null {
  try {
    return storage?.getItem(TOKEN_KEY) || null;
  } catch {
    return null;
  }
}

export function saveToken(token: string, storage: Storage | undefined = globalThis.sessionStorage): void {
  try {
    storage?.setItem(TOKEN_KEY, token);
  } catch {
    /* storage unavailable: the page keeps the token in memory until it is left */
  }
}

export function forgetToken(storage: Storage | undefined = globalThis.sessionStorage): void {
  try {
    storage?.removeItem(TOKEN_KEY);
  } catch {
    /* nothing kept */
  }
}

// ---- the calls ----

const auth = (token: string) => ({ Authorization: `Bearer ${token}` });

const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((s): s is string => typeof s === 'string') : []);
const num = (v: unknown, fallback = 0): number => (typeof v === 'number' && Number.isFinite(v) ? v : fallback);
const numOrNull = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const text = (v: unknown): string => (typeof v === 'string' ? v : '');
const objects = (v: unknown): Record<string, unknown>[] =>
  Array.isArray(v) ? v.filter((o): o is Record<string, unknown> => !!o && typeof o === 'object') : [];

/** The faults body with every field present (a missing one reads as empty). */
export function normalizeState(body: unknown): FaultState {
  const b = (body && typeof body === 'object' ? body : {}) as Record<string, unknown>;
  const traffic = (b.traffic && typeof b.traffic === 'object' ? b.traffic : {}) as Record<string, unknown>;
  return {
    faults: strings(b.faults),
    until: numOrNull(b.until),
    version: num(b.version),
    shared: b.shared === true,
    processes: objects(b.processes).map((p) => ({
      service: text(p.service),
      instance: text(p.instance),
      faults: strings(p.faults),
      version: num(p.version, -1),
      seen: num(p.seen),
    })),
    catalog: objects(b.catalog)
      .filter((c) => typeof c.name === 'string' && c.name)
      .map((c) => ({
        name: c.name as string,
        value: typeof c.value === 'string' && c.value ? c.value : null,
        what: text(c.what),
        shows: text(c.shows),
        live: c.live !== false,
      })),
    traffic: { level: num(traffic.level, 1) },
  };
}

const STEP_STATES: StepState[] = ['pending', 'active', 'done'];
const SCENARIO_STATES: ScenarioState['state'][] = ['none', 'running', 'done', 'aborted'];

export function normalizeScenario(body: unknown): ScenarioState {
  const b = (body && typeof body === 'object' ? body : {}) as Record<string, unknown>;
  const state = SCENARIO_STATES.find((s) => s === b.state) ?? 'none';
  return {
    state,
    started: numOrNull(b.started),
    ends: numOrNull(b.ends),
    steps: objects(b.steps).map((s) => ({
      at: text(s.at),
      faults: strings(s.faults),
      for: text(s.for),
      start: num(s.start),
      end: num(s.end),
      state: STEP_STATES.find((x) => x === s.state) ?? 'pending',
    })),
  };
}

export interface FaultsPut {
  faults: string[];
  for?: string;
}

export const getFaults = async (token: string, signal?: AbortSignal): Promise<FaultState> =>
  normalizeState(await request('GET', '/api/v1/admin/faults', undefined, signal, auth(token)));
export const putFaults = async (token: string, body: FaultsPut): Promise<FaultState> =>
  normalizeState(await request('PUT', '/api/v1/admin/faults', body, undefined, auth(token)));

export const getScenario = async (token: string, signal?: AbortSignal): Promise<ScenarioState> =>
  normalizeScenario(await request('GET', '/api/v1/admin/scenario', undefined, signal, auth(token)));
export const startScenario = async (token: string, steps: ScenarioStep[]): Promise<ScenarioState> =>
  normalizeScenario(await request('PUT', '/api/v1/admin/scenario', { steps }, undefined, auth(token)));
export const abortScenario = async (token: string): Promise<ScenarioState> =>
  normalizeScenario(await request('DELETE', '/api/v1/admin/scenario', undefined, undefined, auth(token)));

export const setTraffic = async (token: string, level: number): Promise<number> => {
  const r = await request<{ level?: unknown }>('PUT', '/api/v1/admin/traffic', { level }, undefined, auth(token));
  return num(r?.level, level);
};

// ---- what the shop answered, in words ----

export const SWITCHING_OFF =
  'Switching is off: this shop has no admin token configured, so its faults cannot be changed while it runs.';
export const TOKEN_REFUSED = 'The shop did not accept this token. Check it and sign in again.';

/** The message for a failed admin call: the shop's reason for a 400 or a 409. */
export function adminMessage(e: unknown): string {
  if (!(e instanceof ApiError)) return (e as Error)?.message || String(e);
  switch (e.status) {
    case 401:
      return TOKEN_REFUSED;
    case 404:
      return SWITCHING_OFF;
    case 429:
      return e.retryAfter !== null
        ? `Too many wrong tokens: try again in ${e.retryAfter} s.`
        : 'Too many wrong tokens: try again in a moment.';
    default:
      return e.message || failureMessage(e.status, null);
  }
}

// ---- durations, as the shop reads them: "30s", "10m", "1h30m", "500ms"; at most 24h ----

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const DURATION = /^(?:\d+(?:ms|s|m|h))+$/;
export const LONGEST_MS = 24 * 3_600_000;

/** A duration in milliseconds; null when it is not one. */
export function parseDuration(input: string): number | null {
  const s = input.trim();
  if (!DURATION.test(s)) return null;
  let ms = 0;
  for (const [, n, unit] of s.matchAll(/(\d+)(ms|s|m|h)/g)) ms += Number(n) * UNIT_MS[unit];
  return ms;
}

/** What is wrong with a duration field, or null. `optional`: empty is fine; `zero`: 0s is fine. */
export function durationProblem(input: string, opts: { optional?: boolean; zero?: boolean } = {}): string | null {
  if (!input.trim()) return opts.optional ? null : 'Give a duration, such as 30s, 10m or 1h.';
  const ms = parseDuration(input);
  if (ms === null) return 'Use a duration such as 30s, 10m, 1h or 1h30m.';
  if (ms === 0 && !opts.zero) return 'Give a duration longer than zero.';
  if (ms > LONGEST_MS) return 'Give at most 24h.';
  return null;
}

/** A time left as "42 s", "3 m 05 s" or "1 h 02 m". */
export function formatLeft(ms: number): string {
  const s = Math.max(0, Math.ceil(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} m ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} m`;
}

// ---- a fault's value ----

export type ValueKind = 'ratio' | 'ms' | 'role' | 'level' | 'text';
export const ROLES = ['web-gateway', 'api-gateway', 'cart', 'checkout', 'content', 'payment', 'product'];

export function valueKind(placeholder: string | null): ValueKind | null {
  if (placeholder === null) return null;
  const p = placeholder.replace(/[<>]/g, '').trim().toLowerCase();
  if (p === 'ratio' || p === 'ms' || p === 'role' || p === 'level') return p;
  return 'text';
}

/** What a fault's value field is called. */
export function valueLabel(placeholder: string): string {
  switch (valueKind(placeholder)) {
    case 'ratio':
      return 'Share, 0 to 1';
    case 'ms':
      return 'Milliseconds, 0 to 60000';
    case 'role':
      return 'Role';
    case 'level':
      return 'Level, 0 to 10';
    default:
      return `Value, ${placeholder}`;
  }
}
/** What a fault's value field holds before anyone types. */
const VALUE_DEFAULT: Record<ValueKind, string> = { ratio: '0.5', ms: '800', role: 'cart', level: '2', text: '' };

/** What is wrong with `value` for a fault of this kind, or null (lightly: the shop is the judge). */
export function valueProblem(kind: ValueKind, value: string): string | null {
  const v = value.trim();
  switch (kind) {
    case 'ratio':
      return /^(?:\d+(?:\.\d*)?|\.\d+)$/.test(v) && Number(v) <= 1 ? null : 'Give a share from 0 to 1, such as 0.3.';
    case 'ms':
      return /^\d+$/.test(v) && Number(v) <= 60_000 ? null : 'Give whole milliseconds from 0 to 60000.';
    case 'role':
      return ROLES.includes(v) ? null : `Choose one of ${ROLES.join(', ')}.`;
    case 'level':
      return 'problem' in parseLevel(v) ? 'Give a level from 0 to 10, such as 2.5.' : null;
    default:
      return v && !/[\s,=]/.test(v) ? null : 'Give a value without spaces or commas.';
  }
}

const nameOf = (spec: string) => spec.split('=')[0].trim();
const valueOf = (spec: string): string | null => {
  const i = spec.indexOf('=');
  return i < 0 ? null : spec.slice(i + 1).trim();
};

// ---- the switch form ----

export type FaultForm = Record<string, { on: boolean; value: string }>;

/** The form as `faults` (a live list, `NAME[=VALUE]` each) says: what it names on, the rest off. */
export function formFromState(catalog: CatalogEntry[], faults: string[]): FaultForm {
  const form: FaultForm = {};
  for (const c of catalog) {
    const live = faults.find((f) => nameOf(f) === c.name);
    const kind = valueKind(c.value);
    form[c.name] = { on: live !== undefined, value: (live && valueOf(live)) ?? (kind ? VALUE_DEFAULT[kind] : '') };
  }
  return form;
}

export type Problems = Record<string, string>;
export type Built<T> = { ok: true; body: T } | { ok: false; problems: Problems };

/** One fault as the API spells it, `NAME` or `NAME=VALUE`. */
export const faultSpec = (c: CatalogEntry, value: string): string =>
  c.value === null ? c.name : `${c.name}=${value.trim()}`;

/**
 * The body of `PUT /api/v1/admin/faults`: the whole list of the faults switched on (the rest
 * go off) and, when given, how long it lasts. Problems are keyed by fault name, and `for`.
 */
export function faultsBody(catalog: CatalogEntry[], form: FaultForm, duration: string): Built<FaultsPut> {
  const problems: Problems = {};
  const faults: string[] = [];
  for (const c of catalog) {
    const f = form[c.name];
    if (!f?.on || !c.live) continue;
    const kind = valueKind(c.value);
    const wrong = kind && valueProblem(kind, f.value);
    if (wrong) problems[c.name] = wrong;
    else faults.push(faultSpec(c, f.value));
  }
  const late = durationProblem(duration, { optional: true });
  if (late) problems.for = late;
  if (Object.keys(problems).length) return { ok: false, problems };
  const body: FaultsPut = { faults };
  if (duration.trim()) body.for = duration.trim();
  return { ok: true, body };
}

/** The live list's faults, by name: `payment-failure=0.5` → payment-failure. */
export const liveNames = (faults: string[]): Set<string> => new Set(faults.map(nameOf));

// ---- the processes: has the switch landed? ----

/** A process has applied the state when its version is the state's. */
export const landed = (p: ProcessState, state: Pick<FaultState, 'version'>): boolean => p.version === state.version;

/** "Version 7 has landed on 6 of 7 processes." */
export function landingSummary(state: FaultState): string {
  const n = state.processes.length;
  if (!n) return `Version ${state.version}: no process has reported yet.`;
  const done = state.processes.filter((p) => landed(p, state)).length;
  if (done === n) return `Version ${state.version} has landed on ${n === 1 ? 'the only process' : `all ${n} processes`}.`;
  return `Version ${state.version} has landed on ${done} of ${n} processes.`;
}

// ---- scenarios ----

/** A step as typed: the faults as one comma-separated line. */
export interface StepDraft {
  at: string;
  faults: string;
  for: string;
}

export const PRESETS: { name: string; about: string; steps: StepDraft[] }[] = [
  {
    name: 'Payment trouble',
    about: 'Slow payments for 2 minutes; after 1 minute, 30% of them are declined too.',
    steps: [
      { at: '0s', faults: 'payment-latency=800', for: '2m' },
      { at: '1m', faults: 'payment-failure=0.3', for: '1m' },
    ],
  },
  {
    name: 'Cart outage',
    about: 'The cart cannot reach its data for a minute.',
    steps: [{ at: '0s', faults: 'cart-data-outage', for: '1m' }],
  },
  {
    name: 'Bad afternoon',
    about: 'Slow payments, then a cart outage in the middle, then search breaks.',
    steps: [
      { at: '0s', faults: 'payment-latency=800', for: '3m' },
      { at: '1m', faults: 'cart-data-outage', for: '1m' },
      { at: '3m', faults: 'basic-bug', for: '2m' },
    ],
  },
];

export const splitFaults = (line: string): string[] =>
  line
    .split(/[,\s]+/)
    .map((s) => s.trim())
    .filter(Boolean);

/** What is wrong with one fault of a step (`NAME[=VALUE]`) given the catalog, or null. */
export function specProblem(catalog: CatalogEntry[], spec: string): string | null {
  const name = nameOf(spec);
  const c = catalog.find((x) => x.name === name);
  if (!c) return `"${name}" is not a fault of this shop.`;
  if (!c.live) return `${name} is decided at start: it cannot be switched while the shop runs.`;
  const kind = valueKind(c.value);
  const v = valueOf(spec);
  if (!kind) return v === null ? null : `${name} takes no value.`;
  if (v === null) return `${name} needs a value: ${name}=${c.value}.`;
  const wrong = valueProblem(kind, v);
  return wrong && `${name}: ${wrong}`;
}

/**
 * The body of `PUT /api/v1/admin/scenario`. Problems are keyed `<index>.at`, `<index>.faults`,
 * `<index>.for`, and `steps` when there is none. With an empty catalog, names are not checked.
 */
export function scenarioBody(catalog: CatalogEntry[], steps: StepDraft[]): Built<{ steps: ScenarioStep[] }> {
  const problems: Problems = {};
  if (!steps.length) problems.steps = 'Add a step first.';
  const out = steps.map((s, i) => {
    const at = durationProblem(s.at, { zero: true });
    if (at) problems[`${i}.at`] = at;
    const late = durationProblem(s.for);
    if (late) problems[`${i}.for`] = late;
    const faults = splitFaults(s.faults);
    const wrong = faults.length
      ? catalog.length
        ? faults.map((f) => specProblem(catalog, f)).find(Boolean)
        : null
      : 'Name at least one fault.';
    if (wrong) problems[`${i}.faults`] = wrong;
    return { at: s.at.trim(), faults, for: s.for.trim() };
  });
  return Object.keys(problems).length ? { ok: false, problems } : { ok: true, body: { steps: out } };
}

/** Where a new step starts: where the last one ends (0s when that cannot be told). */
export function nextStepAt(steps: StepDraft[]): string {
  const last = steps[steps.length - 1];
  const at = last && parseDuration(last.at);
  const late = last && parseDuration(last.for);
  if (at == null || late == null) return '0s';
  const s = Math.round((at + late) / 1000);
  return s % 60 === 0 ? `${s / 60}m` : `${s}s`;
}

/** A step's progress in words, at `now`. */
export function stepProgress(step: ScenarioStepState, now: number, scenario: ScenarioState['state']): string {
  if (step.state === 'done') return 'Done';
  if (scenario === 'aborted') return 'Aborted';
  if (step.state === 'active') return `Active: ${formatLeft(step.end - now)} left`;
  return `Starts in ${formatLeft(step.start - now)}`;
}

// ---- traffic ----

/** The level typed, or a problem: 0 to 10 in steps of 0.5. */
export function parseLevel(input: string): { level: number } | { problem: string } {
  const v = input.trim();
  const n = Number(v);
  if (!v || !Number.isFinite(n) || n < 0 || n > TRAFFIC_MAX || !Number.isInteger(n * 2))
    return { problem: `Give a level from 0 to ${TRAFFIC_MAX} in steps of 0.5 (1 is the normal load, 0 idles it).` };
  return { level: n };
}
