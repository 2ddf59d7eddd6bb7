'use strict';
// Plain, dependency-free front end for the simulated drinks shop.
const $ = (sel) => document.querySelector(sel);
const main = $('#main');
const ORDER_KEY = 'ecommerce.lastOrder';
const MAX = 999;
const products = new Map(); // id -> product, filled by every fetch
let cart = {}; // product id -> quantity

// h('p.muted', {attrs}, ...children); attrs may be left out.
function h(spec, attrs, ...kids) {
  const [tag, cls] = spec.split('.');
  const el = document.createElement(tag);
  if (cls) el.className = spec.slice(tag.length + 1).replace(/\./g, ' ');
  if (attrs == null || typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs)) kids.unshift(attrs);
  else for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'value') el.value = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of kids.flat(Infinity)) if (c != null && c !== false) el.append(c);
  return el;
}

const cents = (price) => Math.round(Number(price) * 100) || 0;
const money = (c) => '$' + (c / 100).toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const productUrl = (p) => '/products/' + encodeURIComponent(p.id);
const plural = (n, word) => n + ' ' + word + (n === 1 ? '' : 's');
const home_link = (text) => h('a', { href: '/' }, text);
const emptyCart = () => h('p.empty', 'Your cart is empty. ', home_link('Find something to drink.'));
const rangeMsg = `Choose a quantity from 1 to ${MAX}.`;

function sessionId() {
  const c = document.cookie.split(/;\s*/).find((x) => x.startsWith('session_id='));
  if (!c) return null;
  try { return decodeURIComponent(c.slice(11)); } catch { return c.slice(11); }
}

async function api(method, path, body) {
  const opts = { method, headers: { Accept: 'application/json' }, credentials: 'same-origin' };
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  let res, data = null;
  try { res = await fetch(path, opts); } catch {
    throw new Error('Could not reach the shop. Check your connection and try again.');
  }
  try { data = await res.json(); } catch { /* not JSON */ }
  if (!res.ok || data?.message === 'failure') {
    const err = new Error(data?.reason || `The shop answered with an error (HTTP ${res.status}).`);
    err.status = res.status;
    throw err;
  }
  return data;
}

const remember = (list) => { for (const p of list || []) if (p?.id) products.set(p.id, p); return list || []; };
const search = (query, size) => api('POST', '/api/v1/product/search', { query, page: { size } })
  .then((r) => ({ total: r?.meta?.page?.total_results ?? (r.results || []).length, results: remember(r.results) }));

// ---- cart state ----
function setCart(data) {
  cart = {};
  for (const [id, q] of Object.entries(data || {})) if (q > 0) cart[id] = q;
  const n = Object.values(cart).reduce((a, b) => a + b, 0);
  const count = $('#count');
  count.textContent = n;
  count.hidden = false;
  $('.cart-link').setAttribute('aria-label', 'Cart, ' + plural(n, 'item'));
  return cart;
}
const withSession = () => ({ session_id: sessionId() });
const cartCall = (method, path = '') => api(method, '/api/v1/cart' + path, withSession()).then((r) => setCart(r.data));
const fetchCart = () => cartCall('POST');
const putQty = (id, q) => cartCall('PUT', `/${encodeURIComponent(id)}/${q}`);

async function cartLines() {
  const c = await fetchCart();
  const missing = Object.keys(c).filter((id) => !products.has(id));
  if (missing.length) remember(await api('POST', '/api/v1/product/documents', missing));
  return Object.keys(c).map((id) => ({ id, qty: c[id], product: products.get(id) }));
}
const lineCents = (l) => (l.product ? cents(l.product.price) * l.qty : 0);
const totalCents = (lines) => lines.reduce((a, l) => a + lineCents(l), 0);

// ---- shared pieces ----
function rating(p) {
  const r = Math.max(0, Math.min(5, Math.round(Number(p.rating) || 0)));
  return h('span.rating', h('span.stars', { 'aria-hidden': 'true' }, '★'.repeat(r) + '☆'.repeat(5 - r)),
    h('span.sr', `Rated ${p.rating ?? 0} out of 5`));
}
const img = (p, cls) => (p.filename
  ? h('img.' + cls, { src: '/api/v1/content/' + encodeURIComponent(p.filename), alt: p.name, width: 600, height: 400, loading: 'lazy' })
  : h(`div.${cls}.noimg`, { role: 'img', 'aria-label': p.name }, '🥤'));
