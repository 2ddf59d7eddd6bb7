import { formatPrice } from '../lib/money';
import { loadOrder } from '../lib/order';
import { Link } from '../router';
import { useTitle } from '../components/bits';
import { CheckIcon } from '../components/icons';

export function ConfirmationPage() {
  const order = loadOrder();
  useTitle(order ? 'Order confirmed' : 'No recent order');
  if (!order)
    return (
      <section className="empty-state">
        <h1 tabIndex={-1}>No recent order</h1>
        <p>There is no order to show here yet.</p>
        <p>
          <Link className="button primary" href="/">
            Start shopping
          </Link>
        </p>
      </section>
    );
  const items = Array.isArray(order.items) ? order.items : [];
  return (
    <section className="confirmation">
      <CheckIcon />
      <h1 tabIndex={-1}>Thank you! Your order is confirmed.</h1>
      <p>
        Order number <strong className="oid">{String(order.order_id)}</strong>
      </p>
      <table className="items">
        <caption className="sr">Items in your order</caption>
        <thead>
          <tr>
            <th scope="col">Drink</th>
            <th scope="col">Qty</th>
            <th scope="col">Price</th>
            <th scope="col">Subtotal</th>
          </tr>
        </thead>
        <tbody>
          {items.map((i) => (
            <tr key={i.id}>
              <td>{i.name}</td>
              <td>{i.quantity}</td>
              <td>{formatPrice(i.price)}</td>
              <td>{formatPrice(i.subtotal)}</td>
            </tr>
          ))}
        </tbody>
        <tfoot>
          <tr>
            <th scope="row" colSpan={3}>
              Total charged
            </th>
            <td>
              <strong data-testid="order-amount">{formatPrice(order.amount)}</strong>
            </td>
          </tr>
        </tfoot>
      </table>
      <p className="muted">This store is a simulation: no real payment was made and nothing will be delivered.</p>
      <p>
        <Link className="button primary" href="/">
          Keep shopping
        </Link>
      </p>
    </section>
  );
}
