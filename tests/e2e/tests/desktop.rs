//! The desktop app end to end: real window, real WebView, real broker.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use paw_e2e::{listening_sockets, process_tree_of, App, Broker};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const AREAS: &[&str] = &[
    "access",
    "approvals",
    "sessions",
    "audit",
    "history",
    "machines",
    "keys",
    "settings",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shell_connects_to_broker_and_navigates_every_area() {
    let broker = Broker::start_trusting_virtual_key().unwrap();
    let app = App::launch(Some(&broker)).await.unwrap();
    app.wait_for("[data-testid=broker-state][data-state=connected]")
        .await
        .unwrap();
    app.wait_for_text("[data-testid=status-user]", "Not signed in")
        .await
        .unwrap();
    // Signed out, every area but Settings asks for the security key.
    app.wait_for("[data-testid=signin-panel]").await.unwrap();
    app.enroll_and_sign_in(&broker, "ada").await.unwrap();
    for area in AREAS {
        app.click_now(&format!("[data-testid=nav-{area}]"))
            .await
            .unwrap();
        app.wait_for(&format!("[data-testid=page-{area}]"))
            .await
            .unwrap();
        let nav = app
            .find(&format!("[data-testid=nav-{area}]"))
            .await
            .unwrap();
        assert_eq!(
            nav.attr("aria-current").await.unwrap().as_deref(),
            Some("page")
        );
        app.screenshot(area).await.unwrap();
    }
    // The pinned CA shows its fingerprint so the user can compare it with the admin's.
    app.wait_for("[data-testid=settings-ca-fingerprint]")
        .await
        .unwrap();
    let fp = app
        .text_of("[data-testid=settings-ca-fingerprint]")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(fp.trim().len(), 32 * 3 - 1, "{fp}");
    app.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_reject_bad_input_with_code_then_connect() {
    let broker = Broker::start().unwrap();
    let app = App::launch(None).await.unwrap();
    app.wait_for("[data-testid=broker-state][data-state=unconfigured]")
        .await
        .unwrap();
    app.click_now("[data-testid=nav-settings]").await.unwrap();
    let url = app
        // Disabled while the settings load: typing into it then fails under load.
        .wait_for("[data-testid=settings-broker-url]:not([disabled])")
        .await
        .unwrap();
    let ca = app
        .wait_for("[data-testid=settings-ca-path]:not([disabled])")
        .await
        .unwrap();
    url.send_keys(&broker.url.replace("https://", "http://"))
        .await
        .unwrap();
    ca.send_keys(&broker.ca_path().display().to_string())
        .await
        .unwrap();
    app.click_now("[data-testid=settings-save]").await.unwrap();
    let err = app.wait_for("[data-testid=settings-error]").await.unwrap();
    assert_eq!(
        err.attr("data-code").await.unwrap().as_deref(),
        Some("invalid_settings")
    );
    app.screenshot("settings-error").await.unwrap();
    assert!(
        !app.config_dir().join("settings.json").exists(),
        "nothing saved on error"
    );

    url.clear().await.unwrap();
    url.send_keys(&broker.url).await.unwrap();
    app.click_now("[data-testid=settings-save]").await.unwrap();
    app.wait_for("[data-testid=settings-saved]").await.unwrap();
    app.wait_for("[data-testid=broker-state][data-state=connected]")
        .await
        .unwrap();
    assert!(app.config_dir().join("settings.json").exists());
    app.close().await.unwrap();
}

/// G1: the CSP is enforced at run time. Injected into the real app's page: a remote script, an
/// inline script, an image, a stylesheet, a frame, an object, `fetch`, XMLHttpRequest, a
/// WebSocket, an EventSource, `sendBeacon`, `eval`, `new Function` and a string timer, all
/// aimed at a loopback listener the test owns. No marker is set, the listener sees no
/// connection at all, and the app still works. Controls: the listener does see the test's own
/// connection, and the same injection in WebKitGTK's MiniBrowser (the app's engine, no CSP)
/// reaches it and sets the markers, so "saw nothing" is the CSP's doing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g1_csp_blocks_injected_scripts_frames_and_every_network_api() {
    let sink = Sink::start().await;
    // Control: the listener records a connection made from outside the page.
    {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", sink.port))
            .await
            .unwrap();
        s.write_all(b"GET /control HTTP/1.0\r\n\r\n").await.unwrap();
        let mut reply = Vec::new();
        s.read_to_end(&mut reply).await.unwrap();
    }
    sink.until("the test's own connection", |seen| {
        seen.iter().any(|r| r.contains("/control"))
    })
    .await;
    let before = sink.seen().len();

    let broker = Broker::start().unwrap();
    let app = App::launch(Some(&broker)).await.unwrap();
    app.wait_for("[data-testid=broker-state][data-state=connected]")
        .await
        .unwrap();
    let report = inject(&app.client, sink.port).await;
    // Nothing can arrive once every attempt has settled, but a blocked request fails at once
    // while an allowed one may still be on its way: give stragglers 2 s (an absence has no
    // event to poll for).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let seen = sink.seen();
    assert_eq!(
        seen[before..].to_vec(),
        Vec::<String>::new(),
        "the page reached the listener; page report: {report}"
    );
    for marker in ["inline", "remote", "eval", "func", "timer"] {
        assert_eq!(
            report["markers"][marker],
            json!(null),
            "{marker} ran: {report}"
        );
    }
    // The engine says why: a CSP violation for each thing the page tried.
    let violations: Vec<String> = serde_json::from_value(report["violations"].clone()).unwrap();
    let url = |path: &str| format!("127.0.0.1:{}{path}", sink.port);
    for (directive, what) in [
        ("script-src", url("/x.js")),
        ("script-src", "inline".into()),
        ("img-src", url("/i.png")),
        ("style-src", url("/s.css")),
        ("frame-src", url("")),
        ("object-src", url("")),
        ("connect-src", url("/fetch")),
        ("connect-src", url("/xhr")),
        ("connect-src", url("/ws")),
        ("connect-src", url("/es")),
        ("connect-src", url("/beacon")),
        ("script-src", "eval".into()),
    ] {
        assert!(
            violations
                .iter()
                .any(|v| v.starts_with(directive) && v.contains(&what)),
            "no {directive} violation for {what}: {report}"
        );
    }
    // The app still works: its IPC answers and its UI navigates.
    let status = app.invoke("app_status", json!({})).await.unwrap();
    assert!(status.contains("\"state\":\"connected\""), "{status}");
    app.click_now("[data-testid=nav-settings]").await.unwrap();
    app.wait_for("[data-testid=page-settings]").await.unwrap();
    app.close().await.unwrap();

    // Control: the same page script, in the same engine without the app's CSP.
    let before = sink.seen().len();
    let browser = MiniBrowser::start().await;
    let report = inject(&browser.client, sink.port).await;
    sink.until("the unprotected page's requests", |seen| {
        [
            "/x.js", "/i.png", "/s.css", "/frame", "/object", "/fetch", "/xhr", "/ws", "/es",
            "/beacon",
        ]
        .iter()
        .all(|p| seen[before..].iter().any(|r| r.contains(p)))
    })
    .await;
    for marker in ["inline", "remote", "eval", "func", "timer"] {
        assert_eq!(
            report["markers"][marker],
            json!(1),
            "without a CSP {marker} should run: {report}"
        );
    }
    browser.client.close().await.unwrap();
}