const card = (p) => h('li.card', h('a', { href: productUrl(p) }, img(p, 'thumb'),
  h('span.card-body', h('span.name', p.name), h('span.meta', h('span.price', money(cents(p.price))), rating(p)))));
const grid = (list) => h('ul.grid', list.map(card));
const loading = (text) => h('p.loading', { role: 'status' }, text);
const skeleton = (n) => h('ul.grid', { 'aria-hidden': 'true' },
  Array.from({ length: n }, () => h('li.card.skel', h('div.thumb'), h('div.card-body', ' '))));
const errorBox = (err, retry) => h('div.error', { role: 'alert' },
  h('p', h('strong', 'Sorry, something went wrong. '), err.message || String(err)),
  retry && h('button', { type: 'button', onclick: retry }, 'Try again'));
const title = (t) => { document.title = (t ? t + ' · ' : '') + 'ecommerce · drinks'; };

// ---- views ----
async function homeView(v) {
  title('');
  const head = h('h1', 'Our best-rated drinks');
  v.show(head, loading('Loading drinks…'), skeleton(6));
  const { results } = await search('', 6);
  v.show(head, results.length ? grid(results) : h('p', 'No drinks are available right now.'));
}

async function searchView(v) {
  const text = (v.query.get('q') || '').trim();
  title('Search');
  q.value = text;
  const head = h('h1', text ? `Results for “${text}”` : 'All drinks');
  v.show(head, loading('Searching…'), skeleton(3));
  const { total, results } = await search(text, 30);
  v.show(head, h('p.muted', results.length < total ? `Showing ${results.length} of ${total}` : plural(total, 'drink')),
    results.length ? grid(results) : h('p', 'Nothing matched. ', home_link('See our best-rated drinks.')));
}

async function productView(v) {
  let id = v.match[1];
  try { id = decodeURIComponent(id); } catch { /* keep raw */ }
  title('Drink');
  v.show(loading('Loading drink…'));
  let p;
  try { p = remember([await api('GET', '/api/v1/product/products/' + encodeURIComponent(id))])[0]; } catch (e) {
    if (e.status === 404) return notFound(v, 'We could not find that drink.');
    throw e;
  }
  title(p.name);
  const qty = h('input', { id: 'qty', type: 'number', min: 1, max: MAX, value: '1', inputmode: 'numeric', required: true });
  const btn = h('button.primary', { type: 'submit' }, 'Add to cart');
  const status = h('p.status', { role: 'status' });
  const say = (cls, ...text) => { status.className = 'status ' + cls; status.replaceChildren(...text); };
  const add = async (e) => {
    e.preventDefault();
    const n = Math.floor(Number(qty.value));
    if (!(n >= 1 && n <= MAX)) return say('bad', rangeMsg);
    btn.disabled = true; btn.textContent = 'Adding…'; say('');
    try {
      const current = (await fetchCart())[p.id] || 0;
      const want = Math.min(MAX, current + n);
      const now = (await putQty(p.id, want))[p.id] || 0;
      say('ok', `Added. You have ${now} in your cart`, want < current + n ? ` (the limit is ${MAX})` : '', '. ', h('a', { href: '/cart' }, 'View cart'));
    } catch (err) {
      say('bad', 'Could not add to cart: ' + err.message);
    } finally { btn.disabled = false; btn.textContent = 'Add to cart'; }
  };
  const tags = [p.type, p.temperature, p.alcoholic, p.category].filter(Boolean);
  v.show(h('article.product', img(p, 'hero'), h('div.info',
    h('h1', p.name),
    h('p.price.big', money(cents(p.price))),
    h('p', rating(p), ' ', h('span.muted', `${Number(p.rating ?? 0)}/5 · ${plural(p.reviews || 0, 'review')}`)),
    p.description && h('p.desc', p.description),
    tags.length > 0 && h('ul.tags', { 'aria-label': 'Details' }, tags.map((t) => h('li', t))),
    h('form.add', { onsubmit: add }, h('label', { for: 'qty' }, 'Quantity'), qty, btn), status)));
}

