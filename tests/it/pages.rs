//! The pages (issue 18) in a real headless Chromium: a clerk signs in, uploads the sample,
//! reads the check, starts it, watches it finish, downloads the results and reads the report;
//! the GBK and Excel copies of the sample give the same check; a list without a vehicle
//! column shows the CLI's message on the page; signed out, the job pages are refused.
//!
//! Each test runs the service in-process on `127.0.0.1:0` with a sandbox on another loopback
//! port, at a rate high enough to keep it quick and low enough to see the live progress.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bihu_renew::sandbox::{Sandbox, SandboxConfig};
use bihu_renew::serve::ServeConfig;
use bihu_renew::serve::jobs::JobSettings;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use reqwest::multipart::{Form, Part};
use reqwest::{Method, StatusCode};

use crate::browser::{Browser, with_browser};
use crate::support::{Served, job_settings, no_redirects, parse_results, serve_config, start_sandbox, user};

const CLERK: &str = "clerk";
const PASSWORD: &str = "correct horse";

fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples").join(name)
}

/// A service with one user, and its sandbox.
struct Service {
    sandbox: Sandbox,
    served: Served,
    dir: tempfile::TempDir,
}

impl Service {
    /// A service whose jobs go at `rate` to a default sandbox.
    async fn at_rate(rate: u32) -> Service {
        Service::start(SandboxConfig::default(), rate, |_| {}).await
    }

    async fn start(sandbox: SandboxConfig, rate: u32, change: impl FnOnce(&mut JobSettings)) -> Service {
        Service::start_with_reuse(sandbox, rate, change, None).await
    }

    /// A service whose `reuse_within` (the upload form's default) is `reuse_within`.
    async fn start_with_reuse(
        sandbox: SandboxConfig,
        rate: u32,
        change: impl FnOnce(&mut JobSettings),
        reuse_within: Option<Duration>,
    ) -> Service {
        let sandbox = start_sandbox(sandbox).await;
        let mut settings = job_settings(&sandbox, rate, 1, 4);
        change(&mut settings);
        let dir = tempfile::tempdir().unwrap();
        let (served, _) = Served::start(ServeConfig {
            retention: Duration::from_secs(86_400),
            reuse_within,
            ..serve_config(dir.path().join("data"), vec![user(CLERK, PASSWORD)], settings)
        })
        .await;
        Service { sandbox, served, dir }
    }

    fn url(&self, path: &str) -> String {
        self.served.url(path)
    }

    async fn shutdown(self) {
        self.served.stop().await;
        self.sandbox.shutdown().await;
    }
}

/// Runs `test` in a browser (its screenshot named `name`) signed in to `service`, then
/// stops the service.
async fn in_browser(service: Service, name: &str, test: impl AsyncFnOnce(&Browser, &Service)) {
    with_browser(name, async |browser| {
        sign_in(browser, &service).await;
        test(browser, &service).await;
    })
    .await;
    service.shutdown().await;
}

async fn sign_in(browser: &Browser, service: &Service) {
    browser.goto(&service.url("/jobs")).await;
    browser.wait_for_url(|url| url.contains("/login")).await;
    assert_eq!(browser.text("#notice").await, "请先登录。");
    browser.type_into("#name", CLERK).await;
    browser.type_into("#password", PASSWORD).await;
    browser.click("#sign-in").await;
    browser.wait_for_url(|url| url.ends_with("/jobs")).await;
    assert_eq!(browser.text("#user").await, CLERK);
}

/// Uploads `file` from the jobs page; returns the job page's URL.
async fn upload(browser: &Browser, service: &Service, file: &Path) -> String {
    browser.goto(&service.url("/jobs")).await;
    browser.type_into("#file", file.to_str().unwrap()).await;
    browser.click("#upload-submit").await;
    browser
        .wait_for_url(|url| url.rsplit('/').next().is_some_and(|id| id.parse::<u64>().is_ok()))
        .await
}

