//! product: the catalog in product-data, by id, by list and by search.

use std::future::ready;
use std::time::{Duration, Instant};

use actix_web::http::header::ContentType;
use actix_web::{web, HttpResponse};
use bytes::Bytes;
use futures_util::stream::{self, Stream, StreamExt};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::domain::ProductId;
use crate::faults::Faults;
use crate::http::context::RoleContext;
use crate::http::{body, ApiError};
use crate::stores::{Batches, Count, ProductStore, SEARCH_COUNT_CAP};
use crate::telemetry::{logfmt, span};

/// The most results one search returns, and the longest query.
pub const MAX_PAGE_SIZE: usize = 100;
pub const MAX_QUERY_LEN: usize = 256;

// A page never holds more results than its total says there are.
const _: () = assert!(SEARCH_COUNT_CAP >= MAX_PAGE_SIZE);
/// The most ids one `/documents` call may name.
pub const MAX_DOCUMENT_IDS: usize = 1000;

pub struct State {
    pub products: ProductStore,
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/documents", web::get().to(documents))
        .route("/documents", web::post().to(documents))
        .route("/search", web::get().to(search))
        .route("/search", web::post().to(search))
        .route("/suggestions", web::get().to(suggestions))
        .route("/suggestions", web::post().to(suggestions))
        .route("/products/{id}", web::get().to(product));
}

/// `["<id>", ...]` → those products; an empty or absent body → all of them.
async fn documents(
    state: web::Data<State>,
    ctx: web::Data<RoleContext>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let ids: Vec<String> = body::optional_json(payload).await?.unwrap_or_default();
    if ids.len() > MAX_DOCUMENT_IDS {
        return Err(ApiError::Validation(format!(
            "At most {MAX_DOCUMENT_IDS} ids per request"
        )));
    }
    let ids = ids
        .iter()
        .map(|id| ProductId::parse(id))
        .collect::<Result<Vec<_>, _>>()?;
    let faults = ctx.faults.get();
    // Only a request that names it: the whole catalog (an empty list) is still served.
    if let Some(failing) = faults.product_failure.as_ref().filter(|f| ids.contains(f)) {
        return Err(product_failure(failing));
    }
    if ids.is_empty() {
        let batches = state.products.catalog(query_delay(&faults)).await?;
        return Ok(HttpResponse::Ok()
            .content_type(ContentType::json())
            .streaming(json_array(batches)));
    }
    let products = state.products.documents(&ids, query_delay(&faults)).await?;
    Ok(HttpResponse::Ok().json(products))
}

/// The products of `batches` as one JSON array, written as they come. A failure part-way
/// cuts the response short (its status is already sent), so the client cannot take it for
/// the whole catalog, and is logged.
fn json_array(batches: Batches) -> impl Stream<Item = Result<Bytes, ApiError>> {
    let mut first = true;
    let items = batches.map(move |batch| {
        let batch = batch.map_err(|e| {
            let e = ApiError::from(e);
            log::error!(
                target: "request",
                "msg=\"whole catalog cut short\" error={}",
                logfmt::value(&e.log_text())
            );
            e
        })?;
        let mut out = Vec::with_capacity(batch.len() * 320);
        for product in &batch {
            if !std::mem::take(&mut first) {
                out.push(b',');
            }
            serde_json::to_writer(&mut out, product).map_err(|e| ApiError::Corrupt {
                what: "a product",
                cause: e,
            })?;
        }
        Ok(Bytes::from(out))
    });
    stream::once(ready(Ok(Bytes::from_static(b"["))))
        .chain(items)
        .chain(stream::once(ready(Ok(Bytes::from_static(b"]")))))
}

#[derive(Deserialize, Default)]
struct SearchRequest {
    #[serde(default)]
    query: String,
    #[serde(default)]
    page: Option<Page>,
}

#[derive(Deserialize)]
struct Page {
    size: Option<u64>,
}

async fn search(
    state: web::Data<State>,
    ctx: web::Data<RoleContext>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    find(state, ctx, payload, Count::UpToCap).await
}

/// As search, for a list under a search box: its total says only whether there are more
/// matches than the page (which costs one statement on any catalog).
async fn suggestions(
    state: web::Data<State>,
    ctx: web::Data<RoleContext>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    find(state, ctx, payload, Count::PastPage).await
}

async fn find(
    state: web::Data<State>,
    ctx: web::Data<RoleContext>,
    payload: web::Payload,
    count: Count,
) -> Result<HttpResponse, ApiError> {
    let request: SearchRequest = body::optional_json(payload).await?.unwrap_or_default();
    if request.query.chars().count() > MAX_QUERY_LEN {
        return Err(ApiError::Validation(format!(
            "Query is longer than {MAX_QUERY_LEN} characters"
        )));
    }
    // No product's text holds one, and PostgreSQL text cannot: it is bad input, not a
    // store failure.
    if request.query.contains('\0') {
        return Err(ApiError::Validation(
            "Query contains a NUL character".into(),
        ));
    }
    let size = match request.page.and_then(|p| p.size) {
        None => MAX_PAGE_SIZE,
        Some(n @ 1..=100) => n as usize,
        Some(_) => {
            return Err(ApiError::Validation(format!(
                "page.size must be from 1 to {MAX_PAGE_SIZE}"
            )))
        }
    };
    let faults = ctx.faults.get();
    if faults.basic_bug {
        span::mark_fault("basic-bug");
        return Err(basic_bug());
    }
    let page = state
        .products
        .search(&request.query, size, count, query_delay(&faults))
        .await?;
    Ok(HttpResponse::Ok().json(json!({
        "meta": {"page": {
            "total_results": page.total,
            "total_results_relation": page.relation.as_str(),
            "size": size,
        }},
        "results": page.results,
    })))
}

/// The basic-bug fault: burn CPU on the worker for a while, then fail.
fn basic_bug() -> ApiError {
    let started = Instant::now();
    let mut digest = [0u8; 32];
    while started.elapsed() < Duration::from_millis(250) {
        for _ in 0..1000 {
            digest = Sha256::digest(digest).into();
        }
    }
    ApiError::Unexpected(format!(
        "basic-bug fault: search gave up after heavy work ({:02x})",
        digest[0]
    ))
}

/// The time the product-data-slow fault adds to each product-data query; a request it
/// slows is marked.
fn query_delay(faults: &Faults) -> Duration {
    let extra = faults.product_data_delay();
    if !extra.is_zero() {
        span::mark_fault("product-data-slow");
    }
    extra
}

/// The product-failure fault: the one product whose lookups fail, as if its record broke
/// them, while every other product is served.
fn product_failure(id: &ProductId) -> ApiError {
    span::mark_fault("product-failure");
    ApiError::Unexpected(format!(
        "product-failure fault: product {id} cannot be served"
    ))
}

async fn product(
    state: web::Data<State>,
    ctx: web::Data<RoleContext>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = ProductId::parse(&path.into_inner())?;
    let faults = ctx.faults.get();
    if faults.product_failure.as_ref() == Some(&id) {
        return Err(product_failure(&id));
    }
    match state.products.get(&id, query_delay(&faults)).await? {
        Some(product) => Ok(HttpResponse::Ok().json(product)),
        None => Err(ApiError::NotFound(format!("No product with id {id}"))),
    }
}
