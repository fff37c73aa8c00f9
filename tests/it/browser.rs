//! A real headless Chromium for the page tests, driven over WebDriver.
//!
//! fantoccini with Debian's `chromedriver` rather than chromiumoxide: fantoccini is a thin
//! WebDriver client on hyper 1 and tokio 1 (the versions this crate already builds), so it adds
//! little to a 2-core build, while chromiumoxide compiles the whole generated DevTools protocol;
//! and Debian ships `chromium-driver` at exactly the version of its `chromium`, so the pair
//! always matches with nothing downloaded.
//!
//! Every test runs through [`with_browser`]: a fresh Chromium with an empty profile, which saves
//! a screenshot of the last page to `target/browser-screenshots/NAME.png` whether the test
//! passed or panicked, then quits. Without Chromium the test is skipped with a loud note, unless
//! `BIHU_REQUIRE_BROWSER=1` (CI), where it fails.

use std::future::Future;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use futures::FutureExt;
use serde_json::json;

/// The flags every test's Chromium gets: headless, and nothing that reaches off the machine.
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,800",
    // The file input's own words in Chinese in the screenshots, as clerks' browsers show it
    // (with Debian's `chromium-l10n`, which holds the Chinese).
    "--lang=zh-CN",
];

const HOW_TO_INSTALL: &str = "install it with `apt-get install chromium chromium-driver` (Debian; add \
chromium-l10n fonts-wqy-zenhei for Chinese screenshots), or point BIHU_CHROMIUM and BIHU_CHROMEDRIVER at the binaries";

/// How long a wait for something on a page lasts before the test fails.
pub const PAGE_WAIT: Duration = Duration::from_secs(20);

fn find_binary(variable: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(variable).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// Chromium and its driver, if both are installed.
fn installed() -> Result<(PathBuf, PathBuf), String> {
    let chromium = find_binary(
        "BIHU_CHROMIUM",
        &["chromium", "chromium-browser", "google-chrome"],
    )
    .ok_or("no chromium on PATH")?;
    let driver = find_binary("BIHU_CHROMEDRIVER", &["chromedriver"]).ok_or("no chromedriver on PATH")?;
    Ok((chromium, driver))
}

/// Whether the browser tests can run here.
pub fn available() -> bool {
    installed().is_ok()
}

/// Where a test's last page is saved.
pub fn screenshot_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("browser-screenshots")
        .join(format!("{name}.png"))
}

