// /admin/faults: break the shop on purpose. Switch faults on and off (the whole list at once),
// run a timed scenario of them, set the synthetic traffic, and watch each process pick the
// change up. Every call carries the admin token, kept for this tab only.
import { useEffect, useId, useRef, useState, type FormEvent, type RefObject } from 'react';
import { ApiError } from '../lib/api';
import {
  abortScenario,
  adminMessage,
  faultsBody,
  forgetToken,
  formatLeft,
  formFromState,
  getFaults,
  getScenario,
  landed,
  landingSummary,
  liveNames,
  loadToken,
  nextStepAt,
  parseLevel,
  POLL_MS,
  PRESETS,
  putFaults,
  ROLES,
  saveToken,
  scenarioBody,
  setTraffic,
  startScenario,
  stepProgress,
  TRAFFIC_MAX,
  valueKind,
  valueLabel,
  type CatalogEntry,
  type FaultForm,
  type FaultState,
  type Problems,
  type ScenarioState,
  type StepDraft,
} from '../lib/faults';
import { Loading, useTitle } from '../components/bits';

type Status = { kind: 'ok' | 'bad'; text: string } | null;

/** The clock, ticking every second: countdowns and "seen 3 s ago". */
function useNow(): number {
  const [now, setNow] = useState(Date.now);
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, []);
  return now;
}

/**
 * Answers may arrive out of order (a poll sent before an Apply, answered after it): show only
 * an answer to a call started after the one whose answer is shown.
 */
function useLatest() {
  const n = useRef({ started: 0, shown: 0 });
  return {
    begin: () => ++n.current.started,
    take: (mine: number) => {
      if (mine <= n.current.shown) return false;
      n.current.shown = mine;
      return true;
    },
  };
}

function StatusLine({ status, testid }: { status: Status; testid?: string }) {
  return (
    <p className={`status ${status?.kind ?? ''}`} role="status" data-testid={testid}>
      {status?.text}
    </p>
  );
}

export function FaultsPage({ pollMs = POLL_MS }: { pollMs?: number }) {
  useTitle('Faults');
  const [token, setToken] = useState<string | null>(() => loadToken());
  const [first, setFirst] = useState<FaultState | null>(null);
  const [why, setWhy] = useState<Status>(null);
  const signOut = (reason?: string) => {
    forgetToken();
    setToken(null);
    setFirst(null);
    setWhy(reason ? { kind: 'bad', text: reason } : { kind: 'ok', text: 'Signed out. The token is gone from this tab.' });
  };
  return (
    <div className="admin">
      <h1 tabIndex={-1}>Faults</h1>
      <p className="lead">
        Break the shop on purpose: switch faults on, run a timed scenario of them, change the synthetic traffic, and
        watch every process of the shop pick the change up. What you switch here affects every shopper.
      </p>
      {token ? (
        <Console token={token} initial={first} signOut={signOut} pollMs={pollMs} />
      ) : (
        <SignIn
          why={why}
          signedIn={(t, state) => {
            saveToken(t);
            setFirst(state);
            setWhy(null);
            setToken(t);
          }}
        />
      )}
    </div>
  );
}

function SignIn({ why, signedIn }: { why: Status; signedIn: (token: string, state: FaultState) => void }) {
  const [token, setToken] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const field = useRef<HTMLInputElement>(null);
  // After a sign-out the console is gone: the keyboard focus goes to the token field.
  useEffect(() => {
    if (why) field.current?.focus();
  }, [why]);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const t = token.trim();
    if (busy) return;
    if (!t) return setError('Enter the admin token.');
    setBusy(true);
    setError(null);
    try {
      // The token is kept only once the shop has accepted it.
      signedIn(t, await getFaults(t));
    } catch (err) {
      setError(adminMessage(err));
      setBusy(false);
    }
  };
  const message = error ?? (why?.kind === 'bad' ? why.text : null);
  return (
    <section className="panel signin" aria-labelledby="signin-title">
      <h2 id="signin-title">Sign in</h2>
      <form onSubmit={submit} method="post" aria-busy={busy}>
        <div className="field">
          <label htmlFor="admin-token">Admin token</label>
          <input
            ref={field}
            id="admin-token"
            name="token"
            type="password"
            autoComplete="off"
            spellCheck={false}
            value={token}
            onChange={(e) => setToken(e.target.value)}
            aria-describedby="admin-token-about"
            aria-invalid={message ? true : undefined}
          />
          <p className="muted small" id="admin-token-about">
            The token the shop was started with (<code className="nowrap">--admin-token</code>). It is kept for this tab only: never in a
            cookie or the address.
          </p>
        </div>
        <button className="primary" type="submit" aria-disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
      {message && (
        <div className="error" role="alert" data-testid="signin-error">
          <p>{message}</p>
        </div>
      )}
      {why?.kind === 'ok' && !error && <StatusLine status={why} />}
    </section>
  );
}