async function cartView(v) {
  title('Cart');
  const head = h('h1', { tabindex: '-1' }, 'Your cart');
  v.show(head, loading('Loading your cart…'));
  let lines = await cartLines();
  let busy = false, pending = null;
  const msg = h('p.status.bad', { role: 'alert' });
  const box = h('div');

  async function change(id, n) {
    if (busy) return;
    busy = true; msg.textContent = ''; pending = document.activeElement?.dataset?.key;
    box.classList.add('busy'); box.setAttribute('aria-busy', 'true');
    try { await (n > 0 ? putQty(id, n) : cartCall('DELETE', '/' + encodeURIComponent(id))); } catch (e) { msg.textContent = 'Could not update your cart: ' + e.message; }
    lines = lines.filter((l) => cart[l.id]).map((l) => ({ ...l, qty: cart[l.id] }));
    busy = false; box.classList.remove('busy'); box.removeAttribute('aria-busy');
    draw(); pending = null;
  }

  function line(l) {
    const p = l.product || { id: l.id, name: `Unavailable drink (${l.id})` };
    const key = (k) => k + ':' + l.id;
    const qty = h('input', { type: 'number', min: 1, max: MAX, value: String(l.qty), 'aria-label': 'Quantity of ' + p.name, 'data-key': key('q'),
      onchange: () => {
        const n = Math.floor(Number(qty.value));
        if (n >= 1 && n <= MAX) change(l.id, n); else { qty.value = l.qty; msg.textContent = rangeMsg; }
      } });
    const step = (d, label, sign, off) => h('button', { type: 'button', 'aria-label': label + p.name, 'data-key': key(sign), disabled: off, onclick: () => change(l.id, l.qty + d) }, sign);
    return h('li.line',
      l.product ? h('a', { href: productUrl(p), tabindex: '-1', 'aria-hidden': 'true' }, img(p, 'mini')) : h('span.mini.noimg', '?'),
      h('div.line-info', l.product ? h('a.name', { href: productUrl(p) }, p.name) : h('span.name', p.name),
        h('span.muted', l.product ? money(cents(p.price)) + ' each' : 'No longer sold')),
      h('div.qty', step(-1, 'One less ', '−', l.qty <= 1), qty, step(1, 'One more ', '+', l.qty >= MAX || !l.product)),
      h('span.sub', money(lineCents(l))),
      h('button.link', { type: 'button', 'data-key': key('x'), onclick: () => change(l.id, 0) }, 'Remove', h('span.sr', ' ' + p.name)));
  }

  function draw() {
    const k = pending || document.activeElement?.dataset?.key;
    box.replaceChildren(...(lines.length ? [h('ul.lines', lines.map(line)), h('div.total',
      h('p', 'Subtotal ', h('strong', money(totalCents(lines)))),
      h('a.button.primary', { href: '/checkout' }, 'Proceed to checkout'))] : [emptyCart()]));
    if (!k) return;
    const find = (s) => box.querySelector(`[data-key="${CSS.escape(s)}"]:not(:disabled)`);
    (find(k) || find('q' + k.slice(1)) || head).focus();
  }
  draw();
  v.show(head, msg, box);
}

const FAKE = {
  street_1: '1234 Maple Avenue', street_2: 'Apt 5B', city: 'Springfield', state: 'IL', postal_code: '62704', country: 'US',
  name: 'Jamie Rivera', number: '4111 1111 1111 1111', expiration: '12/30', security_code: '123',
};
const ADDRESS = [['street_1', 'Street address', 'address-line1'], ['street_2', 'Apartment, suite (optional)', 'address-line2'],
  ['city', 'City', 'address-level2'], ['state', 'State', 'address-level1'], ['postal_code', 'ZIP code', 'postal-code'],
  ['country', 'Country', 'country']];
const field = (pre, [name, label, auto, extra]) => h('div.field.f-' + name, h('label', { for: pre + '-' + name }, label),
  h('input', { id: pre + '-' + name, name: pre + '-' + name, value: FAKE[name], autocomplete: auto, required: name !== 'street_2', ...extra }));

