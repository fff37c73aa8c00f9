//! The browser harness itself, on the sandbox's one HTML page: Chromium starts headless,
//! renders UTF-8 Chinese, and leaves a screenshot.

use bihu_renew::api::protocol::QUOTE_PATH;
use bihu_renew::sandbox::SandboxConfig;

use crate::browser::{screenshot_path, with_browser};
use crate::support::start_sandbox;

#[tokio::test]
async fn chromium_renders_the_sandbox_quote_page_and_leaves_a_screenshot() {
    let sandbox = start_sandbox(SandboxConfig::default()).await;
    let url = format!("{}{QUOTE_PATH}", sandbox.base_url());
    let _ = std::fs::remove_file(screenshot_path("browser_smoke"));
    with_browser("browser_smoke", async |browser| {
        browser.goto(&url).await;
        browser
            .wait_for_text("h1", |text| text == "参数错误 / Bad request")
            .await;
        // A download from within the page, with its status and bytes.
        let (status, body) = browser.fetch_bytes(&url).await;
        assert_eq!(status, 400);
        assert!(
            String::from_utf8(body)
                .unwrap()
                .contains("<h1>参数错误 / Bad request</h1>")
        );
        assert!(
            browser
                .text("p")
                .await
                .contains("needs both Token and RenewalToken"),
            "the page's paragraph"
        );
    })
    .await;
    if crate::browser::available() {
        let png = std::fs::read(screenshot_path("browser_smoke")).expect("a screenshot was saved");
        assert!(png.starts_with(b"\x89PNG"), "the screenshot is a PNG");
    }
}
