//! The local AWS emulator for the stand-in and the tests: moto's server, installed into
//! a project-local directory on first use (version pinned in
//! `infra/local/requirements.txt`) and served single-threaded by
//! `infra/local/moto_server.py`, plus the template's resources created inside it.
//!
//! Set `HUB_AWS_ENDPOINT` to use an emulator that is already running instead.

pub mod iam;
mod install;
pub use install::{Python, ensure_python_tool};
pub mod resources;
pub mod template;

use std::{
    net::{SocketAddr, TcpListener, TcpStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::OnceLock,
    time::{Duration, Instant},
};

use aws_config::{BehaviorVersion, Region, SdkConfig};

pub use resources::{ACCOUNT, LocalResources, Physical};
pub use template::Template;

#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error("installing the emulator failed: {0}")]
    Install(String),
    #[error("starting the emulator failed: {0}")]
    Start(String),
    #[error(transparent)]
    Template(#[from] template::TemplateError),
    #[error("creating {resource} in the emulator failed: {message}")]
    Resource { resource: String, message: String },
}

/// The repository root (where `infra/` and `.hub/` live): `HUB_ROOT` if set, otherwise
/// the nearest directory at or above the current one that holds `infra/template.yaml`.
/// Never a path compiled into the binary: a `hub-local` built in one checkout and run
/// from another serves (and writes `.hub/` into) the other.
pub fn project_root() -> PathBuf {
    if let Some(root) = std::env::var_os("HUB_ROOT") {
        return PathBuf::from(root);
    }
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    find_project_root(&cwd).unwrap_or(cwd)
}

/// The nearest directory at or above `start` that holds `infra/template.yaml`.
pub fn find_project_root(start: &std::path::Path) -> Option<PathBuf> {
    start
        .ancestors()
        .find(|dir| dir.join("infra/template.yaml").is_file())
        .map(std::path::Path::to_path_buf)
}

/// A running emulator; the process it started (if any) stops with it.
#[derive(Debug)]
pub struct Emulator {
    pub endpoint: String,
    child: Option<Child>,
}

/// Every emulator run leaves its log (`.hub/moto-<port>.log`, read when moto fails to
/// start); those older than a day go, so `.hub/` does not grow without end.
fn prune_old_logs(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let day = Duration::from_secs(86_400);
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|modified| modified.elapsed().ok())
            .is_some_and(|age| age > day);
        if name.starts_with("moto-") && name.ends_with(".log") && old {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

impl Emulator {
    /// Uses `HUB_AWS_ENDPOINT` if set; otherwise installs moto if needed and starts it on
    /// a free port. The server exits by itself when this process does.
    pub fn start() -> Result<Self, EmulatorError> {
        if let Ok(endpoint) = std::env::var("HUB_AWS_ENDPOINT") {
            return Ok(Self {
                endpoint,
                child: None,
            });
        }
        let root = project_root();
        let python = install::ensure_moto(&root)?;
        let port = free_port()?;
        prune_old_logs(&root.join(".hub"));
        let log_path = root.join(".hub").join(format!("moto-{port}.log"));
        let log = std::fs::File::create(&log_path)
            .map_err(|e| EmulatorError::Start(format!("{}: {e}", log_path.display())))?;
        let mut command = Command::new(&python.program);
        command
            .envs(python.env.iter().map(|(k, v)| (k, v)))
            .arg(root.join("infra/local/moto_server.py"))
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--parent-pid", &std::process::id().to_string()])
            .stdin(Stdio::null())
            .stdout(
                log.try_clone()
                    .map_err(|e| EmulatorError::Start(e.to_string()))?,
            )
            .stderr(log);
        let mut child = command
            .spawn()
            .map_err(|e| EmulatorError::Start(e.to_string()))?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                return Err(EmulatorError::Start(format!(
                    "moto exited with {status}:\n{log}"
                )));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err(EmulatorError::Start(
                    "moto did not listen within 60s".into(),
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            child: Some(child),
        })
    }

    /// One emulator per process, started on first use (tests share it; each test uses
    /// its own resource names).
    pub fn shared() -> Result<&'static Emulator, EmulatorError> {
        static SHARED: OnceLock<Result<Emulator, String>> = OnceLock::new();
        SHARED
            .get_or_init(|| Emulator::start().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| EmulatorError::Start(e.clone()))
    }

    /// An AWS config that talks to this emulator with dummy credentials and a fixed
    /// region (no instance-metadata probing).
    pub async fn sdk_config(&self) -> SdkConfig {
        sdk_config_for(&self.endpoint).await
    }
}

pub async fn sdk_config_for(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "hub-emulator",
        ))
        .load()
        .await
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> Result<u16, EmulatorError> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| EmulatorError::Start(e.to_string()))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| EmulatorError::Start(e.to_string()))
}

/// For storage and handler tests: the process's shared emulator with a fresh copy of
/// the template's resources under a unique prefix.
pub async fn test_resources(label: &str) -> Result<(SdkConfig, LocalResources), EmulatorError> {
    let emulator = tokio::task::spawn_blocking(Emulator::shared)
        .await
        .map_err(|e| EmulatorError::Start(e.to_string()))??;
    let sdk = emulator.sdk_config().await;
    let template = Template::load(&project_root().join("infra/template.yaml"))?;
    // Unique per call: a counter beside the process id (processes may share an emulator
    // through HUB_AWS_ENDPOINT).
    static CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let suffix: u32 = std::process::id()
        .rotate_left(12)
        .wrapping_add(CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    let resources =
        LocalResources::create(&sdk, &template, &format!("{label}-{suffix:08x}")).await?;
    Ok((sdk, resources))
}

#[cfg(test)]
mod root_tests {
    use super::*;

    #[test]
    fn the_root_is_found_from_where_the_command_runs_not_where_it_was_built() {
        let base = std::env::temp_dir().join(format!("hub-root-{}", std::process::id()));
        let other = base.join("other-checkout");
        std::fs::create_dir_all(other.join("infra")).unwrap();
        std::fs::create_dir_all(other.join("functions/partner-api/src")).unwrap();
        std::fs::write(other.join("infra/template.yaml"), "Resources: {}\n").unwrap();
        let deep = other.join("functions/partner-api/src");
        assert_eq!(find_project_root(&deep).as_deref(), Some(other.as_path()));
        assert_eq!(find_project_root(&other).as_deref(), Some(other.as_path()));
        assert_eq!(find_project_root(&base), None);
        std::fs::remove_dir_all(&base).unwrap();
    }
}