/// What the injected page script tried and saw: `{markers, settled, violations}`.
async fn inject(client: &fantoccini::Client, port: u16) -> serde_json::Value {
    let text = client
        .execute_async(
            r#"const [port, done] = arguments;
            const base = 'http://127.0.0.1:' + port;
            const g = {markers: {}, settled: {}, violations: []};
            window.__pawG1 = g.markers;
            document.addEventListener('securitypolicyviolation',
                (e) => g.violations.push(e.violatedDirective + ' ' + e.blockedURI));
            const waits = [];
            const settle = (name, p) => waits.push(p.then(
                () => { g.settled[name] = 'loaded'; },
                (e) => { g.settled[name] = 'failed: ' + e; }));
            const load = (name, tag, props, parent) => settle(name, new Promise((ok, no) => {
                const e = document.createElement(tag);
                e.onload = ok;
                e.onerror = () => no('error event');
                Object.assign(e, props);
                parent.appendChild(e);
            }));
            load('script', 'script', {src: base + '/x.js'}, document.head);
            const inline = document.createElement('script');
            inline.textContent = 'window.__pawG1.inline = 1';
            document.body.appendChild(inline);
            load('img', 'img', {src: base + '/i.png'}, document.body);
            load('link', 'link', {rel: 'stylesheet', href: base + '/s.css'}, document.head);
            const frame = document.createElement('iframe');
            frame.src = base + '/frame';
            document.body.appendChild(frame);
            const object = document.createElement('object');
            object.data = base + '/object';
            document.body.appendChild(object);
            settle('fetch', fetch(base + '/fetch', {mode: 'no-cors'}));
            settle('xhr', new Promise((ok, no) => {
                const x = new XMLHttpRequest();
                x.open('GET', base + '/xhr');
                x.onload = ok;
                x.onerror = () => no('error event');
                try { x.send(); } catch (e) { no(e); }
            }));
            settle('websocket', new Promise((ok, no) => {
                try {
                    const w = new WebSocket('ws://127.0.0.1:' + port + '/ws');
                    w.onopen = ok;
                    w.onerror = () => no('error event');
                } catch (e) { no(e); }
            }));
            settle('eventsource', new Promise((ok, no) => {
                try {
                    const s = new EventSource(base + '/es');
                    s.onopen = ok;
                    s.onerror = () => { s.close(); no('error event'); };
                } catch (e) { no(e); }
            }));
            try { g.settled.beacon = navigator.sendBeacon(base + '/beacon', 'x'); }
            catch (e) { g.settled.beacon = 'threw: ' + e; }
            try { eval('window.__pawG1.eval = 1'); } catch (e) { g.settled.eval = 'threw: ' + e; }
            try { new Function('window.__pawG1.func = 1')(); }
            catch (e) { g.settled.func = 'threw: ' + e; }
            try { setTimeout('window.__pawG1.timer = 1', 0); }
            catch (e) { g.settled.timer = 'threw: ' + e; }
            const cap = new Promise((ok) => setTimeout(ok, 15000));
            Promise.race([Promise.allSettled(waits), cap])
                .then(() => new Promise((ok) => setTimeout(ok, 500)))
                .then(() => done(JSON.stringify(g)));"#,
            vec![json!(port)],
        )
        .await
        .unwrap();
    serde_json::from_str(text.as_str().unwrap()).unwrap()
}

