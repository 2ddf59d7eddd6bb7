import { search } from '../lib/api';
import { countOf } from '../lib/count';
import { useAsync } from '../lib/useAsync';
import { Link } from '../router';
import { ErrorBox, Loading, ProductGrid, SkeletonGrid, useTitle } from '../components/bits';

export function Search({ query }: { query: string }) {
  useTitle(query ? `“${query}”` : 'All drinks');
  const [found, retry] = useAsync(() => search(query, 100), 'search:' + query);
  return (
    <>
      <h1 tabIndex={-1}>{query ? `Drinks matching “${query}”` : 'All drinks'}</h1>
      {found.status === 'loading' && (
        <>
          <Loading>Searching…</Loading>
          <SkeletonGrid count={3} />
        </>
      )}
      {found.status === 'failed' && <ErrorBox error={found.error} retry={retry} />}
      {found.status === 'done' && (
        <>
          <p className="muted" data-testid="result-count">
            {found.data.results.length < found.data.total || found.data.relation === 'gte'
              ? `Showing ${found.data.results.length} of ${countOf(found.data.total, found.data.relation)}`
              : countOf(found.data.total, found.data.relation)}
          </p>
          {found.data.results.length ? (
            <ProductGrid products={found.data.results} />
          ) : (
            <p>
              Nothing matched. <Link href="/">See our best-rated drinks.</Link>
            </p>
          )}
        </>
      )}
    </>
  );
}