/// The check of samples/leads.csv (and its GBK and Excel copies), as the page shows it.
async fn assert_sample_check(browser: &Browser) {
    assert_eq!(browser.text("#check-rows").await, "40");
    assert_eq!(browser.text("#check-ready").await, "35");
    assert_eq!(browser.text("#check-invalid").await, "5");
    assert_eq!(browser.text("#check-duplicates").await, "2");
    let reasons = browser.text("#reasons").await;
    for (label, fix) in [
        ("新能源或特殊车牌", "请补上车架号和发动机号"),
        ("车牌号格式不对", "首字是省份简称"),
        ("车架号不对", "17 位"),
        ("没有车辆信息", "请填写车牌号"),
        ("没有投保城市", "上传时选择默认城市"),
    ] {
        assert!(reasons.contains(label), "{label} in {reasons}");
        assert!(reasons.contains(fix), "{fix} in {reasons}");
    }
    // The first rows of each reason: row number, the plate as written, the fix.
    let row = |reason: &str, n: u64| {
        let css = format!("#reasons tr.example[data-reason=\"{reason}\"][data-row=\"{n}\"]");
        async move { browser.text(&css).await }
    };
    // In Chinese, what is wrong with this row's own value, and the fix.
    let short_plate = row("plate_invalid", 34).await;
    assert!(short_plate.starts_with("34 京A1234 "), "{short_plate}");
    assert!(
        short_plate.contains("车牌“京A1234”有 6 位，普通车牌是 7 位"),
        "{short_plate}"
    );
    let letter_i = row("plate_invalid", 40).await;
    assert!(
        letter_i.contains("这里有“I”（车牌用数字 1，不用字母 I）"),
        "{letter_i}"
    );
    let vin = row("vin_invalid", 35).await;
    assert!(
        vin.contains("车架号“LS4ASE2A2GJ13702”有 16 位，车架号是 17 位"),
        "the VIN as written, and its length: {vin}"
    );
    let new_energy = row("plate_unsupported", 33).await;
    assert!(
        new_energy.contains("车牌“粤BF23456”是新能源或特殊车牌")
            && new_energy.contains("请在这一行补上车架号和发动机号"),
        "{new_energy}"
    );
    assert!(
        row("no_vehicle", 39)
            .await
            .contains("这一行既没有车牌号，也没有车架号和发动机号")
    );
    assert!(row("no_city", 39).await.contains("这一行没有填写投保城市"));
    let reasons_text = browser.text("#reasons").await;
    for english in ["has 6 characters", "no vehicle", "no city", "VIN "] {
        assert!(!reasons_text.contains(english), "{english:?} in {reasons_text}");
    }
    assert_eq!(
        browser.text("#start").await,
        "开始：33 个请求，按代理的速率不到 1 分钟"
    );
    assert_eq!(
        browser.text("#check-reused").await,
        "本任务不复用已有的查询结果：每辆车都发请求。",
        "the service reuses nothing unless asked"
    );
}

