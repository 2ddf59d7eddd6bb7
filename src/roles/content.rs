//! content: product images, built in or fetched once from a public bucket and cached.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use actix_web::http::{Method, StatusCode};
use actix_web::web::Bytes;
use actix_web::{web, HttpRequest, HttpResponse};
use sha2::{Digest, Sha256};

use crate::http::assets::{self, IMAGES};
use crate::http::client::{send, send_error, start_call, CallFailure, Http, Repeat};
use crate::http::ApiError;

const CACHE_CONTROL: &str = "public, max-age=86400";
/// Bounds of the cache of fetched images, in entries and bytes.
const CACHE_ENTRIES: usize = 256;
const CACHE_BYTES: usize = 32 * 1024 * 1024;
/// The largest image fetched from a bucket.
const MAX_IMAGE_BYTES: usize = 4 * 1024 * 1024;

pub struct State {
    /// Base URL of an image bucket; `None` serves the built-in images.
    pub source: Option<String>,
    pub cache: ImageCache,
}

impl State {
    pub fn new(source: Option<String>) -> Self {
        State {
            source: source.map(|s| s.trim_end_matches('/').to_string()),
            cache: ImageCache::default(),
        }
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/{filename}", web::get().to(image))
        .route("/{filename}", web::head().to(image));
}

/// Only names of `[A-Za-z0-9._-]` (so no path can be formed), not starting with a dot.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

async fn image(
    req: HttpRequest,
    state: web::Data<State>,
    http: web::Data<Http>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = path.into_inner();
    if !valid_name(&name) {
        return Err(ApiError::Validation(
            "Invalid image name: use A-Z, a-z, 0-9, '.', '_' and '-'".into(),
        ));
    }
    let Some(base) = &state.source else {
        let file = assets::find(IMAGES, &name)
            .ok_or_else(|| ApiError::NotFound(format!("No image named {name}")))?;
        return Ok(assets::serve(&req, file, CACHE_CONTROL));
    };
    let cached = match state.cache.get(&name) {
        Some(hit) => hit,
        None => {
            let fetched = fetch(&http, base, &name).await?;
            state.cache.put(&name, fetched.clone());
            fetched
        }
    };
    Ok(assets::serve_bytes(
        &req,
        &name,
        cached.bytes,
        &cached.etag,
        CACHE_CONTROL,
    ))
}

async fn fetch(http: &Http, base: &str, name: &str) -> Result<CachedImage, ApiError> {
    let url = format!("{base}/{name}");
    let sent = send(http, Repeat::Safe, &url, Bytes::new(), |client| {
        let mut request = client.get(&url);
        let call = start_call(
            "content-source",
            "content-source",
            &Method::GET,
            request.headers_mut(),
        );
        (request, call)
    })
    .await;
    let mut response = sent.map_err(|e| send_error("the image bucket", e))?;
    match response.status() {
        StatusCode::OK => {}
        StatusCode::NOT_FOUND | StatusCode::FORBIDDEN => {
            return Err(ApiError::NotFound(format!("No image named {name}")))
        }
        other => {
            return Err(ApiError::Upstream(format!(
                "the image bucket answered {other}"
            )))
        }
    }
    let bytes = response
        .body()
        .limit(MAX_IMAGE_BYTES)
        .await
        .map_err(|e| ApiError::Call {
            what: "the image bucket".into(),
            failure: CallFailure::Incomplete(e),
        })?;
    let digest = Sha256::digest(&bytes);
    let etag = format!("\"{}\"", hex::encode(&digest[..8]));
    Ok(CachedImage { bytes, etag })
}

#[derive(Clone)]
pub struct CachedImage {
    bytes: Bytes,
    etag: String,
}

/// Fetched images, bounded in count and bytes; the oldest go first.
#[derive(Default)]
pub struct ImageCache {
    inner: Mutex<CacheInner>,
}

#[derive(Default)]
struct CacheInner {
    images: HashMap<String, CachedImage>,
    order: VecDeque<String>,
    bytes: usize,
}

impl ImageCache {
    fn get(&self, name: &str) -> Option<CachedImage> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.images.get(name).cloned()
    }

    fn put(&self, name: &str, image: CachedImage) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.images.contains_key(name) {
            return;
        }
        inner.bytes += image.bytes.len();
        inner.images.insert(name.to_string(), image);
        inner.order.push_back(name.to_string());
        while inner.images.len() > CACHE_ENTRIES || inner.bytes > CACHE_BYTES {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            if let Some(old) = inner.images.remove(&oldest) {
                inner.bytes -= old.bytes.len();
            }
        }
    }

    pub fn len(&self) -> usize {
        self.inner.lock().map(|i| i.images.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_form_paths() {
        assert!(valid_name("sweet-tea.jpeg"));
        for bad in ["", "..", ".env", "a/b", "a\\b", "%2e%2e", "a b", "ü.jpeg"] {
            assert!(!valid_name(bad), "{bad:?} accepted");
        }
    }

    #[test]
    fn the_cache_is_bounded() {
        let cache = ImageCache::default();
        for i in 0..CACHE_ENTRIES + 10 {
            let image = CachedImage {
                bytes: Bytes::from_static(b"x"),
                etag: String::new(),
            };
            cache.put(&format!("{i}.jpeg"), image);
        }
        assert_eq!(cache.len(), CACHE_ENTRIES);
        assert!(cache.get("0.jpeg").is_none());
        assert!(cache.get(&format!("{}.jpeg", CACHE_ENTRIES + 9)).is_some());
    }
}
