import { search } from '../lib/api';
import { useAsync } from '../lib/useAsync';
import { Link } from '../router';
import { ErrorBox, Loading, ProductGrid, SkeletonGrid, useTitle } from '../components/bits';

export function Home() {
  useTitle('');
  const [best, retry] = useAsync(() => search('', 6), 'home');
  return (
    <>
      <section className="hero" aria-labelledby="hero-title">
        <div>
          <p className="kicker">Hot, cold, fizzy or strong</p>
          <h1 id="hero-title" tabIndex={-1}>
            Something good to drink, delivered.
          </h1>
          <p>Coffee, tea, juice and a little wine: every drink rated by people who tried it.</p>
        </div>
      </section>
      <section aria-labelledby="best-title">
        <div className="section-head">
          <h2 id="best-title">Our best-rated drinks</h2>
          <Link href="/search?q=">See all drinks</Link>
        </div>
        {best.status === 'loading' && (
          <>
            <Loading>Loading drinks…</Loading>
            <SkeletonGrid count={6} />
          </>
        )}
        {best.status === 'failed' && <ErrorBox error={best.error} retry={retry} />}
        {best.status === 'done' &&
          (best.data.results.length ? (
            <ProductGrid products={best.data.results} eager />
          ) : (
            <p>No drinks are available right now.</p>
          ))}
      </section>
    </>
  );
}
