//! Files built into the binary (web bundle, product images) and how they are served.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};

/// One embedded file: its path below its folder, its bytes and its ETag.
pub struct EmbeddedFile {
    pub name: &'static str,
    pub bytes: &'static [u8],
    pub etag: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// Finds `name` among `files` (exact match only: nothing outside the set can be named).
pub fn find(files: &'static [EmbeddedFile], name: &str) -> Option<&'static EmbeddedFile> {
    files
        .binary_search_by(|f| f.name.cmp(name))
        .ok()
        .map(|i| &files[i])
}

/// The Content-Type of a file name, by extension.
pub fn content_type(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or_default();
    match ext.to_ascii_lowercase().as_str() {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        "webmanifest" => "application/manifest+json",
        _ => "application/octet-stream",
    }
}

/// Serves bytes with ETag and Cache-Control, answering 304 to a matching If-None-Match.
pub fn serve_bytes(
    req: &HttpRequest,
    name: &str,
    bytes: impl Into<actix_web::web::Bytes>,
    etag: &str,
    cache_control: &'static str,
) -> HttpResponse {
    let matches = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut response = if matches {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, cache_control));
    if matches {
        return response.finish();
    }
    response
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static(content_type(name)),
        ))
        .body(bytes.into())
}

/// Serves an embedded file.
pub fn serve(req: &HttpRequest, file: &EmbeddedFile, cache_control: &'static str) -> HttpResponse {
    serve_bytes(req, file.name, file.bytes, file.etag, cache_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalog_image_is_embedded() {
        let products = crate::catalog::parse_csv(crate::catalog::BUILTIN_CSV).unwrap();
        for p in products {
            let file = find(IMAGES, &p.filename).unwrap_or_else(|| panic!("{}", p.filename));
            assert!(
                file.bytes.starts_with(&[0xFF, 0xD8]),
                "{} is not a JPEG",
                p.filename
            );
            assert!(file.bytes.len() < 40 * 1024);
        }
    }

    #[test]
    fn the_web_bundle_has_an_index() {
        assert!(find(WEB, "index.html").is_some());
        assert!(find(WEB, "../Cargo.toml").is_none());
    }

    #[test]
    fn content_types_by_extension() {
        assert_eq!(content_type("a.JPEG"), "image/jpeg");
        assert_eq!(content_type("app.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("noext"), "application/octet-stream");
    }
}