/// A loopback listener that records the first bytes of every connection and answers each with
/// a script that sets a marker (so a script that did load would show).
struct Sink {
    port: u16,
    seen: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Sink {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut s, peer)) = listener.accept().await {
                let log = log.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
                        .await
                        .ok()
                        .and_then(Result::ok)
                        .unwrap_or(0);
                    let head = String::from_utf8_lossy(&buf[..n]);
                    let first = head.lines().next().unwrap_or("(nothing sent)");
                    log.lock().unwrap().push(format!("{peer}: {first}"));
                    let body = "window.__pawG1 && (window.__pawG1.remote = 1);";
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/javascript\r\n\
                         Access-Control-Allow-Origin: *\r\nContent-Length: {}\r\n\
                         Connection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = s.write_all(reply.as_bytes()).await;
                });
            }
        });
        Self { port, seen }
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }

    /// Waits (60 s at most, generous for a loaded machine) until `ok` holds for what was seen.
    async fn until(&self, what: &str, ok: impl Fn(&[String]) -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !ok(&self.seen()) {
            assert!(
                std::time::Instant::now() < deadline,
                "the listener never saw {what}: {:?}",
                self.seen()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// WebKitGTK's MiniBrowser (the engine the app embeds) driven by WebKitWebDriver, on
/// `about:blank`: a page with no CSP.
struct MiniBrowser {
    client: fantoccini::Client,
    _driver: paw_e2e::Proc,
}

impl MiniBrowser {
    async fn start() -> Self {
        let binary = std::env::var("PAW_E2E_MINIBROWSER")
            .unwrap_or_else(|_| "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser".into());
        let port = paw_e2e::free_port().unwrap();
        let driver = paw_e2e::Proc(
            std::process::Command::new("WebKitWebDriver")
                .arg(format!("--port={port}"))
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        );
        let mut caps = serde_json::Map::new();
        caps.insert(
            "webkitgtk:browserOptions".into(),
            json!({"binary": binary, "args": ["--automation"]}),
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match fantoccini::ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
            {
                Ok(c) => break c,
                Err(e) => {
                    assert!(std::time::Instant::now() < deadline, "MiniBrowser: {e}");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
        };
        client.goto("about:blank").await.unwrap();
        Self {
            client,
            _driver: driver,
        }
    }
}

/// G2: the page can call paw's own commands but nothing outside its capability.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g2_ipc_outside_capability_is_refused() {
    let app = App::launch(None).await.unwrap();
    app.wait_for("[data-testid=broker-state]").await.unwrap();
    let call = |cmd: &'static str| {
        let c = app.client.clone();
        async move {
            c.execute_async(
                "const [cmd, done] = arguments;
                 window.__TAURI_INTERNALS__.invoke(cmd, {})
                   .then(() => done('allowed'), (e) => done('refused: ' + JSON.stringify(e)));",
                vec![json!(cmd)],
            )
            .await
            .unwrap()
        }
    };
    assert_eq!(call("app_status").await, json!("allowed"));
    for forbidden in [
        "plugin:app|version",
        "plugin:window|title",
        "plugin:event|emit",
    ] {
        let r = call(forbidden).await;
        assert!(
            r.as_str().unwrap().starts_with("refused"),
            "{forbidden}: {r}"
        );
    }
    app.close().await.unwrap();
}

/// G3: the window never leaves the app; external links go to the system browser.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g3_external_navigation_stays_in_app_and_opens_system_browser() {
    let app = App::launch(None).await.unwrap();
    app.wait_for("[data-testid=broker-state]").await.unwrap();
    let here = app.client.current_url().await.unwrap();
    // tauri:// has an opaque origin in the URL model, so compare scheme and host.
    let origin = |u: &url::Url| (u.scheme().to_owned(), u.host_str().map(str::to_owned));
    app.client
        .execute("window.location.href = 'https://example.com/evil';", vec![])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let now = app.client.current_url().await.unwrap();
    assert_eq!(origin(&now), origin(&here), "window navigated to {now}");
    app.wait_for("[data-testid=broker-state]").await.unwrap();

    app.click_now("[data-testid=nav-settings]").await.unwrap();
    app.wait_for("[data-testid=external-docs]")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let mut opened = Vec::new();
    for _ in 0..40 {
        opened = app.opened_urls();
        if opened.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        opened.iter().any(|u| u == "https://example.com/evil"),
        "{opened:?}"
    );
    assert!(
        opened
            .iter()
            .any(|u| u.starts_with("https://example.com/paw")),
        "{opened:?}"
    );
    assert_eq!(
        origin(&app.client.current_url().await.unwrap()),
        origin(&here)
    );
    app.close().await.unwrap();
}

/// G4: the app listens on no TCP port. Launched directly, not through WebDriver: WebKitWebDriver
/// starts the app with an inspector server (`WEBKIT_INSPECTOR_SERVER`) that listens on loopback,
/// which is the test harness's port, not the product's. The same probe finds pawd's listening
/// socket, so it is able to fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g4_app_listens_on_no_port() {
    let broker = Broker::start().unwrap();
    let app = App::launch_plain(&broker).await.unwrap();
    let pids = process_tree_of(app.pid()).unwrap();
    assert!(pids.len() >= 2, "the app and its WebKit helpers: {pids:?}");
    for pid in &pids {
        assert_eq!(
            listening_sockets(*pid).unwrap(),
            Vec::<u64>::new(),
            "pid {pid} listens"
        );
    }
    let pawd = broker.proc.0.id();
    assert!(
        !listening_sockets(pawd).unwrap().is_empty(),
        "probe cannot see pawd's socket"
    );
}

/// G4: the UI comes from the embedded assets over the app's own scheme, never a dev server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g4_ui_is_served_from_embedded_assets() {
    let app = App::launch(None).await.unwrap();
    app.wait_for("[data-testid=broker-state]").await.unwrap();
    let url = app.client.current_url().await.unwrap();
    assert_eq!(
        url.scheme(),
        "tauri",
        "UI not served from embedded assets: {url}"
    );
    assert_eq!(url.host_str(), Some("localhost"));
    app.close().await.unwrap();
}
