// Client-side routing in a few lines: the path is an external store fed by history.
import { useSyncExternalStore, type AnchorHTMLAttributes, type MouseEvent } from 'react';

const EVENT = 'app:navigate';
const subscribe = (l: () => void) => {
  window.addEventListener('popstate', l);
  window.addEventListener(EVENT, l);
  return () => {
    window.removeEventListener('popstate', l);
    window.removeEventListener(EVENT, l);
  };
};
const snapshot = () => window.location.pathname + window.location.search;

/** The current path and query, e.g. "/search?q=tea". */
export const useLocation = (): string => useSyncExternalStore(subscribe, snapshot, () => '/');

export function navigate(to: string, replace = false): void {
  if (to === snapshot() && !replace) return;
  window.history[replace ? 'replaceState' : 'pushState'](null, '', to);
  window.dispatchEvent(new Event(EVENT));
}

export type Route =
  | { page: 'home' }
  | { page: 'product'; id: string }
  | { page: 'cart' }
  | { page: 'checkout' }
  | { page: 'confirmation' }
  | { page: 'search'; query: string }
  | { page: 'faults' }
  | { page: 'not-found' };

/** Which page a location shows. */
export function route(location: string): Route {
  const url = new URL(location, 'http://shop.invalid');
  const path = url.pathname.replace(/\/+$/, '') || '/';
  if (path === '/') return { page: 'home' };
  if (path === '/cart') return { page: 'cart' };
  if (path === '/checkout') return { page: 'checkout' };
  if (path === '/confirmation') return { page: 'confirmation' };
  if (path === '/admin/faults') return { page: 'faults' };
  if (path === '/search') return { page: 'search', query: url.searchParams.get('q')?.trim() ?? '' };
  const m = /^\/products\/([^/]+)$/.exec(path);
  if (m) {
    let id = m[1];
    try {
      id = decodeURIComponent(id);
    } catch {
      /* keep it raw */
    }
    return { page: 'product', id };
  }
  return { page: 'not-found' };
}

type LinkProps = AnchorHTMLAttributes<HTMLAnchorElement> & { href: string };

/** An <a> that navigates without a page load (a modified click still opens a new tab). */
export function Link({ onClick, ...props }: LinkProps) {
  const click = (e: MouseEvent<HTMLAnchorElement>) => {
    onClick?.(e);
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    if (props.target && props.target !== '_self') return;
    e.preventDefault();
    navigate(props.href);
  };
  return <a {...props} onClick={click} />;
}
