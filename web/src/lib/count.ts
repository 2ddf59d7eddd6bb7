// How many drinks a search found, as the pages say it. The shop may stop counting at a cap:
// then its total is a lower bound (relation "gte") and the page says "1,000+".

/** Whether a search's total is exact (`eq`) or a lower bound (`gte`). */
export type TotalRelation = 'eq' | 'gte';

/** The relation as the API sent it; anything but "gte" (absent on older servers) is exact. */
export const parseRelation = (value: unknown): TotalRelation => (value === 'gte' ? 'gte' : 'eq');

/** "1 drink", "32 drinks", "1,000+ drinks" (a lower bound is always plural). */
export function countOf(n: number, relation: TotalRelation, word = 'drink'): string {
  const count = Number.isFinite(n) ? Math.max(0, Math.trunc(n)) : 0;
  const digits = String(count).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  const capped = relation === 'gte';
  return `${digits}${capped ? '+' : ''} ${word}${count === 1 && !capped ? '' : 's'}`;
}
