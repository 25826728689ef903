//! Throwaway PostgreSQL and Redis servers on free ports, for tests that kill and restart their
//! dependencies. The shared local services (`TEST_DATABASE_URL`, `TEST_REDIS_URL`) are never
//! touched: other tests run against them at the same time.
//!
//! Both are stopped when dropped, also when the test panics.

#![allow(dead_code)] // shared by the rate-limit and fault tests

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// A free TCP port on 127.0.0.1 (bound and released: another process may take it meanwhile,
/// which is unlikely enough for tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

// ------------------------------------------------------------------ Redis

/// A throwaway `redis-server` (no persistence, loopback only), killed with SIGKILL by
/// [`OwnRedis::kill`] or on drop.
pub struct OwnRedis {
    pub port: u16,
    child: Option<tokio::process::Child>,
}

impl OwnRedis {
    /// Starts `redis-server` on `port` and waits until it answers `PING`.
    pub async fn start(port: u16) -> Self {
        let child = tokio::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
                "--bind",
                "127.0.0.1",
            ])
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server is installed");
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).expect("url");
        for _ in 0..100 {
            if let Ok(mut c) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING")
                    .query_async::<String>(&mut c)
                    .await
                    .is_ok()
            {
                return Self {
                    port,
                    child: Some(child),
                };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("redis-server on {port} did not start");
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// SIGKILL: the server vanishes without closing anything gracefully.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.expect("kill our redis-server");
        }
    }
}

// ------------------------------------------------------------------ PostgreSQL

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// A throwaway PostgreSQL 15 cluster in a temporary folder, listening on 127.0.0.1 only (its
/// Unix socket inside that folder). It runs as the `postgres` OS user (PostgreSQL refuses
/// root). Dropping it stops the server (`immediate`, then SIGKILL if needed) and removes the
/// folder.
pub struct OwnPostgres {
    pub port: u16,
    dir: tempfile::TempDir,
}

impl OwnPostgres {
    /// `initdb` into a fresh folder, then start the server on a free port.
    pub async fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("sm-pg-")
            .tempdir()
            .expect("tempdir");
        let status = std::process::Command::new("chown")
            .args(["postgres:postgres"])
            .arg(dir.path())
            .status()
            .expect("chown");
        assert!(status.success(), "chown postgres {}", dir.path().display());
        let pg = Self {
            port: free_port(),
            dir,
        };
        let data = pg.data();
        pg.as_postgres(
            "initdb",
            &[
                "-D",
                path_str(&data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
        )
        .await;
        pg.resume().await;
        pg
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Starts the server on the same port and data folder; returns once it accepts connections.
    pub async fn resume(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {}",
            self.port,
            path_str(self.dir.path())
        );
        let log = self.dir.path().join("server.log");
        self.as_postgres(
            "pg_ctl",
            &[
                "-D",
                path_str(&self.data()),
                "-l",
                path_str(&log),
                "-o",
                &options,
                "-w",
                "-t",
                "30",
                "start",
            ],
        )
        .await;
    }

    /// Fast shutdown (sessions are ended, committed work is kept); returns once it is down.
    pub async fn stop_fast(&self) {
        self.as_postgres(
            "pg_ctl",
            &[
                "-D",
                path_str(&self.data()),
                "-m",
                "fast",
                "-w",
                "-t",
                "30",
                "stop",
            ],
        )
        .await;
    }

    async fn as_postgres(&self, program: &str, args: &[&str]) {
        let output = tokio::process::Command::new("runuser")
            .args(["-u", "postgres", "--", &format!("{PG_BIN}/{program}")])
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .await
            .expect("runuser");
        if !output.status.success() {
            let log =
                std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
            panic!(
                "{program} {args:?} failed: {}\n{}\nserver log:\n{log}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr),
            );
        }
    }

    /// The postmaster's pid, while it runs.
    fn pid(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.data().join("postmaster.pid")).ok()?;
        text.lines().next().map(str::to_owned)
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        if self.pid().is_none() {
            return;
        }
        let _ = std::process::Command::new("runuser")
            .args(["-u", "postgres", "--", &format!("{PG_BIN}/pg_ctl")])
            .args(["-D", path_str(&self.data()), "-m", "immediate", "-w"])
            .args(["-t", "10", "stop"])
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        // Still there (pg_ctl failed): kill it, but only if that pid is still a postgres.
        if let Some(pid) = self.pid()
            && std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "postgres")
        {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid])
                .status();
        }
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}
