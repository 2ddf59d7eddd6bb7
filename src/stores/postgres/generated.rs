//! Loading `migrate --generate N`'s synthetic products: streamed with COPY, then merged so
//! that the generated rows become exactly products 1 to N and unchanged rows are not
//! written again.

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::SinkExt;
use tokio_postgres::Transaction;

use crate::catalog::{generated, Product};

const COPY_COLUMNS: &str =
    "id, name, category, price, rating, reviews, filename, description, alcoholic, temperature, type";

/// The generated rows: ids `g` and seven digits. The range lets the primary key's index
/// find them; the pattern leaves out any other id that sorts among them.
const GENERATED: &str = "id BETWEEN 'g0000000' AND 'g9999999' AND id ~ '^g[0-9]{7}$'";

/// Bytes handed to COPY at a time: large enough to keep the server busy, small enough that
/// memory stays flat whatever N is.
const CHUNK: usize = 256 * 1024;

/// Makes the generated rows exactly products 1 to `n`, in `tx`; the rows deleted, inserted
/// or changed.
pub(super) async fn load(tx: &Transaction<'_>, n: u32) -> Result<u64, String> {
    let sql_error = |what: &str, e: tokio_postgres::Error| format!("{what}: {e}");
    let last = generated::id(n);
    let deleted = tx
        .execute(
            &format!("DELETE FROM products WHERE {GENERATED} AND id > $1"),
            &[&last],
        )
        .await
        .map_err(|e| sql_error("deleting generated products", e))?;
    if n == 0 {
        return Ok(deleted);
    }
    let existing: i64 = tx
        .query_one(
            &format!("SELECT count(*) FROM products WHERE {GENERATED}"),
            &[],
        )
        .await
        .map_err(|e| sql_error("counting generated products", e))?
        .get(0);
    if existing == 0 {
        // None there yet: every row is new, so they go straight into the table, indexes
        // and all. Dropping the trigram indexes and building them after measured no faster
        // (a million: 94 s against 101 s on two busy cores), and a dropped index would
        // lock every search out until the migration commits.
        let copied = copy(tx, "products", n).await?;
        return Ok(deleted + copied);
    }
    // Some there (an earlier run): load them aside, then write only what differs.
    tx.batch_execute(&format!(
        "CREATE TEMPORARY TABLE generated_products ON COMMIT DROP \
         AS SELECT {COPY_COLUMNS} FROM products WITH NO DATA"
    ))
    .await
    .map_err(|e| sql_error("creating generated_products", e))?;
    copy(tx, "generated_products", n).await?;
    tx.batch_execute("ANALYZE generated_products")
        .await
        .map_err(|e| sql_error("analyzing generated_products", e))?;
    let updated = tx
        .execute(
            "UPDATE products p SET
                 name = g.name, category = g.category, price = g.price, rating = g.rating,
                 reviews = g.reviews, filename = g.filename, description = g.description,
                 alcoholic = g.alcoholic, temperature = g.temperature, type = g.type
             FROM generated_products g
             WHERE p.id = g.id
               AND (p.name, p.category, p.price, p.rating, p.reviews, p.filename,
                    p.description, p.alcoholic, p.temperature, p.type)
                   IS DISTINCT FROM
                   (g.name, g.category, g.price, g.rating, g.reviews, g.filename,
                    g.description, g.alcoholic, g.temperature, g.type)",
            &[],
        )
        .await
        .map_err(|e| sql_error("updating generated products", e))?;
    let inserted = tx
        .execute(
            &format!(
                "INSERT INTO products ({COPY_COLUMNS})
                 SELECT {COPY_COLUMNS} FROM generated_products g
                 WHERE NOT EXISTS (SELECT 1 FROM products p WHERE p.id = g.id)"
            ),
            &[],
        )
        .await
        .map_err(|e| sql_error("inserting generated products", e))?;
    Ok(deleted + updated + inserted)
}

/// Streams products 1 to `n` into `table` with COPY (text format); the rows copied.
async fn copy(tx: &Transaction<'_>, table: &str, n: u32) -> Result<u64, String> {
    let copy_error = |e: tokio_postgres::Error| format!("copying generated products: {e}");
    let sink = tx
        .copy_in(&format!("COPY {table} ({COPY_COLUMNS}) FROM STDIN"))
        .await
        .map_err(copy_error)?;
    let mut sink = std::pin::pin!(sink);
    let mut buf = BytesMut::with_capacity(CHUNK + 4096);
    for product in generated::products(n) {
        copy_row(&product, &mut buf);
        if buf.len() >= CHUNK {
            let chunk: Bytes = buf.split().freeze();
            sink.send(chunk).await.map_err(copy_error)?;
        }
    }
    if !buf.is_empty() {
        sink.send(buf.freeze()).await.map_err(copy_error)?;
    }
    sink.as_mut().finish().await.map_err(copy_error)
}

/// One row of COPY's text format: tab-separated, `\N` for null, with `\`, tab, newline and
/// carriage return escaped.
fn copy_row(p: &Product, out: &mut BytesMut) {
    fn text(out: &mut BytesMut, value: &str) {
        for byte in value.bytes() {
            match byte {
                b'\\' => out.put_slice(b"\\\\"),
                b'\t' => out.put_slice(b"\\t"),
                b'\n' => out.put_slice(b"\\n"),
                b'\r' => out.put_slice(b"\\r"),
                _ => out.put_u8(byte),
            }
        }
    }
    fn optional(out: &mut BytesMut, value: Option<&str>) {
        match value {
            Some(value) => text(out, value),
            None => out.put_slice(b"\\N"),
        }
    }
    text(out, &p.id);
    out.put_u8(b'\t');
    text(out, &p.name);
    out.put_u8(b'\t');
    optional(out, p.category.as_deref());
    out.put_u8(b'\t');
    text(out, &p.price.to_string());
    out.put_u8(b'\t');
    // Rust writes the shortest text that reads back as the same double, as PostgreSQL reads it.
    text(out, &p.rating.to_string());
    out.put_u8(b'\t');
    text(out, &p.reviews.to_string());
    out.put_u8(b'\t');
    text(out, &p.filename);
    out.put_u8(b'\t');
    optional(out, p.description.as_deref());
    out.put_u8(b'\t');
    optional(out, p.alcoholic.as_deref());
    out.put_u8(b'\t');
    optional(out, p.temperature.as_deref());
    out.put_u8(b'\t');
    optional(out, p.kind.as_deref());
    out.put_u8(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Money;

    #[test]
    fn copy_rows_escape_what_copy_reads_specially_and_write_null_as_backslash_n() {
        let product = Product {
            id: "g0000001".into(),
            name: "Tab\there".into(),
            category: None,
            price: Money::from_cents(450),
            rating: 4.5,
            reviews: 12,
            filename: "tea.jpeg".into(),
            description: Some("a\\b\nc".into()),
            alcoholic: Some("non-alcoholic".into()),
            temperature: None,
            kind: Some("tea".into()),
        };
        let mut out = BytesMut::new();

        copy_row(&product, &mut out);

        assert_eq!(
            &out[..],
            b"g0000001\tTab\\there\t\\N\t4.50\t4.5\t12\ttea.jpeg\ta\\\\b\\nc\tnon-alcoholic\t\\N\ttea\n"
        );
    }
}
