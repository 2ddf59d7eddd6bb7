//! Small HTTP servers a test controls ([`Stub`]), standing in for a bucket or an upstream.
//!
//! [`echo_stub`] answers every request with what it received.

use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use serde_json::Value;

/// A small HTTP server the test controls; it stops when dropped.
pub struct Stub {
    pub url: String,
    handle: actix_web::dev::ServerHandle,
}

impl Stub {
    /// Serves the routes `configure` adds (404 for anything else) on a free port.
    pub fn start<F>(configure: F) -> Stub
    where
        F: Fn(&mut actix_web::web::ServiceConfig) + Send + Clone + 'static,
    {
        // Bound here and now, so port 0 (the kernel's choice) cannot be taken meanwhile.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server =
            actix_web::HttpServer::new(move || actix_web::App::new().configure(configure.clone()))
                .workers(1)
                .disable_signals()
                .shutdown_timeout(1)
                .listen(listener)
                .unwrap()
                .run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        Stub { url, handle }
    }

    /// Stops the server at once; connections to it are refused afterwards.
    pub async fn stop(&self) {
        self.handle.stop(false).await;
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
    }
}

/// A stub upstream that answers every request with what it received:
/// `{"method", "path", "query", "body", "headers": {name: value}}`, with the status a
/// path `/status/<code>` names (200 otherwise) and header `x-echo: yes`.
pub fn echo_stub() -> Stub {
    Stub::start(|cfg| {
        cfg.default_service(actix_web::web::to(
            |req: actix_web::HttpRequest, body: Bytes| async move {
                let status = req
                    .path()
                    .strip_prefix("/status/")
                    .and_then(|s| s.parse::<u16>().ok())
                    .and_then(|s| StatusCode::from_u16(s).ok())
                    .unwrap_or(StatusCode::OK);
                let headers: serde_json::Map<String, Value> = req
                    .headers()
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.as_str().to_string(),
                            Value::String(v.to_str().unwrap_or_default().to_string()),
                        )
                    })
                    .collect();
                actix_web::HttpResponse::build(status)
                    .insert_header(("x-echo", "yes"))
                    .json(serde_json::json!({
                        "method": req.method().as_str(),
                        "path": req.uri().path(),
                        "query": req.uri().query(),
                        "body": String::from_utf8_lossy(&body),
                        "headers": headers,
                    }))
            },
        ));
    })
}
