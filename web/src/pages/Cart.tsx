import { useEffect, useRef, useState } from 'react';
import { loadProducts, products } from '../lib/api';
import { cartLines, lineCents, MAX_QTY, parseQty, totalCents, type Line } from '../lib/cart';
import { formatCents, formatPrice } from '../lib/money';
import { refreshCart, removeLine, setQty, useCart } from '../lib/store';
import { useAsync } from '../lib/useAsync';
import { Link } from '../router';
import { CartIcon, CupIcon } from '../components/icons';
import { ErrorBox, Loading, plural, ProductImage, productPath, useTitle } from '../components/bits';

export function CartPage() {
  useTitle('Your cart');
  const [load, retry] = useAsync(async () => {
    const cart = await refreshCart();
    await loadProducts(Object.keys(cart));
  }, 'cart');
  const { cart, busy } = useCart();
  const [error, setError] = useState<string | null>(null);
  const heading = useRef<HTMLHeadingElement>(null);

  // Lines added elsewhere (another tab, a retry) may name products not loaded yet.
  const ids = cart ? Object.keys(cart).filter((id) => !products.has(id)) : [];
  const missing = ids.join(',');
  const [, setLoaded] = useState(0);
  useEffect(() => {
    if (!missing || load.status !== 'done') return;
    loadProducts(missing.split(',')).then(
      () => setLoaded((n) => n + 1),
      () => {},
    );
  }, [missing, load.status]);

  const change = async (line: Line, qty: number) => {
    if (busy) return;
    setError(null);
    try {
      await (qty > 0 ? setQty(line.id, qty) : removeLine(line.id));
      if (qty === 0) heading.current?.focus();
    } catch (e) {
      setError(`Could not update your cart: ${(e as Error).message}`);
    }
  };

  const head = (
    <h1 ref={heading} tabIndex={-1}>
      Your cart
    </h1>
  );
  if (load.status === 'failed')
    return (
      <>
        {head}
        <ErrorBox error={load.error} retry={retry} />
      </>
    );
  if (load.status === 'loading' || !cart)
    return (
      <>
        {head}
        <Loading>Loading your cart…</Loading>
        <ul className="lines skel" aria-hidden="true">
          {[0, 1].map((i) => (
            <li className="line" key={i}>
              <div className="mini" />
              <span className="sk-line w60" />
            </li>
          ))}
        </ul>
      </>
    );

  const lines = cartLines(cart, products);
  if (!lines.length)
    return (
      <>
        {head}
        <div className="empty-state">
          <CartIcon />
          <p>Your cart is empty.</p>
          <p>
            <Link className="button primary" href="/">
              Find something to drink
            </Link>
          </p>
        </div>
      </>
    );

  const items = lines.reduce((a, l) => a + l.qty, 0);
  return (
    <>
      {head}
      <p className="status bad" role="alert">
        {error}
      </p>
      <ul className={'lines' + (busy ? ' busy' : '')} aria-busy={busy > 0}>
        {lines.map((l) => (
          <CartLine key={l.id} line={l} busy={busy > 0} change={change} onInvalid={setError} />
        ))}
      </ul>
      <div className="total">
        <p>
          Subtotal ({plural(items, 'item')}){' '}
          <strong className="subtotal" data-testid="subtotal">
            {formatCents(totalCents(lines))}
          </strong>
        </p>
        <Link className="button primary" href="/checkout">
          Proceed to checkout
        </Link>
      </div>
    </>
  );
}

function CartLine({
  line,
  busy,
  change,
  onInvalid,
}: {
  line: Line;
  busy: boolean;
  change: (line: Line, qty: number) => void;
  onInvalid: (message: string) => void;
}) {
  const p = line.product;
  const name = p?.name ?? `Unavailable drink (${line.id})`;
  const [text, setText] = useState(String(line.qty));
  useEffect(() => setText(String(line.qty)), [line.qty]);
  const commit = () => {
    if (text === String(line.qty)) return;
    const n = parseQty(text);
    if (n === null) {
      setText(String(line.qty));
      onInvalid(`Choose a quantity from 1 to ${MAX_QTY}, or remove the drink.`);
    } else change(line, n);
  };
  // aria-disabled rather than disabled: the button keeps keyboard focus while the cart updates.
  const guard = (off: boolean, act: () => void) => ({
    'aria-disabled': busy || off,
    onClick: () => {
      if (!busy && !off) act();
    },
  });
  return (
    <li className="line" data-testid="cart-line" data-id={line.id}>
      {p ? (
        <Link href={productPath(p)} tabIndex={-1} aria-hidden="true" className="mini-link">
          <ProductImage product={p} className="mini" />
        </Link>
      ) : (
        <div className="mini noimg" aria-hidden="true">
          <CupIcon />
        </div>
      )}
      <div className="line-info">
        {p ? (
          <Link className="name" href={productPath(p)}>
            {name}
          </Link>
        ) : (
          <span className="name">{name}</span>
        )}
        <span className="muted">{p ? `${formatPrice(p.price)} each` : 'No longer sold'}</span>
      </div>
      <div className="qty">
        <button type="button" aria-label={`One less ${name}`} {...guard(line.qty <= 1, () => change(line, line.qty - 1))}>
          −
        </button>
        <input
          type="number"
          inputMode="numeric"
          min={1}
          max={MAX_QTY}
          aria-label={`Quantity of ${name}`}
          value={text}
          readOnly={busy}
          onChange={(e) => setText(e.target.value)}
          onBlur={commit}
          onKeyDown={(e) => {
            if (e.key === 'Enter') {
              e.preventDefault();
              commit();
            }
          }}
        />
        <button
          type="button"
          aria-label={`One more ${name}`}
          {...guard(line.qty >= MAX_QTY || !p, () => change(line, line.qty + 1))}
        >
          +
        </button>
      </div>
      <span className="sub">{p ? formatCents(lineCents(line)) : '—'}</span>
      <button type="button" className="link remove" {...guard(false, () => change(line, 0))}>
        Remove<span className="sr"> {name}</span>
      </button>
    </li>
  );
}