/// A running Chromium: its WebDriver client, and the driver and profile to clean up.
pub struct Browser {
    pub client: Client,
    driver: tokio::process::Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start(chromium: &Path, driver_path: &Path) -> Browser {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
            listener.local_addr().unwrap().port()
        };
        let driver = tokio::process::Command::new(driver_path)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            // Chromium on Linux takes its UI language from the environment, not `--lang`
            // (which the other systems read): the driver hands its own on to the browser.
            .env("LANGUAGE", "zh_CN:zh")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", driver_path.display()));
        let profile = tempfile::tempdir().expect("a temporary profile dir");
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|f| f.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".to_string(),
            json!({ "binary": chromium, "args": args }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        let client = loop {
            // fantoccini's rustls connector also speaks plain http, which is all chromedriver
            // on loopback needs.
            let mut builder = ClientBuilder::rustls().expect("a WebDriver connector");
            match builder.capabilities(capabilities.clone()).connect(&url).await {
                Ok(client) => break client,
                Err(error) if started.elapsed() > Duration::from_secs(30) => {
                    panic!("chromedriver on port {port} gave no session within 30 s: {error}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        Browser {
            client,
            driver,
            _profile: profile,
        }
    }

    /// Goes to `url` (a loopback address).
    #[track_caller]
    pub fn goto<'a>(&'a self, url: &'a str) -> impl Future<Output = ()> + 'a {
        assert!(
            url.starts_with("http://127.0.0.1:"),
            "tests stay on loopback: {url}"
        );
        async move {
            self.client
                .goto(url)
                .await
                .unwrap_or_else(|e| panic!("cannot open {url}: {e}"))
        }
    }

    /// The element `css` matches, waiting for it to appear.
    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        let found = self
            .client
            .wait()
            .at_most(PAGE_WAIT)
            .for_element(Locator::Css(css))
            .await;
        match found {
            Ok(element) => element,
            Err(e) => panic!("no element {css} on {}: {e}", self.url().await),
        }
    }

    /// Whether the page has no element `css` matches now (not waiting for one to appear).
    pub async fn lacks(&self, css: &str) -> bool {
        self.client.find(Locator::Css(css)).await.is_err()
    }

    /// The `href` of the element `css` matches, waiting for it to appear.
    pub async fn href(&self, css: &str) -> String {
        self.find(css).await.attr("href").await.unwrap().unwrap()
    }

    /// The visible text of the element `css` matches.
    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.expect("an element's text")
    }

    /// Waits until the visible text of `css` satisfies `ready`; returns it.
    pub async fn wait_for_text(&self, css: &str, ready: impl Fn(&str) -> bool) -> String {
        let started = Instant::now();
        let mut last = String::new();
        while started.elapsed() < PAGE_WAIT {
            if let Ok(element) = self.client.find(Locator::Css(css)).await
                && let Ok(text) = element.text().await
            {
                if ready(&text) {
                    return text;
                }
                last = text;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "{css} on {} never got the text expected; last: {last:?}",
            self.url().await
        )
    }

    /// The page's URL now.
    pub async fn url(&self) -> String {
        self.client
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_default()
    }

    /// Fetches `path` from within the page (with its cookies), as a download link would;
    /// returns the HTTP status and the body's bytes.
    pub async fn fetch_bytes(&self, path: &str) -> (u16, Vec<u8>) {
        let script = r#"
            const [path, done] = arguments;
            fetch(path, { credentials: 'same-origin' })
              .then(async (r) => {
                done([r.status, Array.from(new Uint8Array(await r.arrayBuffer()))]);
              })
              .catch((e) => done([0, Array.from(new TextEncoder().encode(String(e)))]));
        "#;
        let answer = self
            .client
            .execute_async(script, vec![json!(path)])
            .await
            .unwrap_or_else(|e| panic!("fetching {path} in the page failed: {e}"));
        let status = answer[0].as_u64().expect("a status") as u16;
        let body = answer[1]
            .as_array()
            .expect("a body")
            .iter()
            .map(|b| b.as_u64().expect("a byte") as u8)
            .collect();
        (status, body)
    }

    /// Clicks the element `css` matches, waiting for it to appear.
    pub async fn click(&self, css: &str) {
        let element = self.find(css).await;
        if let Err(e) = element.click().await {
            panic!("cannot click {css} on {}: {e}", self.url().await)
        }
    }

    /// Clicks the element `css` matches and waits until the page it was on has gone (a form's
    /// answer may be the same URL).
    pub async fn click_to_next_page(&self, css: &str) {
        let old = self.client.find(Locator::Css("html")).await.expect("a page");
        self.click(css).await;
        let started = Instant::now();
        while old.tag_name().await.is_ok() {
            assert!(
                started.elapsed() < PAGE_WAIT,
                "clicking {css} left {} as it was",
                self.url().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Shows the page as printed (`on`) or on screen, through chromedriver's DevTools
    /// passthrough (`Emulation.setEmulatedMedia`).
    pub async fn emulate_print(&self, on: bool) {
        let media = if on { "print" } else { "" };
        self.client
            .issue_cmd(Cdp {
                cmd: "Emulation.setEmulatedMedia",
                params: json!({ "media": media }),
            })
            .await
            .unwrap_or_else(|e| panic!("cannot emulate print media: {e}"));
    }

    /// Types `text` into the element `css` matches (for a file input: a file's path).
    pub async fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        if let Err(e) = element.send_keys(text).await {
            panic!("cannot type into {css} on {}: {e}", self.url().await)
        }
    }

    /// Waits until the page's URL satisfies `ready`; returns it.
    pub async fn wait_for_url(&self, ready: impl Fn(&str) -> bool) -> String {
        let started = Instant::now();
        loop {
            let url = self.url().await;
            if ready(&url) {
                return url;
            }
            assert!(started.elapsed() < PAGE_WAIT, "the page stayed at {url}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Saves the page as it is now to `target/browser-screenshots/NAME.png`.
    pub async fn screenshot_as(&self, name: &str) {
        self.save_screenshot(name).await;
    }

    async fn save_screenshot(&self, name: &str) {
        let path = screenshot_path(name);
        match self.client.screenshot().await {
            Ok(png) => {
                std::fs::create_dir_all(path.parent().unwrap()).expect("target/ is writable");
                std::fs::write(&path, png).expect("the screenshot is written");
                eprintln!("browser test {name}: last page saved to {}", path.display());
            }
            Err(error) => eprintln!("browser test {name}: no screenshot: {error}"),
        }
    }

    async fn quit(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill().await;
    }
}

/// A DevTools command sent through chromedriver (`goog/cdp/execute`).
#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
    params: serde_json::Value,
}

impl fantoccini::wd::WebDriverCompatibleCommand for Cdp {
    fn endpoint(&self, base_url: &url::Url, session_id: Option<&str>) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (axum::http::Method, Option<String>) {
        let body = json!({ "cmd": self.cmd, "params": self.params });
        (axum::http::Method::POST, Some(body.to_string()))
    }
}

/// Runs `test` with a fresh headless Chromium; saves the last page as
/// `target/browser-screenshots/NAME.png` and quits the browser even when the test panics.
/// Without Chromium: fails if `BIHU_REQUIRE_BROWSER=1`, else says loudly that it is skipped.
pub async fn with_browser<F>(name: &str, test: F)
where
    F: AsyncFnOnce(&Browser),
{
    let (chromium, driver) = match installed() {
        Ok(found) => found,
        Err(missing) => {
            if std::env::var("BIHU_REQUIRE_BROWSER").as_deref() == Ok("1") {
                panic!("browser test {name}: {missing}, and BIHU_REQUIRE_BROWSER=1: {HOW_TO_INSTALL}");
            }
            // Written to the process's stderr itself: `eprintln!` goes to the harness's capture,
            // which a plain `cargo test` shows only for a failing test, and a skip passes.
            let _ = writeln!(
                std::io::stderr().lock(),
                "\n!!!!!!!!!! SKIPPED browser test {name}: {missing}.\n!!!!!!!!!! To run it, {HOW_TO_INSTALL}.\n"
            );
            return;
        }
    };
    let browser = Browser::start(&chromium, &driver).await;
    let outcome = std::panic::AssertUnwindSafe(test(&browser)).catch_unwind().await;
    browser.save_screenshot(name).await;
    browser.quit().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
