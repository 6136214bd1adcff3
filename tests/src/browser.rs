//! Headless Chromium driven over WebDriver: Debian's `chromium` and `chromium-driver`.
//! When they are missing, the first browser test installs them with
//! `tests/install-browser.sh` (as `.ci/run` does; it needs apt-get and root or
//! password-less sudo); where that cannot work the test fails saying what to install.
//! It never skips.

use std::{
    net::{Ipv4Addr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

const INSTALL: &str = "the browser tests need Chromium and its WebDriver: run tests/install-browser.sh (Debian's chromium and chromium-driver), or install them and set CHROME_BIN and CHROMEDRIVER to their paths";

/// Runs `tests/install-browser.sh` once per process when the browser is missing.
fn install_when_missing() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let on_path = |name: &str| {
            std::env::var_os("PATH")
                .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        };
        let configured =
            std::env::var_os("CHROME_BIN").is_some() && std::env::var_os("CHROMEDRIVER").is_some();
        if configured || (on_path("chromium") && on_path("chromedriver")) {
            return;
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("install-browser.sh");
        eprintln!("no Chromium here: running {}", script.display());
        match Command::new("sh").arg(&script).status() {
            Ok(status) if status.success() => {}
            Ok(status) => eprintln!("{} failed ({status})", script.display()),
            Err(e) => eprintln!("{} did not run: {e}", script.display()),
        }
    });
}

/// A Chromium session; the driver process ends when this is dropped.
pub struct Browser {
    pub client: Client,
    driver: Child,
}

/// `name` from the environment, else the first of `candidates` on the `PATH`.
fn locate(variable: &str, candidates: &[&str]) -> PathBuf {
    if let Some(path) = std::env::var_os(variable).map(PathBuf::from) {
        assert!(
            path.is_file(),
            "{variable}={} is not a file; {INSTALL}",
            path.display()
        );
        return path;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    candidates
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("no {} on the PATH: {INSTALL}", candidates.join(" or ")))
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free local port")
}

fn wait_for_port(port: u16, driver: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
        if let Ok(Some(status)) = driver.try_wait() {
            panic!("chromedriver exited with {status}; {INSTALL}");
        }
        assert!(
            Instant::now() < deadline,
            "chromedriver did not listen on {port} in 30 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Browser {
    /// Starts chromedriver on a free port and a headless Chromium session through it
    /// (`--no-sandbox` because CI runs as root; `--disable-dev-shm-usage` for small
    /// containers' /dev/shm).
    pub async fn start() -> Self {
        install_when_missing();
        let driver_bin = locate("CHROMEDRIVER", &["chromedriver", "chromium-driver"]);
        let chrome_bin = locate(
            "CHROME_BIN",
            &["chromium", "chromium-browser", "google-chrome", "chrome"],
        );
        let port = free_port();
        let mut driver = Command::new(&driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{} did not start: {e}; {INSTALL}", driver_bin.display()));
        wait_for_port(port, &mut driver);
        let capabilities = json!({
            "goog:chromeOptions": {
                "binary": chrome_bin,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-dev-shm-usage",
                    "--disable-gpu",
                    "--window-size=1280,900",
                ],
            }
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!("an object literal")
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .unwrap_or_else(|e| panic!("no Chromium session through chromedriver: {e}; {INSTALL}"));
        Self { client, driver }
    }

    /// Ends the session (and the driver).
    pub async fn close(mut self) {
        let client = self.client.clone();
        let _ = client.close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }

    /// A screenshot of the current page as PNG, written to `path` (parents created).
    pub async fn screenshot(&self, path: &Path) {
        let png = self.client.screenshot().await.expect("a screenshot");
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("the artifact directory");
        }
        std::fs::write(path, png).expect("the screenshot written");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