#[tokio::test]
async fn a_clerk_signs_in_checks_the_sample_runs_it_and_downloads_the_results() {
    let service = Service::at_rate(10).await;
    in_browser(service, "pages_sample_run", async |browser, service| {
        assert!(browser.text("#no-jobs").await.contains("还没有任务"));
        // The city select is the city table.
        let cities = browser.text("#city").await;
        assert!(cities.contains("北京 (1)") && cities.contains("广州"), "{cities}");
        let job_url = upload(browser, service, &sample("leads.csv")).await;
        assert_eq!(browser.text("#state").await, "已检查，待开始");
        assert_sample_check(browser).await;
        browser.screenshot_as("pages_check").await;
        fits(browser, "the check").await;

        browser.click("#start").await;
        // Live: the Cancel button, and the counts moving on the same page (the event stream,
        // not a reload), then every row.
        browser.find("#cancel").await;
        browser
            .client
            .execute("window.samePage = true;", vec![])
            .await
            .unwrap();
        browser
            .wait_for_text("#rows-done", |text| {
                text.split(" / ")
                    .next()
                    .and_then(|n| n.parse::<u64>().ok())
                    .is_some_and(|n| n > 0 && n < 40)
            })
            .await;
        let same_page = browser
            .client
            .execute("return window.samePage === true;", vec![])
            .await
            .unwrap();
        assert_eq!(
            same_page,
            serde_json::json!(true),
            "the progress moved without a reload"
        );
        assert!(browser.text("#counts").await.contains("已续保"));
        browser
            .wait_for_text("#rows-done", |text| text == "40 / 40 行")
            .await;
        // Done: the page shows the downloads and the report.
        browser.find("#download-csv").await;
        assert_eq!(browser.text("#state").await, "已完成");
        assert_eq!(browser.text("#done-note").await, "任务已完成：40 行都已有结果。");
        let counts = browser.text("#counts").await;
        assert!(counts.contains("已续保"), "{counts}");
        assert!(counts.contains("名单有误，未发送 5"), "{counts}");

        let href = browser.href("#download-csv").await;
        let (status, csv) = browser.fetch_bytes(&href).await;
        assert_eq!(status, 200);
        let (_, rows) = parse_results(&csv);
        assert_eq!(rows.len(), 40);
        assert_eq!(rows.iter().filter(|r| r.status == "invalid_input").count(), 5);
        assert!(rows.iter().all(|r| !r.status.is_empty()));
        // The Excel workbook: the same 40 rows under a header.
        let xlsx = browser.href("#download-xlsx").await;
        assert_eq!(xlsx, href.replace("results.csv", "results.xlsx"));
        let (status, bytes) = browser.fetch_bytes(&xlsx).await;
        assert_eq!(status, 200);
        {
            use calamine::Reader as _;
            let mut workbook = calamine::Xlsx::new(std::io::Cursor::new(bytes)).unwrap();
            let range = workbook.worksheet_range("results").unwrap();
            assert_eq!(range.height(), 41, "a header and 40 rows");
            // The same rows as the CSV, in the same order, with the same statuses.
            let mut sheet = range
                .rows()
                .map(|cells| cells.iter().map(|cell| cell.to_string()).collect::<Vec<_>>());
            let header = sheet.next().unwrap();
            let column = |name: &str| {
                header
                    .iter()
                    .position(|cell| cell == name)
                    .unwrap_or_else(|| panic!("no {name} column in {header:?}"))
            };
            let (row_at, status_at) = (column("row"), column("status"));
            let from_xlsx: Vec<(String, String)> = sheet
                .map(|cells| (cells[row_at].clone(), cells[status_at].clone()))
                .collect();
            let from_csv: Vec<(String, String)> = rows
                .iter()
                .map(|r| (r.row.to_string(), r.status.clone()))
                .collect();
            assert_eq!(from_xlsx, from_csv);
        }

        // The report, embedded.
        // The report, embedded, in the page's language (Chinese by default).
        let job_id = job_url.rsplit('/').next().unwrap().to_string();
        browser
            .client
            .execute("document.getElementById('report').scrollIntoView();", vec![])
            .await
            .unwrap();
        browser.screenshot_as("pages_report").await;
        let frame = browser.find("#report-frame").await;
        frame.enter_frame().await.unwrap();
        let heading = browser.text("h1").await;
        assert_eq!(heading, format!("续保报告：leads.csv（任务 {job_id}）"));
        assert_eq!(browser.text("#outcomes h2").await, "结果");
        assert_eq!(browser.text("#by-status thead").await, "状态 行数 占比");
        assert!(
            browser
                .text("#by-status tr[data-status=renewed] td")
                .await
                .starts_with("续保成功")
        );
        assert!(browser.text("#renewal-rate").await.starts_with("续保率："));
        assert_eq!(browser.text("#attention-section h2").await, "需要处理的行");
        let lang = browser
            .client
            .execute("return document.documentElement.lang;", vec![])
            .await
            .unwrap();
        assert_eq!(lang, serde_json::json!("zh-CN"));
        browser.client.enter_parent_frame().await.unwrap();
        // The CLI's English report is the same address without the language.
        let (status, english) = browser
            .fetch_bytes(&format!("/api/jobs/{job_id}/report.html"))
            .await;
        assert_eq!(status, 200);
        let english = String::from_utf8(english).unwrap();
        assert!(
            english.contains(&format!("<h1>Renewal report: leads.csv (job {job_id})</h1>")),
            "{english}"
        );
        // No row failed, so there is nothing to retry.
        assert!(browser.lacks("#retry").await);

        // The jobs page lists it, newest first, with its counts.
        browser.goto(&service.url("/jobs")).await;
        let row = browser.text("#jobs tbody tr").await;
        assert!(
            row.contains("leads.csv") && row.contains(CLERK) && row.contains("已完成"),
            "{row}"
        );
        assert!(row.contains(" 5"), "five invalid rows: {row}");
        browser.screenshot_as("pages_jobs").await;
        fits(browser, "the jobs page").await;
        browser.goto(&job_url).await;
        browser.find("#download-csv").await;
        browser.screenshot_as("pages_done").await;
        fits(browser, "the finished job").await;
        // On paper: no forms, buttons, navigation or frame; the figures and tables stay.
        browser.emulate_print(true).await;
        let shown = |css: &str| {
            let script =
                format!("const e = document.querySelector('{css}'); return !!e && e.checkVisibility();");
            async move { browser.client.execute(&script, vec![]).await.unwrap() == serde_json::json!(true) }
        };
        for hidden in ["header.top nav", "#download-csv", "#report-frame", ".back"] {
            assert!(!shown(hidden).await, "{hidden} is printed");
        }
        for printed in [
            "#counts",
            "#check-figures",
            "#results .print-only, #report .print-only",
            "h1",
        ] {
            assert!(shown(printed).await, "{printed} is not printed");
        }
        browser.screenshot_as("pages_done_printed").await;
        browser.emulate_print(false).await;
        assert!(shown("#download-csv").await);
        assert!(
            !shown("#check-figures").await,
            "on screen, a finished job's check is folded"
        );
    })
    .await;
}

/// The page has no horizontal scroll bar at 1280 wide, nor at 1920.
async fn fits(browser: &Browser, what: &str) {
    for width in [1280, 1920] {
        browser.client.set_window_size(width, 800).await.unwrap();
        let overflow = browser
            .client
            .execute(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
                vec![],
            )
            .await
            .unwrap();
        assert!(
            overflow.as_i64().unwrap() <= 0,
            "{what} scrolls sideways at {width} wide: {overflow}"
        );
    }
    browser.client.set_window_size(1280, 800).await.unwrap();
}

