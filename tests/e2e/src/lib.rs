//! Desktop end-to-end harness: a real `pawd`, `tauri-driver` in front of `WebKitWebDriver`, and
//! the real `paw` binary with its embedded UI. `cargo xtask test` runs this under Xvfb inside a
//! private D-Bus session; run directly without those, it fails (it never skips).
//!
//! Everything runs on loopback with throwaway directories: no real settings, keyring or app data.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use paw_client::{Core, MemoryKeyStore};
use paw_fido::{Authenticator, VirtualAuthenticator};
use paw_proto::ipc::{BuildInfo, EnrollInput, SettingsInput};

pub fn env_path(name: &str) -> Result<PathBuf> {
    let p = std::env::var_os(name).map(PathBuf::from).with_context(|| {
        format!("{name} is not set: run the desktop tests through `cargo xtask test`")
    })?;
    if !p.exists() {
        bail!("{name}={} does not exist", p.display());
    }
    Ok(p)
}

pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A child process killed on drop, so a failing test leaves nothing running.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A real broker started from the `pawd` binary in a temporary directory.
pub struct Broker {
    pub dir: tempfile::TempDir,
    pub url: String,
    pub proc: Proc,
}

impl Broker {
    pub fn start() -> Result<Self> {
        Self::start_with(false, "")
    }

    /// A broker that trusts the INSECURE virtual security key's attestation CA, as a demo
    /// broker does, so the app can enroll with the virtual key.
    pub fn start_trusting_virtual_key() -> Result<Self> {
        Self::start_with(true, "")
    }

    /// [`Broker::start_trusting_virtual_key`] with `policy` (TOML: `[groups]`,
    /// `[[entitlement]]`, …) appended to the config that `pawd init` wrote.
    pub fn start_with_policy(policy: &str) -> Result<Self> {
        Self::start_with(true, policy)
    }

