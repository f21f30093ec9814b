//! A TCP connection before HTTP sees it: admitted within `server.max_connections` and
//! `server.max_connections_per_address` (`limits`), or refused at once with a 503 and closed;
//! then every request head it carries is bounded in time (`head_deadline`). At a drain, the
//! listener is closed without resetting connections the kernel already let in (`door`).

pub mod door;
mod head_deadline;
mod limits;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::rt::net::TcpStream;
use tokio::io::AsyncWriteExt;

pub use head_deadline::HeadDeadline;
pub use limits::ConnectionLimits;
pub use limits::ConnectionPlace;
use limits::Refusal;

use crate::metric_names;

/// How long a refused connection's 503 may take to write before the connection is just closed.
const REFUSAL_WRITE_TIMEOUT: Duration = Duration::from_millis(100);

/// An admitted connection, holding its place until it closes.
pub type Connection = HeadDeadline<TcpStream, ConnectionPlace>;

/// Admits `stream` within `limits`, each of its request heads bounded by `head_timeout`; a
/// refused one is answered 503 (as far as its send buffer takes it at once) and closed.
pub async fn admit(
    mut stream: TcpStream,
    limits: &Arc<ConnectionLimits>,
    head_timeout: Duration,
) -> io::Result<(Connection, Option<SocketAddr>)> {
    let peer = stream.peer_addr().ok();
    let place = match peer.map(|peer| limits.admit(peer.ip())) {
        Some(Ok(place)) => place,
        Some(Err(refusal)) => {
            refuse(&mut stream, refusal).await;
            return Err(io::Error::other("connection refused by a bound"));
        }
        // A peer whose address cannot be read has already gone.
        None => return Err(io::Error::other("peer address unreadable")),
    };
    Ok((HeadDeadline::new(stream, head_timeout, place), peer))
}

async fn refuse(stream: &mut TcpStream, refusal: Refusal) {
    let (bound, message) = match refusal {
        Refusal::Total => (
            "connections",
            "this instance has as many connections open as it takes; try again shortly",
        ),
        Refusal::PerAddress => (
            "connections_per_address",
            "this address has as many connections open as one address may; close some, or \
             try again shortly",
        ),
    };
    metrics::counter!(metric_names::CONNECTIONS_REFUSED, "bound" => bound).increment(1);
    let body = serde_json::json!({"error": {"code": "overloaded", "message": message}}).to_string();
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    // Hardly waits: a client that cannot take the answer at once gets the close alone.
    let _ =
        tokio::time::timeout(REFUSAL_WRITE_TIMEOUT, stream.write_all(response.as_bytes())).await;
}
