import { useEffect, useState, type ReactNode } from 'react';
import { imageUrl, type Product } from '../lib/api';
import { formatPrice } from '../lib/money';
import { Link } from '../router';
import { CupIcon } from './icons';

export const productPath = (p: Pick<Product, 'id'>): string => '/products/' + encodeURIComponent(p.id);

/** A product's photo; a drawn tile when it has none or it fails to load. */
export function ProductImage({ product, className, eager }: { product: Product; className: string; eager?: boolean }) {
  const [broken, setBroken] = useState(false);
  if (!product.filename || broken)
    return (
      <div className={`${className} noimg`} role="img" aria-label={product.name}>
        <CupIcon />
      </div>
    );
  return (
    <img
      className={className}
      src={imageUrl(product)}
      alt={product.name}
      width={600}
      height={400}
      loading={eager ? 'eager' : 'lazy'}
      decoding="async"
      onError={() => setBroken(true)}
    />
  );
}

export function Rating({ product, showCount }: { product: Product; showCount?: boolean }) {
  const value = Math.max(0, Math.min(5, Number(product.rating) || 0));
  const full = Math.round(value);
  const reviews = Number(product.reviews) || 0;
  return (
    <span className="rating">
      <span className="stars" aria-hidden="true">
        {'★'.repeat(full)}
        <span className="off">{'★'.repeat(5 - full)}</span>
      </span>
      <span className="sr">Rated {value} out of 5</span>
      {showCount && (
        <span className="muted">
          {' '}
          {value.toFixed(1)} · {plural(reviews, 'review')}
        </span>
      )}
    </span>
  );
}

export const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

export function ProductCard({ product, eager }: { product: Product; eager?: boolean }) {
  return (
    <li className="card">
      <Link href={productPath(product)}>
        <ProductImage product={product} className="thumb" eager={eager} />
        <span className="card-body">
          <span className="name">{product.name}</span>
          <span className="meta">
            <span className="price">{formatPrice(product.price)}</span>
            <Rating product={product} />
          </span>
        </span>
      </Link>
    </li>
  );
}

export function ProductGrid({ products, eager }: { products: Product[]; eager?: boolean }) {
  return (
    <ul className="grid">
      {products.map((p) => (
        <ProductCard key={p.id} product={p} eager={eager} />
      ))}
    </ul>
  );
}

export function SkeletonGrid({ count }: { count: number }) {
  return (
    <ul className="grid" aria-hidden="true">
      {Array.from({ length: count }, (_, i) => (
        <li className="card skel" key={i}>
          <div className="thumb" />
          <div className="card-body">
            <span className="sk-line w60" />
            <span className="sk-line w30" />
          </div>
        </li>
      ))}
    </ul>
  );
}

export function Loading({ children }: { children: ReactNode }) {
  return (
    <p className="loading" role="status">
      {children}
    </p>
  );
}

export function ErrorBox({ error, retry, title }: { error: Error | string; retry?: () => void; title?: string }) {
  const message = typeof error === 'string' ? error : error.message || String(error);
  return (
    <div className="error" role="alert">
      <p>
        <strong>{title ?? 'Sorry, something went wrong.'}</strong> {message}
      </p>
      {retry && (
        <button type="button" onClick={retry}>
          Try again
        </button>
      )}
    </div>
  );
}

/** Sets the document's title. */
export function useTitle(title: string): void {
  useEffect(() => {
    document.title = title ? `${title} · ${SHOP_NAME}` : `${SHOP_NAME} · drinks`;
  }, [title]);
}

export const SHOP_NAME = 'Sip & Shop';