#[tokio::test]
async fn the_gbk_and_excel_copies_of_the_sample_give_the_same_check() {
    let service = Service::at_rate(200).await;
    in_browser(service, "pages_gbk_and_xlsx", async |browser, service| {
        upload(browser, service, &sample("leads-gbk.csv")).await;
        assert_eq!(browser.text("#file").await, "leads-gbk.csv");
        assert_sample_check(browser).await;
        upload(browser, service, &sample("leads.xlsx")).await;
        assert_eq!(browser.text("#file").await, "leads.xlsx");
        assert_sample_check(browser).await;
        // English, chosen once, stays chosen.
        browser.click("#lang").await;
        browser
            .wait_for_text("#start", |text| {
                text == "Start: 33 requests, less than a minute at the agent's rate"
            })
            .await;
        let reasons = browser.text("#reasons").await;
        assert!(reasons.contains("New-energy or special plate"), "{reasons}");
        // In English, each row's text is the CLI's own sentence.
        let short_plate = browser
            .text("#reasons tr.example[data-reason=\"plate_invalid\"][data-row=\"34\"]")
            .await;
        assert!(
            short_plate.contains("plate 京A1234 has 6 characters"),
            "{short_plate}"
        );
        assert!(
            !reasons.contains("车牌“"),
            "no Chinese row text in English: {reasons}"
        );
        browser.goto(&service.url("/jobs")).await;
        assert_eq!(browser.text("#upload-submit").await, "Upload and check");
        // A file dropped on the upload form is the one uploaded.
        // Dropped once the page's deferred script has run (a loaded page, not only a parsed
        // one), and read back once the drop handler has named it.
        browser.goto(&service.url("/jobs")).await;
        browser
            .client
            .execute_async(
                r#"
                const done = arguments[arguments.length - 1];
                const drop = () => {
                    const list = new DataTransfer();
                    list.items.add(new File(["车牌号\n京A12345\n"], "dropped.csv", { type: "text/csv" }));
                    document.getElementById("drop").dispatchEvent(
                        new DragEvent("drop", { dataTransfer: list, bubbles: true, cancelable: true }));
                    done(null);
                };
                if (document.readyState === "complete") drop();
                else window.addEventListener("load", drop);
                "#,
                vec![],
            )
            .await
            .unwrap();
        browser
            .wait_for_text("#file-name", |text| text == "dropped.csv")
            .await;
        browser.click("#upload-submit").await;
        browser.wait_for_url(|url| !url.ends_with("/jobs")).await;
        assert_eq!(browser.text("#file").await, "dropped.csv");
        assert_eq!(browser.text("#check-ready").await, "1");
        assert_eq!(
            browser.text("#start").await,
            "Start: 1 request, less than a minute at the agent's rate"
        );
    })
    .await;
}

#[tokio::test]
async fn a_list_without_a_vehicle_column_shows_the_clis_message_on_the_page() {
    let service = Service::at_rate(200).await;
    let list = service.dir.path().join("名单.csv");
    std::fs::write(&list, "客户姓名,联系电话\n张伟,15908301661\n").unwrap();
    in_browser(service, "pages_no_vehicle_column", async |browser, service| {
        browser.goto(&service.url("/jobs")).await;
        browser.type_into("#file", list.to_str().unwrap()).await;
        browser.click("#upload-submit").await;
        let error = browser
            .wait_for_text("#error", |text| text.contains("没有车辆列"))
            .await;
        assert!(error.contains("请改好表头后重新上传"), "{error}");
        let details = browser.text("#error-details").await;
        assert!(
            details.starts_with("名单.csv has no vehicle column. Its header is: 客户姓名, 联系电话."),
            "the CLI's message, naming the file as uploaded: {details}"
        );
        assert!(details.contains("车牌号"), "{details}");
        // Still the jobs page, with its form; no job was made.
        browser.find("#upload").await;
        assert!(browser.text("#no-jobs").await.contains("还没有任务"));
    })
    .await;
}

#[tokio::test]
async fn signed_out_the_job_pages_are_refused() {
    let service = Service::at_rate(200).await;
    in_browser(service, "pages_signed_out", async |browser, service| {
        let job_url = upload(browser, service, &sample("leads.csv")).await;
        browser.click("#sign-out").await;
        browser.wait_for_url(|url| url.contains("/login")).await;
        assert_eq!(browser.text("#notice").await, "已退出登录。");
        for path in [job_url.clone(), service.url("/jobs")] {
            browser.goto(&path).await;
            browser.wait_for_url(|url| url.contains("/login?")).await;
            assert_eq!(browser.text("#notice").await, "请先登录。");
            assert!(browser.lacks("#check").await, "no check shown signed out");
        }
        let id = job_url.rsplit('/').next().unwrap();
        let (status, _) = browser.fetch_bytes(&format!("/api/jobs/{id}")).await;
        assert_eq!(status, 401);
        let (status, _) = browser.fetch_bytes(&format!("/api/jobs/{id}/results.csv")).await;
        assert_eq!(status, 401);
        // Signing in again leads back to the job asked for.
        browser.goto(&job_url).await;
        browser.type_into("#name", CLERK).await;
        browser.type_into("#password", PASSWORD).await;
        browser.click("#sign-in").await;
        browser.wait_for_url(|url| url == job_url).await;
        browser.find("#check").await;
    })
    .await;
}

