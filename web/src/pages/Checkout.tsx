import { useEffect, useRef, useState, type FormEvent, type ReactNode } from 'react';
import { ApiError, initiateCheckout, loadProducts, placeOrder, products, type Address } from '../lib/api';
import { luhnValid, validExpiry } from '../lib/card';
import { cartLines, lineCents, totalCents, type Line } from '../lib/cart';
import { newIdempotencyKey } from '../lib/idempotency';
import { formatCents } from '../lib/money';
import { saveOrder } from '../lib/order';
import { orderPlaced, refreshCart, useCart } from '../lib/store';
import { useAsync } from '../lib/useAsync';
import { Link, navigate } from '../router';
import { ErrorBox, Loading, useTitle } from '../components/bits';

/** Fake but plausible details, so a visitor can pay with one click. 4111 1111 1111 1111 passes Luhn. */
export const FAKE_ADDRESS: Address = {
  street_1: '1234 Maple Avenue',
  street_2: 'Apt 5B',
  city: 'Springfield',
  state: 'IL',
  postal_code: '62704',
  country: 'US',
};
export const FAKE_CARD = { name: 'Jamie Rivera', number: '4111 1111 1111 1111', expiration: '12/30', security_code: '123' };

type Field = [key: keyof Address, label: string, autoComplete: string];
const ADDRESS_FIELDS: Field[] = [
  ['street_1', 'Street address', 'address-line1'],
  ['street_2', 'Apartment, suite (optional)', 'address-line2'],
  ['city', 'City', 'address-level2'],
  ['state', 'State', 'address-level1'],
  ['postal_code', 'ZIP code', 'postal-code'],
  ['country', 'Country', 'country'],
];

function Input(props: {
  id: string;
  label: string;
  value: string;
  onChange: (v: string) => void;
  autoComplete: string;
  required?: boolean;
  hint?: ReactNode;
  inputMode?: 'numeric' | 'text';
  className?: string;
  maxLength?: number;
}) {
  const hintId = props.id + '-hint';
  return (
    <div className={'field ' + (props.className ?? '')}>
      <label htmlFor={props.id}>{props.label}</label>
      <input
        id={props.id}
        name={props.id}
        value={props.value}
        onChange={(e) => props.onChange(e.target.value)}
        autoComplete={props.autoComplete}
        required={props.required}
        inputMode={props.inputMode}
        maxLength={props.maxLength}
        aria-describedby={props.hint ? hintId : undefined}
        aria-invalid={props.hint ? true : undefined}
      />
      {props.hint && (
        <p className="hint" id={hintId}>
          {props.hint}
        </p>
      )}
    </div>
  );
}

function AddressFields({ prefix, value, set }: { prefix: string; value: Address; set: (a: Address) => void }) {
  return (
    <>
      {ADDRESS_FIELDS.map(([key, label, auto]) => (
        <Input
          key={key}
          id={`${prefix}-${key}`}
          className={`f-${key}`}
          label={label}
          value={value[key]}
          onChange={(v) => set({ ...value, [key]: v })}
          autoComplete={`${prefix === 'ship' ? 'shipping' : 'billing'} ${auto}`}
          required={key !== 'street_2'}
        />
      ))}
    </>
  );
}

