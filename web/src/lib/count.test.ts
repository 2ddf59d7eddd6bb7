import { describe, expect, it } from 'vitest';
import { countOf, parseRelation } from './count';

describe('search result counts', () => {
  it('an exact count is the number, with thousands separators', () => {
    expect(countOf(0, 'eq')).toBe('0 drinks');
    expect(countOf(1, 'eq')).toBe('1 drink');
    expect(countOf(32, 'eq')).toBe('32 drinks');
    expect(countOf(999, 'eq')).toBe('999 drinks');
    expect(countOf(1000, 'eq')).toBe('1,000 drinks');
    expect(countOf(1234567, 'eq')).toBe('1,234,567 drinks');
  });
  it('a capped count is a lower bound: "1,000+", always plural', () => {
    expect(countOf(1000, 'gte')).toBe('1,000+ drinks');
    expect(countOf(10000, 'gte')).toBe('10,000+ drinks');
    expect(countOf(1, 'gte')).toBe('1+ drinks');
  });
  it('names other things', () => {
    expect(countOf(1, 'eq', 'result')).toBe('1 result');
    expect(countOf(2500, 'gte', 'result')).toBe('2,500+ results');
  });
  it('reads the relation: only "gte" is a lower bound; absent (older servers) or unknown is exact', () => {
    expect(parseRelation('gte')).toBe('gte');
    expect(parseRelation('eq')).toBe('eq');
    expect(parseRelation(undefined)).toBe('eq');
    expect(parseRelation('GTE')).toBe('eq');
    expect(parseRelation(42)).toBe('eq');
  });
});
