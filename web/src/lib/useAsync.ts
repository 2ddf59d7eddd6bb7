import { useCallback, useEffect, useState } from 'react';

export type Async<T> =
  | { status: 'loading' }
  | { status: 'done'; data: T }
  | { status: 'failed'; error: Error };

/** Runs `load` when `key` changes; `retry` runs it again. Stale answers are dropped. */
export function useAsync<T>(load: () => Promise<T>, key: string): [Async<T>, () => void] {
  const [state, setState] = useState<{ key: string; run: number; value: Async<T> }>({
    key,
    run: 0,
    value: { status: 'loading' },
  });
  const [run, setRun] = useState(0);
  useEffect(() => {
    let live = true;
    setState({ key, run, value: { status: 'loading' } });
    load().then(
      (data) => live && setState({ key, run, value: { status: 'done', data } }),
      (error: Error) => live && setState({ key, run, value: { status: 'failed', error } }),
    );
    return () => {
      live = false;
    };
    // `load` is a new closure each render; `key` says when it means something else.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key, run]);
  const retry = useCallback(() => setRun((n) => n + 1), []);
  // Until the effect has run for a new key, show loading rather than the old page's data.
  const value = state.key === key && state.run === run ? state.value : { status: 'loading' as const };
  return [value, retry];
}