function Console({
  token,
  initial,
  signOut,
  pollMs,
}: {
  token: string;
  initial: FaultState | null;
  signOut: (reason?: string) => void;
  pollMs: number;
}) {
  const [live, setLive] = useState<FaultState | null>(initial);
  const [scenario, setScenario] = useState<ScenarioState | null>(null);
  const [pollError, setPollError] = useState<string | null>(null);
  const [scenarioError, setScenarioError] = useState<string | null>(null);
  const now = useNow();
  const faultsSeq = useLatest();
  const scenarioSeq = useLatest();
  const out = useRef(signOut);
  out.current = signOut;
  const liveHeading = useRef<HTMLHeadingElement>(null);
  // Just signed in: the sign-in form is gone, so the focus goes to what is live now.
  useEffect(() => {
    if (initial) liveHeading.current?.focus();
    // Once, on sign-in.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  /** A failed call's message; a refused token or switching off signs out (null then). */
  const failed = (e: unknown): string | null => {
    if (e instanceof ApiError && (e.status === 401 || e.status === 404)) {
      out.current(adminMessage(e));
      return null;
    }
    return adminMessage(e);
  };
  const failedRef = useRef(failed);
  failedRef.current = failed;

  const showFaults = (mine: number, s: FaultState) => {
    if (faultsSeq.take(mine)) setLive(s);
  };
  const showScenario = (mine: number, s: ScenarioState) => {
    if (scenarioSeq.take(mine)) setScenario(s);
  };
  const shown = useRef({ showFaults, showScenario });
  shown.current = { showFaults, showScenario };

  // Every pollMs while the page is open: the state, each process's part of it, the scenario.
  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const abort = new AbortController();
    const tick = async () => {
      const f = faultsSeq.begin();
      const s = scenarioSeq.begin();
      const [faults, scen] = await Promise.allSettled([getFaults(token, abort.signal), getScenario(token, abort.signal)]);
      if (stopped) return;
      if (faults.status === 'fulfilled') {
        shown.current.showFaults(f, faults.value);
        setPollError(null);
      } else {
        const message = failedRef.current(faults.reason);
        if (message === null) return;
        setPollError(message);
      }
      if (scen.status === 'fulfilled') {
        shown.current.showScenario(s, scen.value);
        setScenarioError(null);
      } else {
        const message = failedRef.current(scen.reason);
        if (message === null) return;
        setScenarioError(message);
      }
      timer = setTimeout(tick, pollMs);
    };
    tick();
    return () => {
      stopped = true;
      clearTimeout(timer);
      abort.abort();
    };
    // faultsSeq/scenarioSeq are stable refs in all but name.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [token, pollMs]);

  const bar = (
    <div className="signed-in">
      <p className="muted">Signed in for this tab.</p>
      <button type="button" onClick={() => signOut()}>
        Sign out
      </button>
    </div>
  );
  if (!live)
    return (
      <>
        {bar}
        {pollError ? (
          <div className="error" role="alert">
            <p>Could not read the shop’s faults: {pollError}</p>
          </div>
        ) : (
          <Loading>Reading the shop’s faults…</Loading>
        )}
      </>
    );

  const calls = {
    token,
    failed,
    applied: (s: FaultState) => showFaults(faultsSeq.begin(), s),
    scenario: (s: ScenarioState) => showScenario(scenarioSeq.begin(), s),
    traffic: (level: number) => setLive((l) => l && { ...l, traffic: { level } }),
    // A scenario decides the live faults: after starting or aborting one, read both again.
    refreshScenario: async () => {
      const f = faultsSeq.begin();
      const s = scenarioSeq.begin();
      const [faults, scen] = await Promise.all([getFaults(token), getScenario(token)]);
      showFaults(f, faults);
      showScenario(s, scen);
    },
  };
  return (
    <>
      {bar}
      <LiveNow live={live} now={now} pollError={pollError} heading={liveHeading} />
      <Switches live={live} calls={calls} />
      <Processes live={live} now={now} pollMs={pollMs} />
      <Scenario live={live} scenario={scenario} error={scenarioError} now={now} calls={calls} />
      <Traffic level={live.traffic.level} calls={calls} />
    </>
  );
}

interface Calls {
  token: string;
  failed: (e: unknown) => string | null;
  applied: (s: FaultState) => void;
  scenario: (s: ScenarioState) => void;
  traffic: (level: number) => void;
  refreshScenario: () => Promise<void>;
}

function LiveNow({
  live,
  now,
  pollError,
  heading,
}: {
  live: FaultState;
  now: number;
  pollError: string | null;
  heading: RefObject<HTMLHeadingElement | null>;
}) {
  return (
    <section className="panel live" aria-labelledby="live-title">
      <h2 id="live-title" tabIndex={-1} ref={heading}>
        Live now
      </h2>
      {live.faults.length ? (
        <ul className="chips" data-testid="live-faults" aria-label="Faults switched on">
          {live.faults.map((f) => (
            <li key={f} className="chip on">
              {f}
            </li>
          ))}
        </ul>
      ) : (
        <p className="calm" data-testid="live-faults">
          No fault is on: the shop runs normally.
        </p>
      )}
      {live.until !== null && live.faults.length > 0 && (
        <p>
          Switches itself off everywhere in <strong>{formatLeft(live.until - now)}</strong> (at{' '}
          {new Date(live.until).toLocaleTimeString()}).
        </p>
      )}
      <p data-testid="landing">{landingSummary(live)}</p>
      <p className="muted small">
        {live.shared
          ? 'One fault state, shared by every process of the shop.'
          : 'Not shared: this is the state of the process that answered; each process keeps its own.'}
      </p>
      {pollError && (
        <p className="status bad" role="alert">
          Could not refresh: {pollError}
        </p>
      )}
    </section>
  );
}

function Switches({ live, calls }: { live: FaultState; calls: Calls }) {
  // The form follows the live list until the person changes something; Apply or Discard
  // makes it follow again.
  const [draft, setDraft] = useState<FaultForm | null>(null);
  const [duration, setDuration] = useState('');
  const [problems, setProblems] = useState<Problems>({});
  const [busy, setBusy] = useState(false);
  const [status, setStatus] = useState<Status>(null);
  const formRef = useRef<HTMLFormElement>(null);
  const base = formFromState(live.catalog, live.faults);
  const form: FaultForm = draft ? { ...base, ...draft } : base;
  const on = liveNames(live.faults);

  const edit = (name: string, change: Partial<FaultForm[string]>) => {
    setDraft({ ...form, [name]: { ...form[name], ...change } });
    setStatus(null);
  };

  const send = async (body: { faults: string[]; for?: string }) => {
    setBusy(true);
    setStatus(null);
    try {
      const s = await putFaults(calls.token, body);
      calls.applied(s);
      setDraft(null);
      setProblems({});
      setStatus({
        kind: 'ok',
        text:
          (s.faults.length ? `Applied: ${s.faults.join(', ')}.` : 'Applied: every fault is off.') +
          ` Version ${s.version} is on its way to each process (see Processes).`,
      });
    } catch (e) {
      const message = calls.failed(e);
      if (message !== null) setStatus({ kind: 'bad', text: `Not applied: ${message}` });
    } finally {
      setBusy(false);
    }
  };

  const apply = (e: FormEvent) => {
    e.preventDefault();
    if (busy) return;
    const built = faultsBody(live.catalog, form, duration);
    if (!built.ok) {
      setProblems(built.problems);
      setStatus({ kind: 'bad', text: 'Not applied: some fields need a fix (see below each one).' });
      // To the first field in trouble, so a keyboard user lands where the fix is.
      setTimeout(() => formRef.current?.querySelector<HTMLElement>('[aria-invalid=true]')?.focus(), 0);
      return;
    }
    setProblems({});
    send(built.body);
  };

  return (
    <section className="panel" aria-labelledby="switches-title">
      <h2 id="switches-title">Switches</h2>
      <p className="muted small">
        Switch faults on or off here, then Apply: the list you apply is the whole list, so what is off here goes off in
        the shop.
      </p>
      <form ref={formRef} onSubmit={apply} aria-busy={busy} noValidate>
        {live.catalog.length ? (
          <ul className="faults">
            {live.catalog.map((c) => (
              <FaultCard
                key={c.name}
                entry={c}
                value={form[c.name]}
                live={on.has(c.name)}
                problem={problems[c.name]}
                edit={(change) => edit(c.name, change)}
              />
            ))}
          </ul>
        ) : (
          <p>The shop lists no faults.</p>
        )}
        <div className="apply">
          <div className="field">
            <label htmlFor="fault-for">For (optional)</label>
            <input
              id="fault-for"
              name="for"
              value={duration}
              placeholder="10m"
              autoComplete="off"
              spellCheck={false}
              onChange={(e) => setDuration(e.target.value)}
              aria-describedby={problems.for ? 'fault-for-hint fault-for-about' : 'fault-for-about'}
              aria-invalid={problems.for ? true : undefined}
            />
            {problems.for && (
              <p className="hint" id="fault-for-hint">
                {problems.for}
              </p>
            )}
            <p className="muted small" id="fault-for-about">
              After this long (30s, 10m, 1h) the faults switch themselves off everywhere. Empty: until changed.
            </p>
          </div>
          <div className="actions">
            <button className="primary" type="submit" aria-disabled={busy} data-testid="apply">
              {busy ? 'Applying…' : 'Apply'}
            </button>
            {draft && (
              <button
                type="button"
                onClick={() => {
                  setDraft(null);
                  setProblems({});
                  setStatus(null);
                }}
              >
                Discard changes
              </button>
            )}
            <button type="button" aria-disabled={busy} onClick={() => !busy && send({ faults: [] })}>
              Switch all off now
            </button>
          </div>
        </div>
        {draft && !busy && <p className="muted small">You have changes that are not applied yet.</p>}
        <StatusLine status={status} testid="apply-status" />
      </form>
    </section>
  );
}

function FaultCard({
  entry,
  value,
  live,
  problem,
  edit,
}: {
  entry: CatalogEntry;
  value: { on: boolean; value: string };
  live: boolean;
  problem?: string;
  edit: (change: Partial<{ on: boolean; value: string }>) => void;
}) {
  const id = useId();
  const kind = valueKind(entry.value);
  const hintId = id + 'hint';
  return (
    <li className={'fault' + (live ? ' live' : '')} data-fault={entry.name}>
      <div className="fault-head">
        <h3 id={id + 'name'}>
          <code>{entry.name}</code>
        </h3>
        {live && <span className="chip on">Live</span>}
        {entry.live ? (
          <button
            type="button"
            className="switch"
            role="switch"
            aria-checked={value.on}
            aria-labelledby={id + 'name'}
            onClick={() => edit({ on: !value.on })}
          >
            <span className="track" aria-hidden="true" />
            <span aria-hidden="true">{value.on ? 'On' : 'Off'}</span>
          </button>
        ) : (
          <span className="chip">At start only</span>
        )}
      </div>
      {entry.what && <p>{entry.what}</p>}
      {entry.shows && (
        <p className="muted small">
          <strong>Where it shows:</strong> {entry.shows}
        </p>
      )}
      {!entry.live && (
        <p className="muted small">
          Decided when the shop starts (<code className="nowrap">--fault {entry.name}</code>): it cannot be switched here.
        </p>
      )}
      {kind && entry.live && (
        <div className="field">
          <label htmlFor={id + 'value'}>
            {valueLabel(entry.value!)}
            <span className="sr"> for {entry.name}</span>
          </label>
          {kind === 'role' ? (
            <select id={id + 'value'} value={value.value} onChange={(e) => edit({ value: e.target.value })}>
              {!ROLES.includes(value.value) && <option value={value.value}>{value.value || 'Choose a role'}</option>}
              {ROLES.map((r) => (
                <option key={r} value={r}>
                  {r}
                </option>
              ))}
            </select>
          ) : (
            <input
              id={id + 'value'}
              value={value.value}
              placeholder={entry.value ?? undefined}
              inputMode={kind === 'ms' ? 'numeric' : kind === 'ratio' || kind === 'level' ? 'decimal' : undefined}
              autoComplete="off"
              spellCheck={false}
              onChange={(e) => edit({ value: e.target.value })}
              aria-describedby={problem ? hintId : undefined}
              aria-invalid={problem ? true : undefined}
            />
          )}
          {problem && (
            <p className="hint" id={hintId}>
              {problem}
            </p>
          )}
        </div>
      )}
    </li>
  );
}

function seenAgo(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  return s < 60 ? `${s} s ago` : `${formatLeft(ms)} ago`;
}

function Processes({ live, now, pollMs }: { live: FaultState; now: number; pollMs: number }) {
  const rows = [...live.processes].sort(
    (a, b) => a.service.localeCompare(b.service) || a.instance.localeCompare(b.instance),
  );
  return (
    <section className="panel" aria-labelledby="procs-title">
      <h2 id="procs-title">Processes</h2>
      <p>
        {landingSummary(live)}{' '}
        <span className="muted small">Refreshed every {Math.round(pollMs / 100) / 10} s.</span>
      </p>
      {rows.length > 0 && (
        <table className="procs">
          <caption className="sr">Each process of the shop, the faults it has applied, and its version</caption>
          <thead>
            <tr>
              <th scope="col">Service</th>
              <th scope="col">Instance</th>
              <th scope="col">Faults applied</th>
              <th scope="col">Version</th>
              <th scope="col">Landed</th>
              <th scope="col">Seen</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((p) => {
              const ok = landed(p, live);
              return (
                <tr key={p.service + '\n' + p.instance} data-testid="process" data-landed={ok}>
                  <td data-label="Service">{p.service.split(',').join(', ')}</td>
                  <td data-label="Instance" className="mono">
                    {p.instance}
                  </td>
                  <td data-label="Faults applied" data-testid="process-faults">
                    {p.faults.length ? p.faults.join(', ') : <span className="muted">none</span>}
                  </td>
                  <td data-label="Version" className="nowrap">
                    {p.version}
                  </td>
                  <td data-label="Landed" className={ok ? 'ok' : 'bad'}>
                    {ok ? 'Yes' : `Not yet (wants ${live.version})`}
                  </td>
                  <td data-label="Seen" className="nowrap">
                    {p.seen ? seenAgo(now - p.seen) : '—'}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </section>
  );
}

let stepKeys = 0;
type Row = StepDraft & { key: number };
const rows = (steps: StepDraft[]): Row[] => steps.map((s) => ({ ...s, key: ++stepKeys }));

function Scenario({
  live,
  scenario,
  error,
  now,
  calls,
}: {
  live: FaultState;
  scenario: ScenarioState | null;
  error: string | null;
  now: number;
  calls: Calls;
}) {
  const [steps, setSteps] = useState<Row[]>(() => rows(PRESETS[0].steps));
  const [problems, setProblems] = useState<Problems>({});
  const [busy, setBusy] = useState(false);
  const [status, setStatus] = useState<Status>(null);
  const listRef = useRef<HTMLOListElement>(null);
  const running = scenario?.state === 'running';

  const change = (i: number, field: keyof StepDraft, value: string) =>
    setSteps(steps.map((s, j) => (j === i ? { ...s, [field]: value } : s)));

  const start = async (e: FormEvent) => {
    e.preventDefault();
    if (busy) return;
    const built = scenarioBody(live.catalog, steps);
    setProblems(built.ok ? {} : built.problems);
    if (!built.ok) {
      setStatus({ kind: 'bad', text: 'Not started: some steps need a fix (see below each field).' });
      setTimeout(() => listRef.current?.querySelector<HTMLElement>('[aria-invalid=true]')?.focus(), 0);
      return;
    }
    setBusy(true);
    setStatus(null);
    try {
      calls.scenario(await startScenario(calls.token, built.body.steps));
      setStatus({ kind: 'ok', text: 'Scenario started: its progress is shown above.' });
      calls.refreshScenario().catch(() => {}); // the next poll tries again
    } catch (err) {
      const message = calls.failed(err);
      if (message !== null) setStatus({ kind: 'bad', text: `Not started: ${message}` });
    } finally {
      setBusy(false);
    }
  };

  const abort = async () => {
    if (busy) return;
    setBusy(true);
    setStatus(null);
    try {
      calls.scenario(await abortScenario(calls.token));
      setStatus({ kind: 'ok', text: 'Scenario aborted: its faults are off.' });
      calls.refreshScenario().catch(() => {}); // the next poll tries again
    } catch (err) {
      const message = calls.failed(err);
      if (message !== null) setStatus({ kind: 'bad', text: `Not aborted: ${message}` });
    } finally {
      setBusy(false);
    }
  };

  const total = scenario?.started != null && scenario.ends != null ? scenario.ends - scenario.started : 0;
  return (
    <section className="panel" aria-labelledby="scenario-title">
      <h2 id="scenario-title">Scenario</h2>
      <p className="muted small">
        Faults on a timeline: each step switches its faults on at <em>at</em> (from the start) for <em>for</em>. While
        it runs, the scenario decides the live faults.
      </p>
      {error && (
        <p className="status bad" role="alert">
          Could not read the scenario: {error}
        </p>
      )}
      {scenario && scenario.state !== 'none' && (
        <div className="progress" data-testid="scenario-progress">
          <p>
            <strong>
              {scenario.state === 'running'
                ? 'Running'
                : scenario.state === 'done'
                  ? 'Done'
                  : 'Aborted'}
            </strong>
            {running && scenario.ends !== null && <> · ends in {formatLeft(scenario.ends - now)}</>}
          </p>
          {running && total > 0 && (
            <progress
              max={total}
              value={Math.min(total, Math.max(0, now - scenario.started!))}
              aria-label="Scenario progress"
            />
          )}
          <ol className="steps">
            {scenario.steps.map((s, i) => (
              <li key={i} className={`step ${s.state}`}>
                <span className="chip">{s.state}</span>{' '}
                <span>
                  at {s.at}: <code>{s.faults.join(', ')}</code> for {s.for}
                </span>{' '}
                <span className="muted">{stepProgress(s, now, scenario.state)}</span>
              </li>
            ))}
          </ol>
          {running && (
            <button type="button" className="danger" aria-disabled={busy} onClick={abort}>
              Abort scenario
            </button>
          )}
        </div>
      )}
      <h3>Presets</h3>
      <ul className="presets">
        {PRESETS.map((p) => (
          <li key={p.name}>
            <button
              type="button"
              onClick={() => {
                setSteps(rows(p.steps));
                setProblems({});
                setStatus({ kind: 'ok', text: `Loaded “${p.name}” into the steps below: Start runs it.` });
              }}
            >
              {p.name}
            </button>
            <span className="muted small">{p.about}</span>
          </li>
        ))}
      </ul>
      <form onSubmit={start} noValidate aria-busy={busy}>
        <h3>Steps</h3>
        <p className="muted small">
          Faults as <code>NAME</code> or <code>NAME=VALUE</code>, separated by commas; durations such as 0s, 90s, 2m.
        </p>
        <ol className="step-edit" ref={listRef}>
          {steps.map((s, i) => (
            <StepFields
              key={s.key}
              index={i}
              step={s}
              problems={problems}
              change={(field, value) => change(i, field, value)}
              remove={() => setSteps(steps.filter((_, j) => j !== i))}
            />
          ))}
        </ol>
        {problems.steps && <p className="hint">{problems.steps}</p>}
        <div className="actions">
          <button
            type="button"
            onClick={() =>
              setSteps([...steps, ...rows([{ at: steps.length ? nextStepAt(steps) : '0s', faults: '', for: '1m' }])])
            }
          >
            Add a step
          </button>
          <button type="submit" className="primary" aria-disabled={busy}>
            {running ? 'Start again (replaces the running one)' : 'Start scenario'}
          </button>
        </div>
        <StatusLine status={status} testid="scenario-status" />
      </form>
    </section>
  );
}

function StepFields({
  index,
  step,
  problems,
  change,
  remove,
}: {
  index: number;
  step: Row;
  problems: Problems;
  change: (field: keyof StepDraft, value: string) => void;
  remove: () => void;
}) {
  const id = useId();
  const n = index + 1;
  const field = (name: keyof StepDraft, label: string, placeholder: string) => {
    const problem = problems[`${index}.${name}`];
    return (
      <div className={`field f-${name}`}>
        <label htmlFor={id + name}>
          {label}
          <span className="sr"> (step {n})</span>
        </label>
        <input
          id={id + name}
          value={step[name]}
          placeholder={placeholder}
          autoComplete="off"
          spellCheck={false}
          onChange={(e) => change(name, e.target.value)}
          aria-invalid={problem ? true : undefined}
          aria-describedby={problem ? id + name + 'hint' : undefined}
        />
        {problem && (
          <p className="hint" id={id + name + 'hint'}>
            {problem}
          </p>
        )}
      </div>
    );
  };
  return (
    <li className="step-row">
      <span className="step-n" aria-hidden="true">
        {n}
      </span>
      {field('at', 'At', '0s')}
      {field('faults', 'Faults', 'payment-failure=0.3')}
      {field('for', 'For', '2m')}
      <button type="button" className="link" onClick={remove}>
        Remove<span className="sr"> step {n}</span>
      </button>
    </li>
  );
}

function Traffic({ level, calls }: { level: number; calls: Calls }) {
  const [text, setText] = useState<string | null>(null); // null: follows the shop's level
  const [busy, setBusy] = useState(false);
  const [status, setStatus] = useState<Status>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const value = text ?? String(level);
  const set = async (e: FormEvent) => {
    e.preventDefault();
    if (busy) return;
    const parsed = parseLevel(value);
    if ('problem' in parsed) return setProblem(parsed.problem);
    setProblem(null);
    setBusy(true);
    setStatus(null);
    try {
      const now = await setTraffic(calls.token, parsed.level);
      calls.traffic(now);
      setText(null);
      setStatus({ kind: 'ok', text: `Traffic set to ${now}.` });
    } catch (err) {
      const message = calls.failed(err);
      if (message !== null) setStatus({ kind: 'bad', text: `Not set: ${message}` });
    } finally {
      setBusy(false);
    }
  };
  return (
    <section className="panel" aria-labelledby="traffic-title">
      <h2 id="traffic-title">Traffic</h2>
      <p>
        Synthetic shoppers now: <strong data-testid="traffic-level">{level}×</strong> the normal load
        {level === 0 ? ' (idle)' : ''}.
      </p>
      <form className="traffic" onSubmit={set} noValidate aria-busy={busy}>
        <div className="field">
          <label htmlFor="traffic-level">Traffic level, 0 to {TRAFFIC_MAX}</label>
          <input
            id="traffic-level"
            type="number"
            min={0}
            max={TRAFFIC_MAX}
            step={0.5}
            value={value}
            onChange={(e) => setText(e.target.value)}
            aria-describedby={problem ? 'traffic-hint traffic-about' : 'traffic-about'}
            aria-invalid={problem ? true : undefined}
          />
          {problem && (
            <p className="hint" id="traffic-hint">
              {problem}
            </p>
          )}
          <p className="muted small" id="traffic-about">
            1 is the normal synthetic load, 0 idles it; steps of 0.5.
          </p>
        </div>
        <button type="submit" className="primary" aria-disabled={busy}>
          Set traffic
        </button>
      </form>
      <StatusLine status={status} testid="traffic-status" />
    </section>
  );
}
