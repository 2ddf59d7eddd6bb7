// The API bodies carry the session id from the `session_id` cookie, as the original UI did.
// The web-gateway sets it as `<sid>.<signature>`; a browser may hand it back URL-encoded.

/** The `session_id` cookie's value in a `document.cookie` string, URL-decoded; null when absent. */
export function sessionIdFrom(cookie: string, name = 'session_id'): string | null {
  for (const part of cookie.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() !== name) continue;
    let value = part.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    if (!value) return null;
    try {
      return decodeURIComponent(value);
    } catch {
      return value;
    }
  }
  return null;
}

/** The current page's session id. */
export const sessionId = (): string | null =>
  typeof document === 'undefined' ? null : sessionIdFrom(document.cookie);