export function CheckoutPage() {
  useTitle('Checkout');
  const [load, retry] = useAsync(async () => {
    initiateCheckout().catch(() => {}); // the original UI announces the checkout; its answer changes nothing
    const cart = await refreshCart();
    await loadProducts(Object.keys(cart));
  }, 'checkout');
  const { cart } = useCart();
  const [shipping, setShipping] = useState(FAKE_ADDRESS);
  const [billing, setBilling] = useState(FAKE_ADDRESS);
  const [same, setSame] = useState(true);
  const [card, setCard] = useState(FAKE_CARD);
  const [paying, setPaying] = useState(false);
  // Set at once on submit (state only changes with the next render): a second submit while
  // the order is in flight, however quick, is ignored.
  const inFlight = useRef(false);
  // This order attempt's Idempotency-Key: made when the checkout opens, sent with every
  // submit of the attempt (a retry after a network error or a timeout answers the same order
  // and charges nothing), replaced after an order is placed. A declined card keeps it: the
  // shop gives the cart's lines back then, and paying again under the key is a new try.
  const attempt = useRef('');
  if (!attempt.current) attempt.current = newIdempotencyKey();
  // The lines of a submit whose outcome is unknown (no answer, or a server error): shown, and
  // paid for on a retry, even when the cart now reads empty because that order did go
  // through; the retry with the same key then shows that order.
  const [unsure, setUnsure] = useState<Line[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const errorRef = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (error) errorRef.current?.focus();
  }, [error]);

  const notice = (
    <p className="notice">
      <strong>This store is a simulation.</strong> No real order is placed and no real payment is made: the card
      below is a test number.
    </p>
  );
  const head = <h1 tabIndex={-1}>Checkout</h1>;
  if (load.status === 'failed')
    return (
      <>
        {head}
        <ErrorBox error={load.error} retry={retry} />
      </>
    );
  if (load.status === 'loading' || !cart)
    return (
      <>
        {head}
        {notice}
        <Loading>Loading your order…</Loading>
      </>
    );
  const lines = unsure ?? cartLines(cart, products);
  if (!lines.length && !paying)
    return (
      <>
        {head}
        {notice}
        <div className="empty-state">
          <p>Your cart is empty: there is nothing to pay for.</p>
          <p>
            <Link className="button primary" href="/">
              Find something to drink
            </Link>
          </p>
        </div>
      </>
    );

  const amount = totalCents(lines);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (inFlight.current) return;
    inFlight.current = true;
    setPaying(true);
    setError(null);
    try {
      const form = { amountCents: amount, shipping, billing: same ? shipping : billing, card };
      const order = await placeOrder(form, attempt.current);
      attempt.current = newIdempotencyKey();
      setUnsure(null);
      saveOrder(order);
      orderPlaced();
      navigate('/confirmation');
    } catch (err) {
      const reason = (err as Error).message.replace(/([^.!?])$/, '$1.');
      const status = err instanceof ApiError ? err.status : 0;
      // No answer, or the shop failed: the order may have gone through all the same.
      const unknown = status === 0 || status >= 500;
      setUnsure(unknown ? lines : null);
      setError(
        unknown
          ? `We could not confirm your order: ${reason} Please try again: if it did go through, you will see that order and will not be charged twice.`
          : `Your order was not placed: ${reason} Your cart has been kept, so you can try again.`,
      );
      setPaying(false);
      refreshCart().catch(() => {});
    } finally {
      inFlight.current = false;
    }
  };

  const cardHint = luhnValid(card.number)
    ? undefined
    : 'This number fails the card check digit test, so the payment will be declined. Try 4111 1111 1111 1111.';
  const expiryHint = validExpiry(card.expiration) ? undefined : 'Use the form MM/YY, for example 12/30.';

  return (
    <>
      {head}
      {notice}
      <div className="co">
        <form className="checkout" onSubmit={submit} aria-busy={paying}>
          <fieldset disabled={paying}>
            <legend>Shipping address</legend>
            <AddressFields prefix="ship" value={shipping} set={setShipping} />
          </fieldset>
          <fieldset disabled={paying}>
            <legend>Payment card</legend>
            <Input
              id="card-name"
              className="f-wide"
              label="Name on card"
              value={card.name}
              onChange={(v) => setCard({ ...card, name: v })}
              autoComplete="cc-name"
              required
            />
            <Input
              id="card-number"
              className="f-wide"
              label="Card number"
              value={card.number}
              onChange={(v) => setCard({ ...card, number: v })}
              autoComplete="cc-number"
              inputMode="numeric"
              maxLength={23}
              required
              hint={cardHint}
            />
            <Input
              id="card-expiration"
              label="Expiration (MM/YY)"
              value={card.expiration}
              onChange={(v) => setCard({ ...card, expiration: v })}
              autoComplete="cc-exp"
              required
              hint={expiryHint}
            />
            <Input
              id="card-security_code"
              label="Security code"
              value={card.security_code}
              onChange={(v) => setCard({ ...card, security_code: v })}
              autoComplete="cc-csc"
              inputMode="numeric"
              maxLength={4}
              required
            />
            <div className="check f-wide">
              <input id="same" type="checkbox" checked={same} onChange={(e) => setSame(e.target.checked)} />
              <label htmlFor="same">Billing address is the same as shipping</label>
            </div>
          </fieldset>
          {!same && (
            <fieldset disabled={paying}>
              <legend>Billing address</legend>
              <AddressFields prefix="bill" value={billing} set={setBilling} />
            </fieldset>
          )}
          {error && (
            <div className="error" role="alert" tabIndex={-1} ref={errorRef} data-testid="checkout-error">
              <p>{error}</p>
            </div>
          )}
          <button className="primary pay" type="submit" disabled={paying}>
            {paying ? 'Processing payment…' : `Place order · ${formatCents(amount)}`}
          </button>
        </form>
        <aside className="summary" aria-labelledby="summary-title">
          <h2 id="summary-title">Your order</h2>
          <ul>
            {lines.map((l) => (
              <li key={l.id}>
                <span>
                  {l.qty} × {l.product?.name ?? `Unavailable drink (${l.id})`}
                </span>
                <span>{l.product ? formatCents(lineCents(l)) : '—'}</span>
              </li>
            ))}
          </ul>
          <p className="total">
            <span>Total</span> <strong>{formatCents(amount)}</strong>
          </p>
          <p>
            <Link href="/cart">Edit cart</Link>
          </p>
        </aside>
      </div>
    </>
  );
}
