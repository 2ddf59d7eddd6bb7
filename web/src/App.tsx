import { Component, lazy, Suspense, useEffect, useRef, type ReactNode } from 'react';
import { Header } from './components/Header';
import { ErrorBox, Loading } from './components/bits';
import { refreshCart } from './lib/store';
import { CartPage } from './pages/Cart';
import { CheckoutPage } from './pages/Checkout';
import { ConfirmationPage } from './pages/Confirmation';
import { Home } from './pages/Home';
import { NotFound } from './pages/NotFound';
import { ProductPage } from './pages/Product';
import { Search } from './pages/Search';
import { route, useLocation, type Route } from './router';

// The fault switches are for the people running the shop: a chunk of its own, so that a
// shopper's first load does not carry them.
const FaultsPage = lazy(() => import('./pages/Faults').then((m) => ({ default: m.FaultsPage })));

function Page({ at }: { at: Route }) {
  switch (at.page) {
    case 'home':
      return <Home />;
    case 'product':
      return <ProductPage id={at.id} />;
    case 'cart':
      return <CartPage />;
    case 'checkout':
      return <CheckoutPage />;
    case 'confirmation':
      return <ConfirmationPage />;
    case 'search':
      return <Search query={at.query} />;
    case 'faults':
      return (
        <Suspense fallback={<Loading>Loading the fault switches…</Loading>}>
          <FaultsPage />
        </Suspense>
      );
    default:
      return <NotFound />;
  }
}

/** Never a blank page: a rendering bug shows a message and a way back. */
class Boundary extends Component<{ children: ReactNode; reset: string }, { error: Error | null; reset: string }> {
  state = { error: null as Error | null, reset: this.props.reset };
  static getDerivedStateFromError(error: Error) {
    return { error };
  }
  static getDerivedStateFromProps(props: { reset: string }, state: { reset: string }) {
    return props.reset !== state.reset ? { error: null, reset: props.reset } : null;
  }
  render() {
    return this.state.error ? (
      <ErrorBox error={this.state.error} retry={() => window.location.reload()} title="This page could not be shown." />
    ) : (
      this.props.children
    );
  }
}

export function App() {
  const location = useLocation();
  const main = useRef<HTMLElement>(null);
  const first = useRef(true);

  useEffect(() => {
    refreshCart().catch(() => {}); // the header's count; pages show their own errors
  }, []);

  // On navigation: to the top, and the keyboard/screen-reader focus to the new page.
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    window.scrollTo(0, 0);
    const h1 = main.current?.querySelector<HTMLElement>('h1');
    (h1 ?? main.current)?.focus({ preventScroll: true });
  }, [location]);

  return (
    <>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <Header />
      <main id="main" ref={main} tabIndex={-1}>
        <Boundary reset={location}>
          <Page at={route(location)} />
        </Boundary>
      </main>
      <footer className="site">
        <p>
          A simulated drinks shop for exploring microservices. No real orders are placed and no real payments are
          made.
        </p>
      </footer>
    </>
  );
}