    fn start_with(trust_virtual_key: bool, policy: &str) -> Result<Self> {
        let pawd = env_path("PAW_E2E_PAWD")?;
        let dir = tempfile::tempdir()?;
        let data = dir.path().join("broker");
        let port = free_port()?;
        let mut init = Command::new(&pawd);
        init.arg("init")
            .arg("--dir")
            .arg(&data)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            // The WebAuthn origin (https://localhost:PORT) must be exactly the URL the app uses.
            .args(["--hostname", "localhost"])
            .stdout(Stdio::null());
        if trust_virtual_key {
            init.arg("--trust-virtual-key");
        }
        let st = init.status()?;
        if !st.success() {
            bail!("pawd init failed: {st}");
        }
        if !policy.is_empty() {
            let config = data.join("pawd.toml");
            let mut text = std::fs::read_to_string(&config)?;
            text.push('\n');
            text.push_str(policy);
            std::fs::write(&config, text)?;
        }
        let mut child = Command::new(&pawd)
            .arg("serve")
            .arg("--config")
            .arg(data.join("pawd.toml"))
            .env("PAWD_LOG_LEVEL", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let out = child.stdout.take().context("pawd stdout")?;
        let proc = Proc(child);
        let mut lines = BufReader::new(out).lines();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let line = lines.next().context("pawd exited before listening")??;
            if line.contains("listening on https://") {
                break;
            }
            if Instant::now() > deadline {
                bail!("pawd did not start listening");
            }
        }
        // Keep draining stdout so pawd never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Ok(Self {
            url: format!("https://localhost:{port}"),
            dir,
            proc,
        })
    }

    /// `pawd invite USER --role ROLE`: the one-time code, as an admin would hand it over.
    pub fn invite(&self, user: &str, role: &str) -> Result<String> {
        let out = Command::new(env_path("PAW_E2E_PAWD")?)
            .arg("invite")
            .arg("--config")
            .arg(self.dir.path().join("broker/pawd.toml"))
            .args([user, "--role", role])
            .output()?;
        if !out.status.success() {
            bail!(
                "pawd invite failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map(|l| l.trim().to_owned())
            .context("pawd invite printed no code")
    }

    pub fn ca_path(&self) -> PathBuf {
        self.dir.path().join("broker/tls/ca.pem")
    }
}

/// The app under test, with its own config dir and a fake system browser that records the URLs
/// the app asks it to open.
pub struct App {
    pub client: Client,
    pub home: tempfile::TempDir,
    pub driver: Proc,
    // One app window at a time: the tests share one X display and the process-tree probes of G4
    // must not see another test's app. Held until the App is dropped.
    _serial: tokio::sync::MutexGuard<'static, ()>,
}

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

impl App {
    pub fn config_dir(&self) -> PathBuf {
        self.home.path().join("config")
    }

    pub fn opened_urls(&self) -> Vec<String> {
        std::fs::read_to_string(self.home.path().join("browser.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Starts the app. `broker` pre-seeds the settings as an admin's onboarding would.
    pub async fn launch(broker: Option<&Broker>) -> Result<Self> {
        Self::launch_with(broker, &[]).await
    }

    /// [`App::launch`] with extra environment for the app (through tauri-driver and
    /// WebKitWebDriver, which pass their environment on to the app they start).
    pub async fn launch_with(broker: Option<&Broker>, env: &[(&str, &str)]) -> Result<Self> {
        let settings =
            broker.map(|b| serde_json::json!({"broker_url": b.url, "ca_path": b.ca_path()}));
        Self::launch_with_settings(settings, env).await
    }

    /// Starts the app with `settings` (the settings file's JSON) written first, when given.
    pub async fn launch_with_settings(
        settings: Option<serde_json::Value>,
        env: &[(&str, &str)],
    ) -> Result<Self> {
        let serial = SERIAL.lock().await;
        let app = env_path("PAW_E2E_APP")?;
        let driver_bin = env_path("PAW_E2E_TAURI_DRIVER")?;
        let home = tempfile::tempdir()?;
        let config = home.path().join("config");
        for d in ["config", "xdg-config", "xdg-data", "xdg-cache"] {
            std::fs::create_dir_all(home.path().join(d))?;
        }
        if let Some(settings) = settings {
            std::fs::write(config.join("settings.json"), settings.to_string())?;
        }
        let browser = home.path().join("browser.sh");
        std::fs::write(
            &browser,
            format!(
                "#!/bin/sh\nprintf '%s\\n' \"$1\" >> '{}'\n",
                home.path().join("browser.log").display()
            ),
        )?;
        make_executable(&browser)?;
        let port = free_port()?;
        let native = free_port()?;
        let driver = Proc(
            Command::new(driver_bin)
                .args([
                    "--port",
                    &port.to_string(),
                    "--native-port",
                    &native.to_string(),
                ])
                .env("PAW_CONFIG_DIR", &config)
                .env("HOME", home.path())
                .env("XDG_CONFIG_HOME", home.path().join("xdg-config"))
                .env("XDG_DATA_HOME", home.path().join("xdg-data"))
                .env("XDG_CACHE_HOME", home.path().join("xdg-cache"))
                .env("BROWSER", &browser)
                .envs(env.iter().copied())
                .env_remove("XDG_CURRENT_DESKTOP")
                .stdout(Stdio::null())
                .stderr(app_stderr(env)?)
                .spawn()
                .context("starting tauri-driver")?,
        );
        let mut caps = serde_json::Map::new();
        caps.insert(
            "tauri:options".into(),
            serde_json::json!({ "application": app }),
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
            {
                Ok(c) => break c,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => return Err(anyhow!("WebDriver session: {e}")),
            }
        };
        Ok(Self {
            client,
            home,
            driver,
            _serial: serial,
        })
    }

    /// The element, waiting up to 20 s for it to appear.
    pub async fn wait_for(&self, css: &str) -> Result<Element> {
        self.client
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css(css))
            .await
            .with_context(|| format!("waiting for {css}"))
    }

    /// Enrolls `user` with a fresh invite code and the virtual key through the UI, ending signed
    /// in, the way a new administrator's first start goes.
    pub async fn enroll_and_sign_in(&self, broker: &Broker, user: &str) -> Result<()> {
        self.enroll_and_sign_in_as(broker, user, "admin").await
    }

    /// [`App::enroll_and_sign_in`] with the invite's role (`admin`, `helpdesk`, …).
    pub async fn enroll_and_sign_in_as(
        &self,
        broker: &Broker,
        user: &str,
        role: &str,
    ) -> Result<()> {
        self.enroll_with_code(&broker.invite(user, role)?, user)
            .await
    }

    /// Enrolls `user` through the UI with an invite `code` made elsewhere, ending signed in.
    pub async fn enroll_with_code(&self, code: &str, user: &str) -> Result<()> {
        if let Err(e) = self.wait_for("[data-testid=signin-panel]").await {
            bail!("{e:#} (screen: {})", self.failure_screenshot().await);
        }
        self.wait_for("[data-testid=enroll-open]")
            .await?
            .click()
            .await?;
        self.wait_for("[data-testid=enroll-code]")
            .await?
            .send_keys(code)
            .await?;
        self.wait_for("[data-testid=enroll-submit]")
            .await?
            .click()
            .await?;
        self.wait_for_text("[data-testid=status-user]", user)
            .await?;
        Ok(())
    }

    /// Opens the Access page and fills its request form (not sent).
    pub async fn fill_request(
        &self,
        entitlement: &str,
        target: &str,
        minutes: u32,
        justification: &str,
    ) -> Result<()> {
        self.click("[data-testid=nav-access]").await?;
        self.wait_for("[data-testid=request-form]").await?;
        self.select("[data-testid=request-entitlement]", entitlement)
            .await?;
        self.type_into("[data-testid=request-target]", target)
            .await?;
        self.type_into("[data-testid=request-duration]", &minutes.to_string())
            .await?;
        self.type_into("[data-testid=request-justification]", justification)
            .await
    }

    /// Sends the filled request form and approves the step-up prompt once it names `target`.
    pub async fn submit_request(&self, target: &str) -> Result<()> {
        self.click("[data-testid=request-submit]").await?;
        self.wait_for_text("[data-testid=stepup-description]", target)
            .await?;
        self.click("[data-testid=stepup-approve]").await
    }

    /// The element's rendered text, read in the page. WebKitWebDriver's own "element text"
    /// comes back empty for some elements that are plainly on screen (seen for the status bar
    /// after a re-render), so tests read `innerText` directly.
    pub async fn text_of(&self, css: &str) -> Result<Option<String>> {
        let v = self
            .client
            .execute(
                "const e = document.querySelector(arguments[0]); return e ? e.innerText : null;",
                vec![serde_json::json!(css)],
            )
            .await?;
        Ok(v.as_str().map(str::to_owned))
    }

    /// Waits until the element's text contains `needle`; fails with what an auth error said
    /// and a screenshot.
    pub async fn wait_for_text(&self, css: &str, needle: &str) -> Result<String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let last = match self.text_of(css).await {
                Ok(Some(t)) if t.contains(needle) => return Ok(t),
                Ok(t) => t,
                Err(e) => Some(e.to_string()),
            };
            if Instant::now() > deadline {
                let why = self
                    .text_of("[data-testid=auth-error]")
                    .await
                    .ok()
                    .flatten()
                    .unwrap_or_default();
                let shot = self.failure_screenshot().await;
                bail!("{css} never contained {needle:?} (last {last:?}; {why}; screen: {shot})");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Clicks the element, retrying for a few seconds while something transient (a toast
    /// sliding in, a dialog closing) covers it; fails with a screenshot.
    pub async fn click(&self, css: &str) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let el = self.wait_for(css).await?;
            match el.click().await {
                Ok(()) => return Ok(()),
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => {
                    let shot = self.failure_screenshot().await;
                    bail!("clicking {css}: {e} (screen: {shot})");
                }
            }
        }
    }

    /// The element as the page has it now (no waiting).
    pub async fn find(&self, css: &str) -> Result<Element> {
        self.client
            .find(Locator::Css(css))
            .await
            .with_context(|| format!("finding {css}"))
    }

    /// Clicks the element once, as the page has it now: no waiting for it, no retry.
    pub async fn click_now(&self, css: &str) -> Result<()> {
        self.find(css)
            .await?
            .click()
            .await
            .with_context(|| format!("clicking {css}"))
    }

    /// Clears the field (once it is there) and types `text` into it.
    pub async fn type_into(&self, css: &str, text: &str) -> Result<()> {
        let el = self.wait_for(css).await?;
        el.clear()
            .await
            .with_context(|| format!("clearing {css}"))?;
        el.send_keys(text)
            .await
            .with_context(|| format!("typing into {css}"))?;
        Ok(())
    }

    /// Picks `value` in a `<select>` (once it is there) by setting it from the page and firing
    /// `change`, as a user's choice would (WebKitWebDriver's option clicking is unreliable
    /// under Xvfb).
    pub async fn select(&self, css: &str, value: &str) -> Result<()> {
        self.wait_for(css).await?;
        self.client
            .execute(
                "const s = document.querySelector(arguments[0]); s.value = arguments[1]; \
                 s.dispatchEvent(new Event('change', {bubbles: true})); \
                 s.dispatchEvent(new Event('input', {bubbles: true}));",
                vec![serde_json::json!(css), serde_json::json!(value)],
            )
            .await
            .with_context(|| format!("selecting {value:?} in {css}"))?;
        Ok(())
    }

    /// Scrolls the page (never the window, which `scrollIntoView` may also move) so that the
    /// element is in the middle of the view, for a screenshot that shows it.
    pub async fn scroll_into_view(&self, css: &str) -> Result<()> {
        self.client
            .execute(
                "document.querySelector(arguments[0]).scrollIntoView({block: 'center'}); \
                 document.scrollingElement.scrollTop = 0;",
                vec![serde_json::json!(css)],
            )
            .await
            .with_context(|| format!("scrolling to {css}"))?;
        Ok(())
    }

    /// Asks `ready` until it says yes, pausing `every` between tries, for at most `limit` worth
    /// of pauses (`limit / every` tries); an error from `ready` ends the wait with that error.
    pub async fn wait_until(
        &self,
        what: &str,
        limit: Duration,
        every: Duration,
        mut ready: impl AsyncFnMut() -> Result<bool>,
    ) -> Result<()> {
        let tries = limit.as_millis() / every.as_millis().max(1);
        for _ in 0..tries {
            if ready().await? {
                return Ok(());
            }
            tokio::time::sleep(every).await;
        }
        bail!("timed out waiting for {what}");
    }

    /// Saves what the window shows under target/e2e-failures, for the person reading a red run.
    pub async fn failure_screenshot(&self) -> String {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/e2e-failures");
        let path = dir.join(format!("{}.png", std::process::id()));
        let saved = async {
            std::fs::create_dir_all(&dir)?;
            std::fs::write(&path, self.client.screenshot().await?)?;
            anyhow::Ok(())
        };
        match saved.await {
            Ok(()) => path.display().to_string(),
            Err(e) => format!("not saved: {e}"),
        }
    }

    pub async fn screenshot(&self, name: &str) -> Result<()> {
        let dir = env_path("PAW_E2E_SCREENSHOTS")?;
        // Let transitions and the status poll settle so the picture shows a steady state.
        tokio::time::sleep(Duration::from_millis(400)).await;
        let png = self.client.screenshot().await?;
        if png.len() < 1000 || !png.starts_with(b"\x89PNG") {
            bail!("screenshot {name} is not a PNG");
        }
        std::fs::write(dir.join(format!("{name}.png")), png)?;
        Ok(())
    }

    pub async fn close(self) -> Result<()> {
        self.client.close().await?;
        Ok(())
    }
}

/// A second user's workstation: paw-client's core with an in-memory keystore and its own
/// INSECURE virtual key, in `dir/user`, enrolled with a fresh invite code for `user` (an admin).
pub async fn second_workstation(broker: &Broker, dir: &Path, user: &str) -> Result<Core> {
    let authenticator: Arc<dyn Authenticator> = Arc::new(VirtualAuthenticator::new());
    let core = Core::open(
        dir.join(user),
        BuildInfo {
            version: "e2e".into(),
            debug: true,
            virtual_key: true,
        },
        Arc::new(MemoryKeyStore::new()),
        Some(authenticator),
    )?;
    core.save_settings(SettingsInput {
        broker_url: broker.url.clone(),
        fallback_urls: Vec::new(),
        ca_path: broker.ca_path().display().to_string(),
    })
    .await?;
    core.enroll(EnrollInput {
        code: broker.invite(user, "admin")?,
        key_name: "primary".into(),
    })
    .await?;
    Ok(core)
}

/// The app started directly (no WebDriver), once its UI has rendered and asked for status.
pub struct PlainApp {
    proc: Proc,
    _home: tempfile::TempDir,
    _serial: tokio::sync::MutexGuard<'static, ()>,
}

impl PlainApp {
    pub fn pid(&self) -> u32 {
        self.proc.0.id()
    }
}

impl App {
    pub async fn launch_plain(broker: &Broker) -> Result<PlainApp> {
        let serial = SERIAL.lock().await;
        let home = tempfile::tempdir()?;
        let config = home.path().join("config");
        std::fs::create_dir_all(&config)?;
        std::fs::write(
            config.join("settings.json"),
            serde_json::json!({"broker_url": broker.url, "ca_path": broker.ca_path()}).to_string(),
        )?;
        let mut child = Command::new(env_path("PAW_E2E_APP")?)
            .env("PAW_CONFIG_DIR", &config)
            .env("HOME", home.path())
            .env("PAW_LOG", "info")
            .env_remove("WEBKIT_INSPECTOR_SERVER")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let err = child.stderr.take().context("app stderr")?;
        let proc = Proc(child);
        let ready = tokio::task::spawn_blocking(move || {
            let mut lines = BufReader::new(err).lines();
            for line in lines.by_ref() {
                if line.map(|l| l.contains("ui ready")).unwrap_or(false) {
                    std::thread::spawn(move || for _ in lines {});
                    return true;
                }
            }
            false
        });
        match tokio::time::timeout(Duration::from_secs(30), ready).await {
            Ok(Ok(true)) => {}
            _ => bail!("the app did not render its UI"),
        }
        // Give the first broker round trip time to finish, as a user would see it.
        tokio::time::sleep(Duration::from_secs(1)).await;
        Ok(PlainApp {
            proc,
            _home: home,
            _serial: serial,
        })
    }
}

fn make_executable(p: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// `root` and all its descendants (the WebKit web and network processes).
pub fn process_tree_of(root: u32) -> Result<Vec<u32>> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    for entry in std::fs::read_dir("/proc")? {
        let entry = entry?;
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) {
            // Field 4 (ppid) follows the parenthesised command name, which may contain spaces.
            if let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) {
                if let Some(ppid) = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok()) {
                    parents.push((pid, ppid));
                }
            }
        }
    }
    let mut all = vec![root];
    let mut i = 0;
    while i < all.len() {
        let p = all[i];
        all.extend(parents.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    Ok(all)
}

/// Inodes of listening TCP sockets (IPv4 and IPv6) held open by `pid`.
pub fn listening_sockets(pid: u32) -> Result<Vec<u64>> {
    let mut listen = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // st == 0A is LISTEN; field 9 is the inode.
            if f.get(3) == Some(&"0A") {
                if let Some(ino) = f.get(9).and_then(|i| i.parse::<u64>().ok()) {
                    listen.push(ino);
                }
            }
        }
    }
    let mut held = Vec::new();
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Ok(held);
    };
    for fd in fds.flatten() {
        if let Ok(target) = std::fs::read_link(fd.path()) {
            let t = target.to_string_lossy();
            if let Some(ino) = t.strip_prefix("socket:[").and_then(|s| s.strip_suffix(']')) {
                if let Ok(ino) = ino.parse::<u64>() {
                    if listen.contains(&ino) {
                        held.push(ino);
                    }
                }
            }
        }
    }
    Ok(held)
}

