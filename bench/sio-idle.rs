//! socket.io on its own: the smallest server socketioxide makes, for what an idle connection
//! costs in the library, apart from anything of Bubble's. Every socket on `/` is accepted and
//! nothing more; the engine is configured as `bubble`'s (websocket read buffer, packet queue).
//! With `detach` as second argument, each request's head is first copied out of hyper's read
//! buffer, as `bubble` does (`src/http/layers.rs`), which engineioxide would otherwise keep alive
//! for as long as the connection lasts.
//!
//! ```sh
//! cargo build --release --example sio-idle
//! ./target/release/examples/sio-idle 3997 &
//! ./target/release/bubble-bench --url http://127.0.0.1:3997 --pid $! idle
//! ```
use axum::extract::Request;
use http::{HeaderMap, HeaderValue, Uri};
use socketioxide::SocketIo;
use socketioxide::extract::SocketRef;

/// The request with its headers and URI in buffers of their own.
async fn detach(mut req: Request) -> Request {
    let mut headers = HeaderMap::with_capacity(req.headers().len());
    for (name, value) in req.headers() {
        if let Ok(value) = HeaderValue::from_bytes(value.as_bytes()) {
            headers.append(name.clone(), value);
        }
    }
    *req.headers_mut() = headers;
    if let Ok(uri) = Uri::from_maybe_shared(bytes::Bytes::from(req.uri().to_string())) {
        // The router keeps a copy of the URI too.
        if let Some(original) = req.extensions_mut().get_mut::<axum::extract::OriginalUri>() {
            original.0 = uri.clone();
        }
        *req.uri_mut() = uri;
    }
    req
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(3997);
    let (layer, io) = SocketIo::builder()
        .ws_read_buffer_size(256)
        .max_buffer_size(1024)
        .build_layer();
    io.ns("/", async |_: SocketRef| {});
    let mut app = axum::Router::new().layer(layer);
    if std::env::args().nth(2).as_deref() == Some("detach") {
        app = app.layer(axum::middleware::map_request(detach));
    }
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on {}", listener.local_addr()?);
    axum::serve(listener, app).await
}
