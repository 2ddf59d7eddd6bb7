import { Link } from '../router';
import { useTitle } from '../components/bits';
import { CupIcon } from '../components/icons';

export function NotFound({ what }: { what?: string }) {
  useTitle('Not found');
  return (
    <section className="empty-state">
      <CupIcon />
      <h1 tabIndex={-1}>Page not found</h1>
      <p>{what ?? 'There is nothing at this address.'}</p>
      <p>
        <Link className="button primary" href="/">
          Go to the home page
        </Link>
      </p>
    </section>
  );
}