/// `user` on a [`second_workstation`] requests `request`; the app's signed-in user approves it
/// in the Approvals inbox with the virtual key; returns once the grant is active.
pub async fn approved_in_inbox(
    app: &App,
    core: &Core,
    request: paw_proto::ipc::ElevationAction,
    target: &str,
) -> Result<paw_proto::elevation::GrantView> {
    let prompt = core.prepare_elevation(request).await?;
    let grant = core.confirm_elevation(prompt.id).await?;
    if grant.state != "pending" {
        bail!("the request is {}, not pending", grant.state);
    }
    app.click("[data-testid=nav-approvals]").await?;
    let item = format!("[data-testid=inbox-item][data-request-id='{}']", grant.id);
    app.click(&format!("{item} [data-testid=inbox-approve]"))
        .await?;
    app.wait_for_text("[data-testid=stepup-description]", target)
        .await?;
    app.click("[data-testid=stepup-approve]").await?;
    let id = grant.id.clone();
    app.wait_until(
        "the grant to be active",
        Duration::from_secs(60),
        Duration::from_millis(500),
        async || {
            Ok(core
                .grants()
                .await?
                .grants
                .iter()
                .any(|g| g.id == id && g.state == "active"))
        },
    )
    .await?;
    Ok(grant)
}

/// A terminal a [`second_workstation`] opened through its core, and all it has printed.
pub struct CoreTerminal {
    pub session_id: String,
    seen: Arc<std::sync::Mutex<Vec<u8>>>,
}

