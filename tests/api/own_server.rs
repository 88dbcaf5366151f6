//! A PostgreSQL or MariaDB server of the test's own, on its own port and data
//! directory, that the test stops and starts again while the shared servers
//! the other tests use stay up.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use sqlx::Connection;
use tempfile::TempDir;
use tokio::process::{Child, Command};

/// How long a server may take to start (or to recover after a crash).
const START_DEADLINE: Duration = Duration::from_secs(90);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Postgres,
    MariaDb,
}

/// A running server of the test's own; stopped when dropped.
pub struct OwnServer {
    engine: Engine,
    dir: TempDir,
    port: u16,
    /// MariaDB runs as our child; PostgreSQL is started and stopped by `pg_ctl`.
    child: Option<Child>,
}

impl OwnServer {
    /// A new data directory, initialised and started; panics, saying what to
    /// install, when the server's binaries are missing.
    pub async fn start(engine: Engine) -> OwnServer {
        let dir = tempfile::tempdir().unwrap();
        let mut server = OwnServer {
            engine,
            port: free_port(),
            dir,
            child: None,
        };
        match engine {
            Engine::Postgres => {
                if running_as_root() {
                    // initdb refuses root: the data directory is the postgres user's.
                    run(Command::new("chown")
                        .arg("postgres:postgres")
                        .arg(server.dir.path()))
                    .await;
                }
                let data = server.data();
                run(server
                    .postgres("initdb")
                    .arg("-D")
                    .arg(&data)
                    .args(["-U", "postgres", "-A", "trust", "-N"]))
                .await;
            }
            Engine::MariaDb => {
                let install = binary(&["mariadb-install-db", "mysql_install_db"]);
                run(Command::new(install)
                    .arg("--no-defaults")
                    .arg(format!("--datadir={}", server.data().display()))
                    .args([
                        "--user=root",
                        "--auth-root-authentication-method=normal",
                        "--skip-test-db",
                    ]))
                .await;
            }
        }
        server.start_again().await;
        server
    }

    /// The database the service uses on this server.
    pub fn url(&self) -> String {
        match self.engine {
            Engine::Postgres => format!("postgres://postgres@127.0.0.1:{}/postgres", self.port),
            Engine::MariaDb => format!("mysql://root@127.0.0.1:{}/test", self.port),
        }
    }

    /// Starts the server on its data directory and waits until it takes connections.
    pub async fn start_again(&mut self) {
        match self.engine {
            Engine::Postgres => {
                let options = format!(
                    "-p {} -k {} -c listen_addresses=127.0.0.1",
                    self.port,
                    self.dir.path().display()
                );
                run(self
                    .postgres("pg_ctl")
                    .arg("-D")
                    .arg(self.data())
                    .arg("-l")
                    .arg(self.dir.path().join("server.log"))
                    .args(["-w", "-t", "90", "-o", &options, "start"]))
                .await;
            }
            Engine::MariaDb => {
                let dir = self.dir.path();
                let child = Command::new(binary(&["mariadbd", "mysqld"]))
                    .arg("--no-defaults")
                    .arg(format!("--datadir={}", self.data().display()))
                    .arg(format!("--port={}", self.port))
                    .arg(format!("--socket={}", dir.join("mysqld.sock").display()))
                    .arg(format!("--pid-file={}", dir.join("mysqld.pid").display()))
                    .arg(format!("--log-error={}", dir.join("server.log").display()))
                    .args(["--bind-address=127.0.0.1", "--user=root", "--skip-log-bin"])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .kill_on_drop(true)
                    .spawn()
                    .expect("mariadbd starts");
                self.child = Some(child);
            }
        }
        self.wait_until_connectable().await;
    }

    /// An immediate stop, as a crash or `kill -9` would do it: no checkpoint,
    /// connections cut. Returns once the server is gone.
    pub async fn stop_immediately(&mut self) {
        match self.engine {
            Engine::Postgres => {
                run(self.postgres("pg_ctl").arg("-D").arg(self.data()).args([
                    "-m",
                    "immediate",
                    "-w",
                    "stop",
                ]))
                .await;
            }
            Engine::MariaDb => {
                let mut child = self.child.take().expect("the server runs");
                child.kill().await.expect("mariadbd killed");
            }
        }
    }

    /// The server's log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A PostgreSQL program, run as the postgres user when we are root.
    fn postgres(&self, program: &str) -> Command {
        let path = postgres_bin().join(program);
        if running_as_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            Command::new(path)
        }
    }

    async fn wait_until_connectable(&mut self) {
        let url = self.url();
        let start = std::time::Instant::now();
        loop {
            let connected = match self.engine {
                Engine::Postgres => sqlx::PgConnection::connect(&url).await.map(|_| ()),
                Engine::MariaDb => {
                    let server = url.trim_end_matches("/test");
                    match sqlx::MySqlConnection::connect(server).await {
                        Ok(mut conn) => sqlx::query("CREATE DATABASE IF NOT EXISTS test")
                            .execute(&mut conn)
                            .await
                            .map(|_| ()),
                        Err(e) => Err(e),
                    }
                }
            };
            match connected {
                Ok(()) => return,
                Err(e) if start.elapsed() > START_DEADLINE => {
                    panic!(
                        "the {:?} server did not come up at {url}: {e}\n{}",
                        self.engine,
                        self.log()
                    )
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        if self.engine == Engine::Postgres {
            let data = self.data();
            let mut command = std::process::Command::new(postgres_bin().join("pg_ctl"));
            if running_as_root() {
                command = std::process::Command::new("runuser");
                command
                    .args(["-u", "postgres", "--"])
                    .arg(postgres_bin().join("pg_ctl"));
            }
            // Fails harmlessly when the server is already stopped.
            let _ = command
                .arg("-D")
                .arg(data)
                .args(["-m", "immediate", "stop"])
                .output();
        }
        if let Some(child) = &mut self.child {
            let _ = child.start_kill();
        }
    }
}

/// The newest PostgreSQL's programs (Debian and Ubuntu keep them by version).
fn postgres_bin() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin).unwrap_or_else(|| {
        panic!(
            "no PostgreSQL server programs (/usr/lib/postgresql/*/bin/initdb): this test starts \
             a server of its own; install postgresql (./test.sh does)"
        )
    })
}

/// The first of `names` found on the PATH or in /usr/sbin.
fn binary(names: &[&str]) -> PathBuf {
    let path = std::env::var("PATH").unwrap_or_default();
    let dirs = path
        .split(':')
        .map(Path::new)
        .chain([Path::new("/usr/sbin"), Path::new("/usr/bin")]);
    let dirs: Vec<&Path> = dirs.collect();
    names
        .iter()
        .flat_map(|name| dirs.iter().map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "none of {names:?} found: this test starts a MariaDB server of its own; install \
                 mariadb-server (./test.sh does)"
            )
        })
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// A port nobody listens on now (the kernel's choice of a free one).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Runs `command` to its end; panics with its output when it fails.
async fn run(command: &mut Command) {
    let output = command
        .output()
        .await
        .unwrap_or_else(|e| panic!("{command:?} did not start: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