#[tokio::test]
async fn failed_rows_offer_a_retry_and_a_cancelled_job_continues() {
    // Every third vehicle's first request or two fail, and no retry within the run: some
    // rows end as server errors.
    let sandbox = SandboxConfig {
        flaky_percent: 34,
        ..SandboxConfig::default()
    };
    let service = Service::start(sandbox, 8, |settings| settings.retries = 0).await;
    in_browser(service, "pages_retry_and_cancel", async |browser, service| {
        upload(browser, service, &sample("leads.csv")).await;
        browser.click("#start").await;
        // Cancelled while it runs: the rows done are kept, and it continues from there.
        browser.click("#cancel").await;
        let note = browser
            .wait_for_text("#cancelled-note", |text| text.starts_with("任务已取消"))
            .await;
        assert!(note.ends_with("/ 40 行。"), "{note}");
        browser.find("#download-csv").await;
        browser.click_to_next_page("#continue").await;
        browser.wait_for_text("#state", |text| text == "已完成").await;
        let retry = browser.text("#retry").await;
        let failed: u64 = retry
            .strip_prefix("重试失败的 ")
            .and_then(|rest| rest.strip_suffix(" 行"))
            .and_then(|k| k.parse().ok())
            .unwrap_or_else(|| panic!("{retry}"));
        assert!(failed > 0, "{retry}");
        let counts = browser.text("#counts").await;
        assert!(counts.contains("服务器错误"), "{counts}");
        // Each retry sends the failed rows again, until none is left.
        for _ in 0..3 {
            if browser.lacks("#retry").await {
                break;
            }
            browser.click_to_next_page("#retry").await;
            browser.wait_for_text("#state", |text| text == "已完成").await;
        }
        assert!(browser.lacks("#retry").await);
        assert!(!browser.text("#counts").await.contains("服务器错误"));
        assert_eq!(browser.text("#rows-done").await, "40 / 40 行");
    })
    .await;
}

#[tokio::test]
async fn an_aborted_job_says_what_the_cli_says_on_exit_3_in_a_clerks_words() {
    let service = Service::start(SandboxConfig::default(), 200, |settings| {
        settings.token = Some("EXPIRED-TOKEN".into());
    })
    .await;
    in_browser(service, "pages_aborted", async |browser, service| {
        upload(browser, service, &sample("leads.csv")).await;
        browser.click("#start").await;
        browser.wait_for_text("#state", |text| text == "已中止").await;
        assert_eq!(
            browser.text("#aborted-title").await,
            "任务已中止：壁虎拒绝了代理的凭证"
        );
        let aborted = browser.text("#aborted").await;
        assert!(aborted.contains("Token 已过期或无效"), "{aborted}");
        assert!(aborted.contains("请联系本服务的管理员"), "{aborted}");
        assert!(!aborted.contains("EXPIRED-TOKEN"), "the Token is never shown");
        browser.click("#aborted summary").await;
        let message = browser.text("#abort-message").await;
        assert!(message.contains("consecutive credential failures"), "{message}");
        assert!(browser.text("#retry").await.starts_with("重试失败的"));
    })
    .await;
}

/// The value of `name="csrf" value="…"` in a page.
fn csrf_of(html: &str) -> String {
    let start = html
        .find("name=\"csrf\" value=\"")
        .expect("a form with the CSRF token")
        + 19;
    html[start..].split('"').next().unwrap().to_string()
}

/// Where a redirect sends the browser.
fn location(response: &reqwest::Response) -> String {
    response.headers()[LOCATION].to_str().unwrap().to_string()
}

/// Sends the sign-in form as [`CLERK`] with `password`, to go to `next` once signed in.
async fn post_login(
    http: &reqwest::Client,
    service: &Service,
    password: &str,
    next: &str,
) -> reqwest::Response {
    http.post(service.url("/login"))
        .form(&[("name", CLERK), ("password", password), ("next", next)])
        .send()
        .await
        .unwrap()
}

/// The session cookie (`name=value`) a sign-in set.
fn session_cookie(login: &reqwest::Response) -> String {
    login.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

/// A clerk signed in without a browser: a client that shows redirects, and the session's
/// cookie, which every request made through it carries.
struct Plain<'a> {
    service: &'a Service,
    http: reqwest::Client,
    cookie: String,
}

