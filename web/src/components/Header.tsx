import { useCart } from '../lib/store';
import { cartCount } from '../lib/cart';
import { Link } from '../router';
import { SearchBox } from './SearchBox';
import { plural, SHOP_NAME } from './bits';

export function Header() {
  const { cart } = useCart();
  const count = cart ? cartCount(cart) : null;
  return (
    <header className="site">
      <div className="bar">
        <Link className="brand" href="/">
          <img src="/favicon.svg" alt="" width={32} height={32} />
          <span>{SHOP_NAME}</span>
        </Link>
        <SearchBox />
        <Link
          className="cart-link"
          href="/cart"
          aria-label={count === null ? 'Cart' : `Cart, ${plural(count, 'item')}`}
        >
          <svg aria-hidden="true" viewBox="0 0 24 24" width="22" height="22">
            <path
              d="M3 4h2l2.4 10.2a1 1 0 0 0 1 .8h8.9a1 1 0 0 0 1-.7L21 8H6.2"
              fill="none"
              stroke="currentColor"
              strokeWidth="2"
              strokeLinecap="round"
              strokeLinejoin="round"
            />
            <circle cx="9" cy="19" r="1.6" fill="currentColor" />
            <circle cx="17" cy="19" r="1.6" fill="currentColor" />
          </svg>
          <span className="cart-label">Cart</span>
          <span className="count" data-testid="cart-count">
            {count ?? '–'}
          </span>
        </Link>
      </div>
    </header>
  );
}
