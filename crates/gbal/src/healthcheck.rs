//! `gbal healthcheck URL`: exit 0 when a plain-HTTP URL answers 2xx, for images without curl.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Why the check failed.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    /// Not an `http://host[:port]/path` URL.
    #[error("only http://host[:port]/path URLs can be checked: {0}")]
    Url(String),
    /// Could not connect, send or read.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Answered, but not 2xx.
    #[error("answered: {0}")]
    Status(String),
}

/// Sends `GET` and returns the status line of a 2xx answer.
pub fn check(url: &str, timeout: Duration) -> Result<String, HealthError> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| HealthError::Url(url.to_owned()))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err(HealthError::Url(url.to_owned()));
    }
    let with_port = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let addr = with_port
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| HealthError::Url(url.to_owned()))?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nUser-Agent: gbal-healthcheck\r\n\r\n"
    )?;
    let mut head = Vec::new();
    let mut buf = [0u8; 512];
    while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 4096 {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    let code = line.split_whitespace().nth(1).unwrap_or_default();
    if code.len() == 3 && code.starts_with('2') {
        Ok(line)
    } else {
        Err(HealthError::Status(if line.is_empty() {
            "no status line".to_owned()
        } else {
            line
        }))
    }
}