impl CoreTerminal {
    /// Opens a session on `grant_id` (a step-up with the core's virtual key).
    pub async fn open(core: &Core, grant_id: &str) -> Result<Self> {
        use base64::Engine;
        let seen = Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
        let sink = seen.clone();
        let prompt = core
            .prepare_session(paw_proto::session::OpenSessionInput {
                grant_id: grant_id.to_owned(),
            })
            .await?;
        let term = core
            .open_terminal(prompt.id, move |e| {
                if let paw_proto::session::TerminalEvent::Output { data } = e {
                    if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(data) {
                        if let Ok(mut s) = sink.lock() {
                            s.extend(bytes);
                        }
                    }
                }
            })
            .await?;
        Ok(Self {
            session_id: term.session_id,
            seen,
        })
    }

    /// Everything printed from byte `from` on.
    pub fn text_from(&self, from: usize) -> String {
        let seen = self.seen.lock().map(|s| s.clone()).unwrap_or_default();
        String::from_utf8_lossy(&seen[from.min(seen.len())..]).into_owned()
    }

    /// How many bytes have been printed so far.
    pub fn len(&self) -> usize {
        self.seen.lock().map(|s| s.len()).unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits (60 s at most) until the terminal has printed `want`.
    pub async fn sees(&self, want: &str) -> Result<()> {
        for _ in 0..120 {
            if self.text_from(0).contains(want) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        bail!("the terminal never showed {want:?}:\n{}", self.text_from(0))
    }

    /// Types `data` into the terminal.
    pub async fn types(&self, core: &Core, data: &str) -> Result<()> {
        core.terminal_input(paw_proto::session::TerminalInput {
            session_id: self.session_id.clone(),
            data: data.to_owned(),
        })
        .await?;
        Ok(())
    }
}

/// `text` without its `[name]` table (the header and every line up to the next table header).
fn without_table(text: &str, name: &str) -> String {
    let header = format!("[{name}]");
    let mut out = String::with_capacity(text.len());
    let mut skipping = false;
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with('[') {
            skipping = t.trim_end() == header;
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

impl Broker {
    /// [`Broker::start_with_policy`] for a `policy` that brings its own `[vault]` table (it may
    /// name `kek_file = "vault-kek"`, the key `pawd init` made): the `[vault]` table `pawd init`
    /// wrote is taken out first, since TOML forbids a table twice.
    pub fn start_with_vault(policy: &str) -> Result<Self> {
        if !policy.lines().any(|l| l.trim() == "[vault]") {
            bail!("the policy has no [vault] table: use Broker::start_with_policy");
        }
        let pawd = env_path("PAW_E2E_PAWD")?;
        let dir = tempfile::tempdir()?;
        let data = dir.path().join("broker");
        let port = free_port()?;
        let st = Command::new(&pawd)
            .arg("init")
            .arg("--dir")
            .arg(&data)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--hostname", "localhost"])
            .arg("--trust-virtual-key")
            .stdout(Stdio::null())
            .status()?;
        if !st.success() {
            bail!("pawd init failed: {st}");
        }
        let config = data.join("pawd.toml");
        let mut text = without_table(&std::fs::read_to_string(&config)?, "vault");
        text.push('\n');
        text.push_str(policy);
        std::fs::write(&config, text)?;
        let mut child = Command::new(&pawd)
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .env("PAWD_LOG_LEVEL", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let out = child.stdout.take().context("pawd stdout")?;
        let proc = Proc(child);
        let mut lines = BufReader::new(out).lines();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let line = lines.next().context("pawd exited before listening")??;
            if line.contains("listening on https://") {
                break;
            }
            if Instant::now() > deadline {
                bail!("pawd did not start listening");
            }
        }
        std::thread::spawn(move || for _ in lines {});
        Ok(Self {
            url: format!("https://localhost:{port}"),
            dir,
            proc,
        })
    }

    /// `pawd vault import FILE` on this broker's config (through `PAWD_CONFIG`), as an
    /// administrator on the broker host runs it: what it printed (stdout, then stderr).
    pub fn vault_import(&self, file: &Path) -> Result<String> {
        let out = Command::new(env_path("PAW_E2E_PAWD")?)
            .args(["vault", "import"])
            .arg(file)
            .env("PAWD_CONFIG", self.dir.path().join("broker/pawd.toml"))
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            bail!("pawd vault import failed ({}): {text}", out.status);
        }
        Ok(text)
    }
}

impl App {
    /// Everything the page holds as text now: what it renders, its markup (attributes
    /// included) and the current values of its form fields.
    pub async fn page_text(&self) -> Result<String> {
        let v = self
            .client
            .execute(
                "const fields = Array.from(document.querySelectorAll('input, textarea, select'))\
                   .map((e) => e.value).join('\\n'); \
                 return document.body.innerText + '\\n' + document.documentElement.outerHTML \
                   + '\\n' + fields;",
                vec![],
            )
            .await
            .context("reading the page's text")?;
        v.as_str()
            .map(str::to_owned)
            .context("the page's text is not a string")
    }

    /// The WebView's `localStorage` and `sessionStorage`, as JSON.
    pub async fn web_storage(&self) -> Result<String> {
        let v = self
            .client
            .execute(
                "return JSON.stringify(localStorage) + JSON.stringify(sessionStorage);",
                vec![],
            )
            .await
            .context("reading the WebView's storage")?;
        v.as_str()
            .map(str::to_owned)
            .context("the storage is not a string")
    }

    /// Calls the app's own command `cmd` with `args` from the page, as the UI does: its answer,
    /// or its error prefixed `refused: `, as JSON text.
    pub async fn invoke(&self, cmd: &str, args: serde_json::Value) -> Result<String> {
        let v = self
            .client
            .execute_async(
                "const [cmd, args, done] = arguments; \
                 window.__TAURI_INTERNALS__.invoke(cmd, args).then(\
                   (r) => done(JSON.stringify(r)), (e) => done('refused: ' + JSON.stringify(e)));",
                vec![serde_json::json!(cmd), args],
            )
            .await
            .with_context(|| format!("invoking {cmd}"))?;
        v.as_str()
            .map(str::to_owned)
            .with_context(|| format!("{cmd}'s answer is not a string"))
    }
}

/// The regular files under `root` (symlinks not followed) that contain `needle` as UTF-8 or
/// as UTF-16LE (how WebKit keeps `localStorage` values on disk). A file that vanishes while
/// this looks is skipped.
pub fn files_containing(root: &Path, needle: &str) -> Result<Vec<PathBuf>> {
    let utf8 = needle.as_bytes().to_vec();
    let utf16: Vec<u8> = needle.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let has = |hay: &[u8], n: &[u8]| !n.is_empty() && hay.windows(n.len()).any(|w| w == n);
    let mut found = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
        };
        for entry in entries {
            let path = entry?.path();
            let meta = match std::fs::symlink_metadata(&path) {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e).with_context(|| format!("{}", path.display())),
            };
            if meta.is_dir() {
                todo.push(path);
            } else if meta.is_file() {
                let bytes = match std::fs::read(&path) {
                    Ok(b) => b,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
                };
                if has(&bytes, &utf8) || has(&bytes, &utf16) {
                    found.push(path);
                }
            }
        }
    }
    Ok(found)
}

/// Sends `signal` (`STOP`, `CONT`, …) to process `pid` with kill(1).
pub fn signal(pid: u32, signal: &str) -> Result<()> {
    let st = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()?;
    if !st.success() {
        bail!("kill -{signal} {pid}: {st}");
    }
    Ok(())
}

/// The environment variable (given to [`App::launch_with`]) naming a file that receives the
/// stderr of tauri-driver, WebKitWebDriver and the app (its log) instead of the test's own
/// stderr, for tests that read the app's log (the H1 leak scan).
pub const APP_LOG_ENV: &str = "PAW_E2E_APP_LOG";

fn app_stderr(env: &[(&str, &str)]) -> Result<Stdio> {
    match env.iter().find(|(k, _)| *k == APP_LOG_ENV) {
        Some((_, path)) => Ok(Stdio::from(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("opening the app log {path}"))?,
        )),
        None => Ok(Stdio::inherit()),
    }
}