impl Plain<'_> {
    /// Signs in with the plain form; gives the session and the jobs page's CSRF token.
    async fn sign_in(service: &Service) -> (Plain<'_>, String) {
        let http = no_redirects();
        let login = post_login(&http, service, PASSWORD, "/jobs").await;
        let cookie = session_cookie(&login);
        let plain = Plain {
            service,
            http,
            cookie,
        };
        let csrf = csrf_of(&plain.page("/jobs").await);
        (plain, csrf)
    }

    /// `method path` with the session's cookie, to be sent.
    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.service.url(path))
            .header(COOKIE, &self.cookie)
    }

    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.request(Method::POST, path)
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.request(Method::GET, path).send().await.unwrap()
    }

    /// The text of the page at `path`, whatever its status.
    async fn page(&self, path: &str) -> String {
        self.get(path).await.text().await.unwrap()
    }

    /// Sends the upload form (`POST /jobs`) with `form`.
    async fn upload(&self, form: Form) -> reqwest::Response {
        self.post("/jobs").multipart(form).send().await.unwrap()
    }

    /// Reloads the job page at `path` every 100 ms until it offers the results (failing after
    /// `within`) and gives that page; each page before it is shown to `running`.
    async fn wait_done(&self, path: &str, within: Duration, running: impl Fn(&str)) -> String {
        let deadline = std::time::Instant::now() + within;
        loop {
            let page = self.page(path).await;
            if page.contains("id=\"download-csv\"") {
                return page;
            }
            running(&page);
            assert!(std::time::Instant::now() < deadline, "never done");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test]
async fn without_javascript_the_plain_forms_sign_in_upload_and_start_and_refuse_what_they_must() {
    let service = Service::at_rate(200).await;
    let http = no_redirects();

    let refused = http.get(service.url("/jobs/1")).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&refused), "/login?why=needed&next=%2Fjobs%2F1");

    let wrong = post_login(&http, &service, "wrong", "/jobs").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.text().await.unwrap().contains("用户名或密码不对"));
    let login = post_login(&http, &service, PASSWORD, "//evil.example/").await;
    assert_eq!(login.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&login), "/jobs", "the way back stays on the service");
    let cookie = session_cookie(&login);
    assert!(cookie.starts_with("bihu_session="), "{cookie}");
    let plain = Plain {
        service: &service,
        http,
        cookie,
    };

    let jobs = plain.get("/jobs").await;
    assert_eq!(jobs.status(), StatusCode::OK);
    let policy = jobs.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(policy.contains("script-src 'self'"), "{policy}");
    let html = jobs.text().await.unwrap();
    let csrf = csrf_of(&html);
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "nothing from elsewhere"
    );

    let sample_part = || Part::bytes(std::fs::read(sample("leads.csv")).unwrap()).file_name("leads.csv");
    // Without the token, or from another site, the form is refused.
    let no_token = plain.upload(Form::new().part("file", sample_part())).await;
    assert_eq!(no_token.status(), StatusCode::FORBIDDEN);
    assert!(
        no_token
            .text()
            .await
            .unwrap()
            .contains("页面已过期，请刷新页面后再试")
    );
    let cross_site = plain
        .post("/jobs")
        .header("origin", "http://evil.example")
        .multipart(Form::new().text("csrf", csrf.clone()).part("file", sample_part()))
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), StatusCode::FORBIDDEN);
    // Too large: the limit and what to do, on the page.
    let big = vec![b'x'; 1024 * 1024 + 1];
    let too_large = plain
        .upload(
            Form::new()
                .text("csrf", csrf.clone())
                .part("file", Part::bytes(big).file_name("big.csv")),
        )
        .await;
    assert_eq!(too_large.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let page = too_large.text().await.unwrap();
    assert!(
        page.contains("文件太大：请把名单拆成几个较小的文件分别上传"),
        "{page}"
    );
    assert!(page.contains("larger than the limit of 1 MB"), "{page}");
    assert!(page.contains("还没有任务"), "no job was made");

    let created = plain
        .upload(
            Form::new()
                .text("csrf", csrf.clone())
                .part("file", sample_part())
                .text("city_code", "1"),
        )
        .await;
    assert_eq!(created.status(), StatusCode::SEE_OTHER);
    let job_path = location(&created);
    let page = plain.page(&job_path).await;
    assert!(page.contains("开始：33 个请求"), "{page}");
    assert!(page.contains("北京 (1)"), "the default city is shown");

    let start = |token: &str| {
        plain
            .post(&format!("{job_path}/start"))
            .form(&[("csrf", token)])
            .send()
    };
    assert_eq!(
        start("not-the-token").await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    let started = start(&csrf).await.unwrap();
    assert_eq!(started.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&started), job_path);
    // A running job's page reloads itself without the script.
    let page = plain
        .wait_done(&job_path, Duration::from_secs(20), |page| {
            assert!(page.contains("<noscript><meta http-equiv=\"refresh\""), "{page}");
        })
        .await;
    assert!(page.contains("任务已完成：40 行都已有结果。"));
    // Started twice: the API's refusal, in words, on the job's page.
    let again = start(&csrf).await.unwrap();
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert!(again.text().await.unwrap().contains("现在不能这样做"));

    // English, remembered in a cookie; the static files are the binary's own.
    let english = plain.get("/jobs?lang=en").await;
    assert!(
        english.headers()[SET_COOKIE]
            .to_str()
            .unwrap()
            .starts_with("bihu_lang=en")
    );
    assert!(english.text().await.unwrap().contains("Upload and check"));
    let css = plain
        .http
        .get(service.url("/static/pages.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(css.headers()[CONTENT_TYPE], "text/css; charset=utf-8");
    assert!(css.text().await.unwrap().contains("@media print"));
    service.shutdown().await;
}

#[tokio::test]
async fn the_upload_form_offers_reuse_with_the_configured_default_and_the_check_says_what_it_saves() {
    let week = Duration::from_secs(7 * 86_400);
    let service = Service::start_with_reuse(SandboxConfig::default(), 500, |_| {}, Some(week)).await;
    let (plain, csrf) = Plain::sign_in(&service).await;

    let form = plain.page("/jobs").await;
    assert!(
        form.contains("<select name=\"reuse_within\" id=\"reuse\">"),
        "{form}"
    );
    assert!(
        form.contains("<option value=\"7d\" selected>7 天内查过的车辆用上次的结果（默认）</option>"),
        "the config's window is the default: {form}"
    );
    assert!(
        form.contains("<option value=\"off\">不复用：每辆车都重新查询</option>"),
        "{form}"
    );
    assert_eq!(form.matches(" selected>").count(), 1, "{form}");
    let english = plain.page("/jobs?lang=en").await;
    assert!(
        english.contains("Vehicles answered in the last 7 days take that answer (default)"),
        "{english}"
    );
    let _ = plain.page("/jobs?lang=zh").await;

    // What the form sends: its csrf, the file, the city and the chosen window.
    let upload = async |reuse: &str| {
        let form = Form::new()
            .text("csrf", csrf.clone())
            .part(
                "file",
                Part::bytes(std::fs::read(sample("leads.csv")).unwrap()).file_name("leads.csv"),
            )
            .text("city_code", "1")
            .text("reuse_within", reuse.to_string());
        let created = plain.upload(form).await;
        assert_eq!(created.status(), StatusCode::SEE_OTHER);
        location(&created)
    };
    let first = upload("7d").await;
    let page = plain.page(&first).await;
    assert!(
        page.contains("复用 7 天内的查询结果：0 行用已有结果，少发 0 个请求。"),
        "an empty history saves nothing: {page}"
    );
    assert!(page.contains("开始：33 个请求"), "{page}");
    let started = plain
        .post(&format!("{first}/start"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), StatusCode::SEE_OTHER);
    plain.wait_done(&first, Duration::from_secs(30), |_| {}).await;

    // The same list again: every vehicle has its answer now.
    let second = upload("7d").await;
    let page = plain.page(&second).await;
    assert!(
        page.contains("复用 7 天内的查询结果：35 行用已有结果，少发 33 个请求。"),
        "{page}"
    );
    assert!(
        page.contains("没有可发送的行") || page.contains("开始：0 个请求"),
        "{page}"
    );
    let english = plain.page(&format!("{}?lang=en", upload("1d").await)).await;
    assert!(
        english.contains(
            "Reusing answers of the last 1 day: 35 rows take an answer from the history, 33 requests fewer."
        ),
        "{english}"
    );
    let _ = plain.page("/jobs?lang=zh").await;
    let off = plain.page(&upload("off").await).await;
    assert!(
        off.contains("本任务不复用已有的查询结果：每辆车都发请求。"),
        "{off}"
    );
    assert!(off.contains("开始：33 个请求"), "{off}");
    service.shutdown().await;
}

#[tokio::test]
async fn an_unreadable_file_says_what_to_do_with_the_programs_message_folded() {
    let service = Service::at_rate(200).await;
    let (plain, csrf) = Plain::sign_in(&service).await;
    // A picture saved as .csv (no text in any encoding), and a .xlsx that is no zip.
    let mut binary = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    binary.extend((0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    let fake_xlsx = "车牌号,投保城市\n京A12345,1\n".as_bytes().to_vec();
    for (name, bytes) in [("picture.csv", binary), ("名单.xlsx", fake_xlsx)] {
        let answer = plain
            .upload(
                Form::new()
                    .text("csrf", csrf.clone())
                    .part("file", Part::bytes(bytes).file_name(name)),
            )
            .await;
        assert_eq!(answer.status(), StatusCode::UNPROCESSABLE_ENTITY, "{name}");
        let page = answer.text().await.unwrap();
        let document = scraper::Html::parse_document(&page);
        let text_of = |css: &str| {
            let selector = scraper::Selector::parse(css).unwrap();
            document
                .select(&selector)
                .next()
                .unwrap_or_else(|| panic!("no {css} for {name}: {page}"))
                .text()
                .collect::<String>()
        };
        // What a clerk reads first: what to do, in Excel's own words, and no CLI flag.
        let what = text_of("#error p.what");
        assert!(what.starts_with("文件无法读取"), "{name}: {what}");
        assert!(
            what.contains("“另存为”选择“CSV UTF-8（逗号分隔）”或“Excel 工作簿（.xlsx）”"),
            "{name}: {what}"
        );
        assert!(!what.contains("--"), "{name}: {what}");
        assert_eq!(text_of("#error-more summary"), "程序的原话");
        // The program's message, naming the file as uploaded, folded away.
        let details = text_of("#error-details");
        assert!(details.starts_with(name), "{name}: {details}");
        let more = scraper::Selector::parse("#error-more").unwrap();
        assert!(
            document.select(&more).next().unwrap().attr("open").is_none(),
            "{name}: the program's message starts folded"
        );
        assert!(page.contains("还没有任务"), "{name}: no job was made");
    }
    service.shutdown().await;
}

#[tokio::test]
async fn error_pages_keep_who_is_signed_in_and_an_unknown_path_has_a_page() {
    let service = Service::at_rate(200).await;
    let (plain, _csrf) = Plain::sign_in(&service).await;
    let signed_in = |page: &str| {
        page.contains("<strong id=\"user\">clerk</strong>")
            && page.contains("id=\"sign-out\"")
            && page.contains("action=\"/logout\"")
    };

    let no_job = plain.get("/jobs/999").await;
    assert_eq!(no_job.status(), StatusCode::NOT_FOUND);
    let page = no_job.text().await.unwrap();
    assert!(page.contains("没有这个任务"), "{page}");
    assert!(signed_in(&page), "no such job: {page}");

    let stale_form = plain
        .post("/jobs/1/start")
        .form(&[("csrf", "an-old-token")])
        .send()
        .await
        .unwrap();
    assert_eq!(stale_form.status(), StatusCode::FORBIDDEN);
    let page = stale_form.text().await.unwrap();
    assert!(page.contains("页面已过期，请刷新页面后再试"), "{page}");
    assert!(signed_in(&page), "CSRF: {page}");

    let nowhere = plain.get("/no/such/page").await;
    assert_eq!(nowhere.status(), StatusCode::NOT_FOUND);
    assert_eq!(nowhere.headers()[CONTENT_TYPE], "text/html; charset=utf-8");
    let page = nowhere.text().await.unwrap();
    assert!(page.contains("没有这个页面：请从任务列表进入。"), "{page}");
    assert!(signed_in(&page), "unknown path: {page}");
    let english = plain
        .http
        .get(service.url("/no/such/page?lang=en"))
        .send()
        .await
        .unwrap();
    assert_eq!(english.status(), StatusCode::NOT_FOUND);
    let page = english.text().await.unwrap();
    assert!(page.contains("There is no such page"), "{page}");
    assert!(!page.contains("id=\"sign-out\""), "nobody signed in: {page}");
    // The API's unknown paths still answer in JSON, and the report takes only its languages.
    let api = plain.http.get(service.url("/api/nope")).send().await.unwrap();
    assert_eq!(api.status(), StatusCode::NOT_FOUND);
    assert!(api.text().await.unwrap().starts_with("{\"error\""));
    let french = plain.get("/api/jobs/1/report.html?lang=fr").await;
    assert_eq!(french.status(), StatusCode::BAD_REQUEST);
    assert!(
        french
            .text()
            .await
            .unwrap()
            .contains("is not a report language: use zh or en")
    );

    // Wrong Basic credentials beside the session, until the address is throttled: the page
    // that says so still has the session's sign-out.
    let mut last = None;
    for _ in 0..8 {
        let answer = plain
            .request(Method::GET, "/jobs")
            .header(AUTHORIZATION, "Basic Y2xlcms6d3Jvbmc=")
            .send()
            .await
            .unwrap();
        if answer.status() == StatusCode::TOO_MANY_REQUESTS {
            last = Some(answer.text().await.unwrap());
            break;
        }
    }
    let page = last.expect("throttled after a few wrong passwords");
    assert!(page.contains("登录失败次数太多"), "{page}");
    assert!(signed_in(&page), "throttled: {page}");
    service.shutdown().await;
}
