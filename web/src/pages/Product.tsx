import { useState, type FormEvent } from 'react';
import { ApiError, product as fetchProduct } from '../lib/api';
import { describe, MAX_QTY, parseQty } from '../lib/cart';
import { formatPrice } from '../lib/money';
import { refreshCart, setQty, useCart } from '../lib/store';
import { useAsync } from '../lib/useAsync';
import { Link } from '../router';
import { ErrorBox, ProductImage, Rating, useTitle } from '../components/bits';
import { NotFound } from './NotFound';

type Status = { kind: 'ok' | 'bad'; text: string; link?: boolean } | null;

export function ProductPage({ id }: { id: string }) {
  const [found, retry] = useAsync(() => fetchProduct(id), 'product:' + id);
  const { busy } = useCart();
  const [qty, setQtyText] = useState('1');
  const [adding, setAdding] = useState(false);
  const [status, setStatus] = useState<Status>(null);
  useTitle(found.status === 'done' ? found.data.name : 'Drink');

  if (found.status === 'failed' && found.error instanceof ApiError && found.error.status === 404)
    return <NotFound what="We could not find that drink. It may have left the menu." />;
  if (found.status === 'failed') return <ErrorBox error={found.error} retry={retry} />;
  if (found.status === 'loading')
    return (
      <article className="product skel" aria-busy="true" aria-label="Loading drink">
        <div className="hero-img" />
        <div className="info">
          <span className="sk-line w60 tall" />
          <span className="sk-line w30" />
          <span className="sk-line w90" />
          <span className="sk-line w60" />
        </div>
      </article>
    );

  const p = found.data;
  const add = async (e: FormEvent) => {
    e.preventDefault();
    const n = parseQty(qty);
    if (n === null) return setStatus({ kind: 'bad', text: `Choose a quantity from 1 to ${MAX_QTY}.` });
    setAdding(true);
    setStatus(null);
    try {
      const current = (await refreshCart())[p.id] ?? 0;
      const want = Math.min(MAX_QTY, current + n);
      const now = (await setQty(p.id, want))[p.id] ?? 0;
      const limit = want < current + n ? ` (the most one cart can hold is ${MAX_QTY})` : '';
      setStatus({ kind: 'ok', text: `Added to your cart: you have ${now}${limit}.`, link: true });
    } catch (err) {
      setStatus({ kind: 'bad', text: `Could not add to your cart: ${(err as Error).message}` });
    } finally {
      setAdding(false);
    }
  };
  const tags = [p.type, p.temperature, p.alcoholic, p.category].filter((t): t is string => !!t);
  const unique = [...new Set(tags)];
  return (
    <article className="product">
      <ProductImage product={p} className="hero-img" eager />
      <div className="info">
        <p className="crumbs">
          <Link href="/">Home</Link> <span aria-hidden="true">›</span> <span>{p.name}</span>
        </p>
        <h1 tabIndex={-1}>{p.name}</h1>
        <p className="price big">{formatPrice(p.price)}</p>
        <p>
          <Rating product={p} showCount />
        </p>
        {describe(p) && <p className="desc">{describe(p)}</p>}
        {unique.length > 0 && (
          <ul className="tags" aria-label="Details">
            {unique.map((t) => (
              <li key={t}>{t}</li>
            ))}
          </ul>
        )}
        <form className="add" onSubmit={add}>
          <label htmlFor="qty">Quantity</label>
          <input
            id="qty"
            type="number"
            inputMode="numeric"
            min={1}
            max={MAX_QTY}
            required
            value={qty}
            onChange={(e) => setQtyText(e.target.value)}
          />
          <button className="primary" type="submit" disabled={adding || busy > 0}>
            {adding ? 'Adding…' : 'Add to cart'}
          </button>
        </form>
        <p className={`status ${status?.kind ?? ''}`} role="status">
          {status?.text}
          {status?.link && (
            <>
              {' '}
              <Link href="/cart">View cart</Link>
            </>
          )}
        </p>
      </div>
    </article>
  );
}