async function checkoutView(v) {
  title('Checkout');
  const head = h('h1', 'Checkout');
  v.show(head, loading('Loading your order…'));
  api('POST', '/api/v1/checkout/initiate', {}).catch((e) => console.warn('checkout/initiate failed:', e.message));
  const lines = await cartLines();
  const notice = h('p.notice', 'This store is a simulation: no real payment is made.');
  if (!lines.length) return v.show(head, notice, emptyCart());
  const amount = totalCents(lines);
  const label = 'Place order · ' + money(amount);
  const same = h('input', { id: 'same', type: 'checkbox', checked: true });
  const billing = h('fieldset', { hidden: true, disabled: true }, h('legend', 'Billing address'), ADDRESS.map((f) => field('bill', f)));
  same.onchange = () => { billing.hidden = billing.disabled = same.checked; };
  const btn = h('button.primary', { type: 'submit' }, label);
  const err = h('p.status.bad', { role: 'alert' });
  const form = h('form.checkout', { onsubmit: submit },
    h('fieldset', h('legend', 'Shipping address'), ADDRESS.map((f) => field('ship', f))),
    h('fieldset', h('legend', 'Card'),
      field('card', ['name', 'Name on card', 'cc-name']),
      field('card', ['number', 'Card number', 'cc-number', { inputmode: 'numeric' }]),
      field('card', ['expiration', 'Expiration (MM/YY)', 'cc-exp', { placeholder: 'MM/YY' }]),
      field('card', ['security_code', 'Security code', 'cc-csc', { inputmode: 'numeric' }]),
      h('div.check', same, h('label', { for: 'same' }, 'Billing address is the same as shipping'))),
    billing, err, btn);

  async function submit(e) {
    e.preventDefault();
    const val = (id) => form.elements[id].value.trim();
    const addr = (pre) => Object.fromEntries(ADDRESS.map(([n]) => [n, val(pre + '-' + n)]));
    const bill = addr(same.checked ? 'ship' : 'bill');
    const body = {
      amount: amount / 100,
      shipping: { address: addr('ship') },
      billing: { address: bill, card: {
        name: val('card-name'), number: val('card-number').replace(/[\s-]/g, ''), expiration: val('card-expiration'),
        security_code: val('card-security_code'), postal_code: bill.postal_code } },
      session_id: sessionId(),
    };
    btn.disabled = true; btn.textContent = 'Placing order…'; err.textContent = '';
    try {
      const order = await api('POST', '/api/v1/checkout/process', body);
      try { sessionStorage.setItem(ORDER_KEY, JSON.stringify(order)); } catch { /* storage unavailable */ }
      window.lastOrder = order;
      // Make sure the cart is empty after the order (harmless if the server already emptied it).
      fetchCart().then((c) => Object.keys(c).length && cartCall('DELETE')).catch(() => {});
      navigate('/confirmation');
    } catch (x) {
      err.textContent = `Your order was not placed: ${x.message.replace(/([^.!?])$/, '$1.')} Your cart has been kept.`;
      btn.disabled = false; btn.textContent = label;
      err.scrollIntoView({ block: 'center' });
    }
  }

  v.show(head, notice, h('div.co', form, h('aside.summary', { 'aria-label': 'Order summary' }, h('h2', 'Your order'),
    h('ul', lines.map((l) => h('li', h('span', `${l.qty} × ${l.product ? l.product.name : l.id}`), h('span', money(lineCents(l)))))),
    h('p.total', 'Total ', h('strong', money(amount))),
    h('p', h('a', { href: '/cart' }, 'Edit cart')))));
}

