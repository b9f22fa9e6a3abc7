//! A tiny TCP proxy in front of PostgreSQL that a test can cut and restore, to play a
//! database (or network) outage.

use std::net::SocketAddr;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// Forwards connections from `addr` to `target` until killed.
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    target: SocketAddr,
    accept: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Starts a proxy on a free local port.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut p = Self {
            addr,
            target,
            accept: None,
        };
        p.accept = Some(tokio::spawn(serve(listener, target)));
        p
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Closes every forwarded connection and stops listening (new connections are refused).
    pub async fn kill(&mut self) {
        if let Some(task) = self.accept.take() {
            task.abort();
            let _ = task.await; // dropping the task drops its connections
        }
    }

    /// Listens again on the same port.
    pub async fn restore(&mut self) {
        let listener = TcpListener::bind(self.addr).await.unwrap();
        self.accept = Some(tokio::spawn(serve(listener, self.target)));
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(task) = self.accept.take() {
            task.abort();
        }
    }
}

async fn serve(listener: TcpListener, target: SocketAddr) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((mut client, _)) = listener.accept().await else {
            continue;
        };
        connections.spawn(async move {
            if let Ok(mut server) = TcpStream::connect(target).await {
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            }
        });
    }
}

/// `host:port` of a `postgres://` URL (port 5432 when not given).
pub fn url_target(url: &str) -> SocketAddr {
    use std::net::ToSocketAddrs;
    let rest = url.split("://").nth(1).unwrap();
    let authority = rest.split(['/', '?']).next().unwrap();
    let host_port = authority.rsplit('@').next().unwrap();
    let with_port = if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:5432")
    };
    with_port.to_socket_addrs().unwrap().next().unwrap()
}

/// The URL with its host and port replaced by `addr`.
pub fn via(url: &str, addr: SocketAddr) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let credentials = authority
        .rsplit_once('@')
        .map_or(String::new(), |(c, _)| format!("{c}@"));
    format!("{scheme}://{credentials}{addr}{tail}")
}
