import { describe, expect, it } from 'vitest';
import { sessionIdFrom } from './session';

describe('session id from the cookie', () => {
  it('finds session_id among other cookies', () => {
    expect(sessionIdFrom('theme=dark; session_id=abc.sig; other=1')).toBe('abc.sig');
    expect(sessionIdFrom('session_id=abc.sig')).toBe('abc.sig');
  });
  it('URL-decodes the value', () => {
    expect(sessionIdFrom('session_id=abc%2Bdef.s%3Dg')).toBe('abc+def.s=g');
  });
  it('keeps a value that is not valid percent-encoding', () => {
    expect(sessionIdFrom('session_id=abc%zz')).toBe('abc%zz');
  });
  it('strips quotes and spaces', () => {
    expect(sessionIdFrom('a=1;   session_id="abc.sig"  ')).toBe('abc.sig');
  });
  it('does not match a cookie whose name only ends or starts alike', () => {
    expect(sessionIdFrom('old_session_id=x; session_id_2=y')).toBeNull();
  });
  it('is null when absent or empty', () => {
    expect(sessionIdFrom('')).toBeNull();
    expect(sessionIdFrom('a=1; b=2')).toBeNull();
    expect(sessionIdFrom('session_id=')).toBeNull();
  });
  it('keeps = signs inside the value', () => {
    expect(sessionIdFrom('session_id=a=b')).toBe('a=b');
  });
});
