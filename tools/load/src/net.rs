//! Client connections: parse a base URL, open a TCP connection from a chosen source address,
//! and speak HTTP/1.1 over it with hyper (one connection per stream or worker, so the number
//! of sockets is exactly what the benchmark asks for).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpSocket, TcpStream};

/// Where requests go: `http://HOST:PORT` (no TLS: loopback benchmarks only).
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    /// `Host` header value.
    pub authority: String,
}

impl Target {
    /// Parses `http://127.0.0.1:8000` (a trailing path is ignored; names are resolved once).
    pub async fn parse(url: &str) -> anyhow::Result<Self> {
        let Some(rest) = url.strip_prefix("http://") else {
            bail!("`{url}`: only http:// URLs are supported");
        };
        let authority = rest.split('/').next().unwrap_or(rest).to_owned();
        let with_port = if authority.contains(':') {
            authority.clone()
        } else {
            format!("{authority}:80")
        };
        let addr = tokio::net::lookup_host(&with_port)
            .await
            .with_context(|| format!("resolving {with_port}"))?
            .next()
            .with_context(|| format!("{with_port} resolves to nothing"))?;
        Ok(Self { addr, authority })
    }
}

/// Parses `127.0.0.2-127.0.0.9` (a range in the last octet) or `a,b,c`.
pub fn parse_sources(spec: &str) -> anyhow::Result<Vec<IpAddr>> {
    let mut out = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if let Some((a, b)) = part.split_once('-') {
            let (a, b): (std::net::Ipv4Addr, std::net::Ipv4Addr) = (a.parse()?, b.parse()?);
            let (oa, ob) = (a.octets(), b.octets());
            if oa[..3] != ob[..3] || oa[3] > ob[3] {
                bail!("`{part}`: a range must differ only in the last octet, low to high");
            }
            for last in oa[3]..=ob[3] {
                out.push(IpAddr::from([oa[0], oa[1], oa[2], last]));
            }
        } else {
            out.push(part.parse()?);
        }
    }
    Ok(out)
}

/// The source address of client `i`: round robin over `sources`, `None` (the kernel's choice)
/// when the only source is 127.0.0.1.
pub fn pick_source(sources: &[IpAddr], i: usize) -> Option<IpAddr> {
    let ip = sources[i % sources.len()];
    (sources.len() > 1 || ip != IpAddr::from([127, 0, 0, 1])).then_some(ip)
}

/// A ChatKit `POST` of `body` to `path` as the dev-mode user `user`.
pub fn chatkit_post(
    target: &Target,
    path: &str,
    user: &str,
    body: Bytes,
) -> Result<hyper::Request<Full<Bytes>>, hyper::http::Error> {
    hyper::Request::post(path)
        .header(hyper::header::HOST, &target.authority)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header("x-user-id", user)
        .body(Full::new(body))
}

/// Waits for every worker, at most until `deadline`; the rest are aborted (a server that stops
/// answering cannot hold a run past its grace period).
pub async fn join_until(mut workers: tokio::task::JoinSet<()>, deadline: std::time::Instant) {
    let grace = tokio::time::sleep_until(deadline.into());
    tokio::pin!(grace);
    loop {
        tokio::select! {
            next = workers.join_next() => if next.is_none() { break },
            _ = &mut grace => { workers.abort_all(); break }
        }
    }
}

/// Opens a TCP connection to `target`, bound to `source` when given (spreads the 4-tuples over
/// several loopback addresses so one address's ephemeral ports do not run out).
pub async fn connect(target: SocketAddr, source: Option<IpAddr>) -> std::io::Result<TcpStream> {
    let socket = if target.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(ip) = source {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    let stream = socket.connect(target).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// An HTTP/1.1 connection ready for requests; its driver runs on its own task.
pub async fn handshake(stream: TcpStream) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// Connect + handshake, with a deadline.
pub async fn open(
    target: &Target,
    source: Option<IpAddr>,
    timeout: Duration,
) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = tokio::time::timeout(timeout, connect(target.addr, source))
        .await
        .context("connect timed out")??;
    handshake(stream).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_range_expands_to_every_address_in_it() {
        let got = parse_sources("127.0.0.2-127.0.0.4,127.0.0.9").expect("valid");
        let want: Vec<IpAddr> = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.9"]
            .iter()
            .map(|s| s.parse().expect("ip"))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn a_reversed_or_cross_subnet_range_is_refused() {
        assert!(parse_sources("127.0.0.9-127.0.0.2").is_err());
        assert!(parse_sources("127.0.0.2-127.0.1.2").is_err());
    }

    #[tokio::test]
    async fn a_url_gives_the_address_and_host_header() {
        let t = Target::parse("http://127.0.0.1:8123/chatkit")
            .await
            .expect("valid");
        assert_eq!(t.addr, "127.0.0.1:8123".parse().expect("addr"));
        assert_eq!(t.authority, "127.0.0.1:8123");
        assert!(Target::parse("https://x").await.is_err());
    }
}
