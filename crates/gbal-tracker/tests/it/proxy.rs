//! A TCP proxy in front of the PostgreSQL server that a test can cut (no listener, every
//! connection dropped) and restore on the same port, to play an unreachable database
//! without stopping the shared server.

use std::net::SocketAddr;
use std::sync::Mutex;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// The proxy; it listens on 127.0.0.1 on a port of its own.
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    running: Mutex<Option<JoinHandle<()>>>,
}

impl Proxy {
    /// Starts forwarding a free local port to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let addr = listener.local_addr().expect("the proxy's address");
        Self {
            addr,
            upstream,
            running: Mutex::new(Some(tokio::spawn(forward(listener, upstream)))),
        }
    }

    /// The port callers connect to.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Closes the listening socket and every connection: connections break, new ones are
    /// refused.
    pub async fn cut(&self) {
        let running = self.running.lock().unwrap().take();
        if let Some(task) = running {
            // The task owns the listener and, in its JoinSet, every connection.
            task.abort();
            let _ = task.await;
        }
    }

    /// Listens again, on the same port.
    pub async fn restore(&self) {
        let listener = TcpListener::bind(self.addr)
            .await
            .expect("rebind the proxy's port");
        *self.running.lock().unwrap() = Some(tokio::spawn(forward(listener, self.upstream)));
    }
}

async fn forward(listener: TcpListener, upstream: SocketAddr) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((mut client, _)) = accepted else { continue };
                connections.spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}