function confirmationView(v) {
  title('Order confirmed');
  let o = window.lastOrder;
  try { o = o || JSON.parse(sessionStorage.getItem(ORDER_KEY) || 'null'); } catch { /* ignore */ }
  if (!o) return v.show(h('h1', 'No recent order'), h('p', 'There is no order to show here yet. ', home_link('Start shopping.')));
  const td = (...c) => h('td', ...c);
  v.show(h('h1', 'Thank you! Your order is confirmed'),
    h('p', 'Order number ', h('strong.oid', String(o.order_id))),
    h('table.items', h('caption.sr', 'Items in your order'),
      h('thead', h('tr', ['Drink', 'Qty', 'Price', 'Subtotal'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', (o.items || []).map((i) => h('tr', td(i.name), td(String(i.quantity)), td(money(cents(i.price))), td(money(cents(i.subtotal)))))),
      h('tfoot', h('tr', h('th', { scope: 'row', colspan: 3 }, 'Total'), td(h('strong', money(cents(o.amount))))))),
    h('p.muted', 'This store is a simulation: no real payment was made.'),
    h('p', h('a.button', { href: '/' }, 'Keep shopping')));
}

function notFound(v, why) {
  title('Not found');
  v.show(h('h1', 'Page not found'), h('p', (why || 'There is nothing at this address.') + ' ', home_link('Go to the home page.')));
}

// ---- router ----
const routes = [
  [/^\/$/, homeView],
  [/^\/products\/([^/]+)\/?$/, productView],
  [/^\/cart\/?$/, cartView],
  [/^\/checkout\/?$/, checkoutView],
  [/^\/confirmation\/?$/, confirmationView],
  [/^\/search\/?$/, searchView],
];
let renderId = 0;

async function render(focus) {
  const id = ++renderId;
  closeSuggest();
  let view = notFound, match = null;
  for (const [re, fn] of routes) if ((match = location.pathname.match(re))) { view = fn; break; }
  if (view !== searchView) q.value = '';
  const v = {
    match, query: new URLSearchParams(location.search),
    show: (...nodes) => { if (id === renderId) main.replaceChildren(...nodes.flat().filter(Boolean)); },
  };
  if (focus) { main.focus({ preventScroll: true }); window.scrollTo(0, 0); }
  try { await view(v); } catch (e) { v.show(errorBox(e, () => render(false))); }
}

function navigate(url) {
  history.pushState(null, '', url);
  render(true);
}

document.addEventListener('click', (e) => {
  const a = e.target.closest('a[href]');
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  if ((a.target && a.target !== '_self') || a.hasAttribute('download')) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith('/api/') || /\.[a-z0-9]+$/i.test(url.pathname)) return;
  e.preventDefault();
  if (url.hash && url.pathname === location.pathname) return $(url.hash)?.focus();
  navigate(url.pathname + url.search);
});
window.addEventListener('popstate', () => render(true));

// ---- search box with suggestions ----
const q = $('#q'), list = $('#suggest'), form = $('.search');
let timer = 0, seq = 0;
function closeSuggest() { seq++; clearTimeout(timer); list.hidden = true; list.replaceChildren(); }

q.addEventListener('input', () => {
  clearTimeout(timer);
  const text = q.value.trim();
  if (!text) return closeSuggest();
  timer = setTimeout(async () => {
    const mine = ++seq;
    try {
      const r = await api('POST', '/api/v1/product/suggestions', { query: text, page: { size: 6 } });
      if (mine !== seq) return;
      const found = remember(r.results).slice(0, 6);
      list.replaceChildren(...(found.length
        ? found.map((p) => h('li', h('a', { href: productUrl(p) }, p.name, h('span.muted', ' ' + money(cents(p.price))))))
        : [h('li.none', 'No matching drinks')]));
      list.hidden = false;
      $('#suggest-status').textContent = found.length ? plural(found.length, 'suggestion') + ', press Down to browse.' : 'No suggestions.';
    } catch { if (mine === seq) closeSuggest(); }
  }, 150);
});
list.addEventListener('mousedown', (e) => e.preventDefault()); // keep focus in the box until the click lands
form.addEventListener('keydown', (e) => {
  const links = [...list.querySelectorAll('a')];
  const i = links.indexOf(document.activeElement);
  if (e.key === 'Escape') { closeSuggest(); q.focus(); }
  else if (e.key === 'ArrowDown' && links.length) { e.preventDefault(); links[Math.min(i + 1, links.length - 1)].focus(); }
  else if (e.key === 'ArrowUp' && i >= 0) { e.preventDefault(); (i ? links[i - 1] : q).focus(); }
});
form.addEventListener('focusout', () => setTimeout(() => { if (!form.contains(document.activeElement)) closeSuggest(); }, 0));
form.addEventListener('submit', (e) => { e.preventDefault(); navigate('/search?q=' + encodeURIComponent(q.value.trim())); });

// ---- start ----
fetchCart().catch((e) => console.warn('Could not load the cart:', e.message));
render(false);
