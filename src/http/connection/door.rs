//! Closing the listener at a drain without resetting a connection the kernel already let in.
//!
//! The kernel completes a TCP handshake before the server accepts the connection, so a client
//! may have sent its whole request while its connection still waits in the listener's accept
//! queue. Shutting or closing the listener resets every connection in that queue: when the
//! accept thread lags (a loaded machine), a drain would drop requests already sent, unanswered.
//! So the door closes in two steps: a socket filter drops new handshakes (their SYNs are lost,
//! and the client's retry finds the door shut), the accept thread empties the queue, and only
//! then is the listener shut for reading, which refuses every later attempt at once.
//!
//! Not covered: a handshake whose last ACK is in flight at the moment the filter is attached
//! (microseconds on a local network) is dropped with it. A client that connects while the
//! queue empties waits for its SYN's retry (about a second) before it is refused; behind a load
//! balancer nobody does, since the readiness grace has taken the instance out first. Off Linux
//! the listener is shut at once, as before.

use std::io;
use std::net::{Shutdown, TcpListener};
use std::time::{Duration, Instant};

use socket2::SockRef;

/// How often the accept queue is looked at while it empties.
const QUEUE_POLL: Duration = Duration::from_millis(1);

/// Closes `listener` to new connections, and once the connections already in its accept queue
/// have been taken by the accept thread (or `within` has passed), shuts it so that later ones
/// are refused at once. `Ok(false)` when the queue did not empty within `within` (those left
/// are reset). The listener is shut whatever happens before: a failure to filter or to read the
/// queue only costs the connections waiting in it.
pub async fn close(listener: &TcpListener, within: Duration) -> io::Result<bool> {
    let emptied = match platform::drop_new_handshakes(listener) {
        Ok(()) => wait_for_empty_queue(listener, within).await,
        Err(error) => Err(error),
    };
    SockRef::from(listener).shutdown(Shutdown::Read)?;
    emptied
}

/// Waits until the accept queue is empty, or `within` has passed (`Ok(false)`).
async fn wait_for_empty_queue(listener: &TcpListener, within: Duration) -> io::Result<bool> {
    let deadline = Instant::now() + within;
    loop {
        if platform::accept_queue_len(listener)? == 0 {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(QUEUE_POLL).await;
    }
}

#[cfg(target_os = "linux")]
mod platform {
    use std::io;
    use std::mem;
    use std::net::TcpListener;
    use std::os::fd::AsRawFd;

    use socket2::{SockFilter, SockRef};

    /// A classic BPF program of one instruction, `ret #0`: keep no byte of any packet.
    const DROP_EVERY_PACKET: [SockFilter; 1] = [SockFilter::new(0x06, 0, 0, 0)];

    /// Makes `listener` drop every packet that reaches it, new handshakes' SYNs among them;
    /// connections it already completed are sockets of their own, which the filter never sees.
    pub(super) fn drop_new_handshakes(listener: &TcpListener) -> io::Result<()> {
        SockRef::from(listener).attach_filter(&DROP_EVERY_PACKET)
    }

    /// Connections the kernel has completed but nobody has accepted yet: for a listening socket,
    /// `TCP_INFO` reports its accept queue's length as `tcpi_unacked`.
    pub(super) fn accept_queue_len(listener: &TcpListener) -> io::Result<u32> {
        // SAFETY: `tcp_info` is plain integers, for which all zeroes is a valid value, and
        // getsockopt writes at most `len` bytes into it.
        let mut info: libc::tcp_info = unsafe { mem::zeroed() };
        let mut len = mem::size_of::<libc::tcp_info>() as libc::socklen_t;
        let result = unsafe {
            libc::getsockopt(
                listener.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_INFO,
                (&raw mut info).cast(),
                &mut len,
            )
        };
        if result == 0 {
            Ok(info.tcpi_unacked)
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

/// Off Linux: no filter and no queue length to read, so the listener is shut at once.
#[cfg(not(target_os = "linux"))]
mod platform {
    use std::io;
    use std::net::TcpListener;

    pub(super) fn drop_new_handshakes(_: &TcpListener) -> io::Result<()> {
        Ok(())
    }

    pub(super) fn accept_queue_len(_: &TcpListener) -> io::Result<u32> {
        Ok(0)
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpStream;

    use super::*;

    #[tokio::test]
    async fn connections_waiting_to_be_accepted_are_kept_and_later_ones_refused() {
        // Arrange: three clients the kernel let in and nobody accepted yet, each with its request
        // sent; an accept thread that takes them only after the door started closing.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let mut waiting: Vec<TcpStream> = (0..3)
            .map(|_| {
                let mut client = TcpStream::connect(address).unwrap();
                client.write_all(b"ping").unwrap();
                client
            })
            .collect();
        assert_eq!(platform::accept_queue_len(&listener).unwrap(), 3);
        let acceptor = listener.try_clone().unwrap();
        let accepting = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            for _ in 0..3 {
                let (mut connection, _) = acceptor.accept().unwrap();
                let mut request = [0; 4];
                connection.read_exact(&mut request).unwrap();
                connection.write_all(b"pong").unwrap();
            }
        });

        // Act
        let emptied = close(&listener, Duration::from_secs(5)).await.unwrap();

        // Assert: every client let in is answered; a new one is refused.
        accepting.join().unwrap();
        assert!(emptied);
        for client in &mut waiting {
            let mut answer = [0; 4];
            client.read_exact(&mut answer).unwrap();
            assert_eq!(&answer, b"pong");
        }
        let refused = TcpStream::connect(address).unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
    }
}
