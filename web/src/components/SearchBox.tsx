// The search box: suggestions from /api/v1/product/suggestions as you type (debounced),
// an ARIA combobox operable with the keyboard; Enter on the text searches.
import { useEffect, useId, useRef, useState, type FormEvent, type KeyboardEvent } from 'react';
import { suggestions, type Product } from '../lib/api';
import { formatPrice } from '../lib/money';
import { navigate, useLocation, route } from '../router';
import { productPath } from './bits';

export const DEBOUNCE_MS = 150;
const SIZE = 6;

export function SearchBox() {
  const location = useLocation();
  const current = route(location);
  const [text, setText] = useState(current.page === 'search' ? current.query : '');
  const [items, setItems] = useState<Product[] | null>(null); // null: closed
  const [active, setActive] = useState(-1);
  const [failed, setFailed] = useState(false);
  const [typed, setTyped] = useState(false); // suggest only while the person types
  const id = useId();
  const listId = id + 'list';
  const formRef = useRef<HTMLFormElement>(null);

  // A new page closes the list; the search page shows its query in the box.
  useEffect(() => {
    setItems(null);
    setActive(-1);
    setTyped(false);
    const r = route(location);
    setText(r.page === 'search' ? r.query : '');
  }, [location]);

  const query = text.trim();
  useEffect(() => {
    if (!query || !typed) return;
    const abort = new AbortController();
    const timer = setTimeout(() => {
      suggestions(query, SIZE, abort.signal).then(
        (r) => {
          setFailed(false);
          setItems(r.results.slice(0, SIZE));
          setActive(-1);
        },
        (e: Error) => {
          if (e.name === 'AbortError') return;
          setFailed(true);
          setItems([]);
        },
      );
    }, DEBOUNCE_MS);
    return () => {
      clearTimeout(timer);
      abort.abort();
    };
  }, [query, typed]);

  const open = items !== null && query !== '';
  const close = () => {
    setItems(null);
    setActive(-1);
  };

  const go = (p: Product) => {
    close();
    setTyped(false);
    navigate(productPath(p));
  };

  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (open && active >= 0 && items && items[active]) return go(items[active]);
    close();
    setTyped(false);
    navigate('/search?q=' + encodeURIComponent(query));
  };

  const keyDown = (e: KeyboardEvent<HTMLInputElement>) => {
    const n = items?.length ?? 0;
    if (e.key === 'ArrowDown' && n) {
      e.preventDefault();
      setActive((a) => (a + 1) % n);
    } else if (e.key === 'ArrowUp' && n) {
      e.preventDefault();
      setActive((a) => (a <= 0 ? n - 1 : a - 1));
    } else if (e.key === 'Escape') {
      if (open) e.preventDefault();
      close();
    }
  };

  const status = !open
    ? ''
    : failed
      ? 'Suggestions are not available right now.'
      : items!.length
        ? `${items!.length} suggestion${items!.length === 1 ? '' : 's'}; use the arrow keys to choose.`
        : 'No matching drinks.';

  return (
    <form
      className="search"
      role="search"
      ref={formRef}
      onSubmit={submit}
      onBlur={(e) => {
        if (!formRef.current?.contains(e.relatedTarget as Node | null)) close();
      }}
      autoComplete="off"
    >
      <label className="sr" htmlFor={id + 'q'}>
        Search drinks
      </label>
      <input
        id={id + 'q'}
        type="search"
        name="q"
        placeholder="Search drinks…"
        value={text}
        onChange={(e) => {
          setText(e.target.value);
          setTyped(true);
        }}
        onKeyDown={keyDown}
        role="combobox"
        aria-autocomplete="list"
        aria-expanded={open}
        aria-controls={listId}
        aria-activedescendant={open && active >= 0 ? `${listId}-${active}` : undefined}
      />
      <button type="submit">Search</button>
      <span className="sr" role="status">
        {status}
      </span>
      <ul id={listId} className="suggest" role="listbox" aria-label="Suggestions" hidden={!open}>
        {open &&
          (items!.length ? (
            items!.map((p, i) => (
              <li
                key={p.id}
                id={`${listId}-${i}`}
                role="option"
                aria-selected={i === active}
                className={i === active ? 'active' : undefined}
                onMouseDown={(e) => e.preventDefault()}
                onClick={() => go(p)}
              >
                <span>{p.name}</span>
                <span className="muted">{formatPrice(p.price)}</span>
              </li>
            ))
          ) : (
            <li className="none" role="option" aria-disabled="true" aria-selected="false">
              {failed ? 'Suggestions are not available right now' : 'No matching drinks'}
            </li>
          ))}
      </ul>
    </form>
  );
}
