//! Every word the pages show, in one table: Chinese first, English beside it.
//!
//! Templates ask for a text by key (`c.t("jobs.title")`); Rust code fills in the figures of
//! the few texts with placeholders (`{n}`). A unit test checks that every key a template
//! asks for is in the table, so a missing text fails the build's tests, not a clerk's page.

use crate::leads::lead::ReasonKind;
use crate::results::outcome::Status;
use crate::serve::store::JobState;

/// The pages' languages: Chinese (the default) and English.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Zh,
    En,
}

impl Lang {
    /// `zh` or `en`, as `?lang=` and the cookie spell it.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }

    pub fn parse(text: &str) -> Option<Lang> {
        match text.trim().to_ascii_lowercase().as_str() {
            "zh" | "zh-cn" | "cn" => Some(Lang::Zh),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The `lang` attribute of the page.
    pub fn html_lang(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }

    /// The text for `key`; the key itself if the table lacks it (the unit test prevents that).
    pub fn t(self, key: &str) -> &'static str {
        match TEXTS.iter().find(|(k, _, _)| *k == key) {
            Some((_, zh, en)) => match self {
                Lang::Zh => zh,
                Lang::En => en,
            },
            None => {
                debug_assert!(false, "no text for {key:?}");
                "?"
            }
        }
    }

    /// The text for `key` with each `{name}` replaced by its value.
    pub fn fill(self, key: &str, values: &[(&str, String)]) -> String {
        let mut text = self.t(key).to_string();
        for (name, value) in values {
            text = text.replace(&format!("{{{name}}}"), value);
        }
        text
    }

    pub fn state(self, state: JobState) -> &'static str {
        self.t(&format!("state.{}", state.as_str()))
    }

    pub fn status(self, status: Status) -> &'static str {
        self.t(&format!("status.{}", status.as_str()))
    }

    /// A reason's name, and what to do about it, in this language.
    pub fn reason(self, reason: &str) -> (&'static str, &'static str) {
        let known = ALL_REASONS.iter().any(|kind| kind.as_str() == reason);
        if known {
            (
                self.t(&format!("reason.{reason}")),
                self.t(&format!("fix.{reason}")),
            )
        } else {
            (self.t("reason.other"), self.t("fix.other"))
        }
    }
}

/// Every kind of rejection the check can report.
pub const ALL_REASONS: [ReasonKind; 11] = [
    ReasonKind::PlateUnsupported,
    ReasonKind::PlateInvalid,
    ReasonKind::VinInvalid,
    ReasonKind::VinWithoutEngine,
    ReasonKind::EngineWithoutVin,
    ReasonKind::NoVehicle,
    ReasonKind::CityUnknown,
    ReasonKind::NoCity,
    ReasonKind::RaggedRow,
    ReasonKind::Undecodable,
    ReasonKind::FieldTooLong,
];

/// (key, Chinese, English).
pub const TEXTS: &[(&str, &str, &str)] = &[
    // The frame of every page.
    ("app.name", "壁虎批量续保", "Bihu bulk renewal"),
    ("nav.jobs", "任务", "Jobs"),
    ("nav.signed_in_as", "当前用户：", "Signed in as "),
    ("nav.sign_out", "退出登录", "Sign out"),
    ("nav.open", "本机模式（无需登录）", "Local mode (no login)"),
    ("nav.other_lang", "English", "中文"),
    // Sign in.
    ("login.title", "登录", "Sign in"),
    ("login.name", "用户名", "User name"),
    ("login.password", "密码", "Password"),
    ("login.submit", "登录", "Sign in"),
    (
        "login.wrong",
        "用户名或密码不对，请再试一次。",
        "Wrong user name or password: try again.",
    ),
    (
        "login.throttled",
        "登录失败次数太多，请 {s} 秒后再试。",
        "Too many failed sign-ins: try again in {s} s.",
    ),
    ("login.needed", "请先登录。", "Please sign in first."),
    (
        "login.expired",
        "登录已过期，请重新登录。",
        "Your session has expired: sign in again.",
    ),
    ("login.signed_out", "已退出登录。", "You have signed out."),
    (
        "login.open",
        "本服务没有配置用户，无需登录。",
        "No users are configured: no sign-in needed.",
    ),
    // The jobs page.
    ("jobs.title", "任务", "Jobs"),
    ("upload.title", "上传名单", "Upload a list"),
    (
        "upload.hint",
        "Excel（.xlsx）或 CSV（UTF-8 或 GBK），需有车牌号列，或车架号和发动机号列。",
        "Excel (.xlsx) or CSV (UTF-8 or GBK), with a plate column, or VIN and engine number columns.",
    ),
    ("upload.file", "名单文件", "List file"),
    (
        "upload.drop",
        "把文件拖到这里，或点击选择文件",
        "Drop the file here, or click to choose it",
    ),
    ("upload.city", "默认投保城市", "Default city"),
    (
        "upload.city_none",
        "不指定（用名单中的城市列或车牌推断）",
        "None (use the list's city column or the plate)",
    ),
    (
        "upload.city_hint",
        "用于名单中没有城市、车牌也推断不出城市的行。",
        "For rows without a city whose plate tells none either.",
    ),
    ("upload.reuse", "复用已有的查询结果", "Reuse recent answers"),
    (
        "upload.reuse_off",
        "不复用：每辆车都重新查询",
        "Off: ask Bihu for every vehicle",
    ),
    (
        "upload.reuse_within",
        "{d}内查过的车辆用上次的结果",
        "Vehicles answered in the last {d} take that answer",
    ),
    ("upload.reuse_default", "（默认）", " (default)"),
    (
        "upload.reuse_hint",
        "本代理在这段时间内已经查过的车辆不再发请求，不占额度，直接用上次的结果（结果文件中注明）。壁虎不保证结果多久有效，时间越短越稳妥。",
        "A vehicle this agent had an answer for in that time is not asked again and spends no quota: it takes that answer (the results say so). Bihu does not say how long an answer holds, so shorter is safer.",
    ),
    ("upload.submit", "上传并检查", "Upload and check"),
    ("list.title", "全部任务（最新在前）", "All jobs (newest first)"),
    ("list.empty", "还没有任务。", "No jobs yet."),
    ("list.file", "文件", "File"),
    ("list.who", "上传人", "Who"),
    ("list.when", "上传时间（北京时间）", "When (Beijing time)"),
    ("list.state", "状态", "State"),
    ("list.progress", "进度", "Progress"),
    ("count.renewed", "已续保", "Renewed"),
    ("count.not_renewable", "不可续保", "Not renewable"),
    ("count.failed", "失败", "Failed"),
    ("count.invalid", "无效", "Invalid"),
    // Job states.
    ("state.validated", "已检查，待开始", "Checked, not started"),
    ("state.queued", "排队中", "Queued"),
    ("state.running", "进行中", "Running"),
    ("state.done", "已完成", "Done"),
    ("state.cancelled", "已取消", "Cancelled"),
    ("state.aborted", "已中止", "Aborted"),
    // Row statuses.
    ("status.renewed", "已续保（取得报价）", "Renewed (quote obtained)"),
    (
        "status.not_renewable",
        "不可续保（壁虎无续保数据）",
        "Not renewable (no renewal data)",
    ),
    (
        "status.invalid_params",
        "参数被拒（412）",
        "Parameters refused (412)",
    ),
    (
        "status.invalid_input",
        "名单有误，未发送",
        "Invalid in the list, not sent",
    ),
    (
        "status.unauthorized",
        "Token 无效或过期（403）",
        "Token refused (403)",
    ),
    (
        "status.verification_failed",
        "签名被拒（406）",
        "Signature refused (406)",
    ),
    ("status.server_error", "服务器错误", "Server error"),
    ("status.transport_error", "网络错误", "Network error"),
    ("status.protocol_error", "回复无法识别", "Unexpected answer"),
    ("status.ready", "可发送", "Ready"),
    // The job page: the check.
    ("job.title", "任务 {id}", "Job {id}"),
    ("job.back", "← 返回任务列表", "← Back to the jobs"),
    ("job.file", "文件", "File"),
    ("job.who", "上传人", "Uploaded by"),
    ("job.when", "上传时间", "Uploaded"),
    ("job.city", "默认城市", "Default city"),
    ("job.state", "状态", "State"),
    ("check.title", "检查结果", "The check"),
    ("check.rows", "总行数", "Rows"),
    ("check.ready", "可发送", "Ready"),
    ("check.invalid", "无效", "Invalid"),
    ("check.duplicates", "重复", "Duplicates"),
    (
        "check.duplicates_note",
        "重复的车辆只请求一次，结果复制到重复的行。",
        "A vehicle listed more than once is requested once; its later rows copy the answer.",
    ),
    (
        "check.reused",
        "复用 {d}内的查询结果：{n} 行用已有结果，少发 {m} 个请求。",
        "Reusing answers of the last {d}: {n} rows take an answer from the history, {m} requests fewer.",
    ),
    (
        "check.reuse_off",
        "本任务不复用已有的查询结果：每辆车都发请求。",
        "This job reuses no answers: every vehicle is asked.",
    ),
    ("time.days", "{n} 天", "{n} days"),
    ("time.one_day", "1 天", "1 day"),
    ("time.hours", "{n} 小时", "{n} hours"),
    ("time.one_hour", "1 小时", "1 hour"),
    ("check.reasons", "无效的原因", "Why rows are invalid"),
    ("check.reason", "原因", "Reason"),
    ("check.rows_n", "行数", "Rows"),
    ("check.what_to_do", "怎么改", "What to do"),
    ("check.examples", "前几行", "First rows"),
    ("check.row", "行号", "Row"),
    (
        "check.written",
        "名单中的车牌（或车架号）",
        "Plate (or VIN) as written",
    ),
    ("check.message", "说明", "The fix"),
    (
        "check.invalid_note",
        "无效的行不会发送，但会留在结果文件中并写明原因。可以改好名单后重新上传。",
        "Invalid rows are not sent, but stay in the results with their reason. Fix the list and upload it again if you like.",
    ),
    (
        "check.all_ready",
        "所有行都可以发送。",
        "Every row is ready to send.",
    ),
    (
        "check.start",
        "开始：{n} 个请求，按代理的速率{m}",
        "Start: {n} requests, {m} at the agent's rate",
    ),
    (
        "check.start_one",
        "开始：1 个请求，按代理的速率{m}",
        "Start: 1 request, {m} at the agent's rate",
    ),
    ("check.nothing", "没有可发送的行。", "No row can be sent."),
    ("time.minutes", "{n} 分钟", "{n} minutes"),
    ("time.under_minute", "不到 1 分钟", "less than a minute"),
    // A run's expected length, which is an estimate ("less than a minute" says so itself).
    ("time.about_minutes", "约 {n} 分钟", "about {n} minutes"),
    ("time.about_one_minute", "约 1 分钟", "about 1 minute"),
    ("time.seconds", "{n} 秒", "{n} s"),
    // The job page: progress.
    ("progress.title", "进度", "Progress"),
    ("progress.rows", "{done} / {total} 行", "{done} of {total} rows"),
    ("progress.rate", "速度", "Rate"),
    ("progress.rate_value", "{r} 行/秒", "{r} rows/s"),
    ("progress.eta", "预计剩余", "Time left"),
    ("progress.unknown", "—", "—"),
    ("progress.cancel", "取消任务", "Cancel the job"),
    (
        "progress.cancel_note",
        "取消后已发出的请求会完成，以后可以继续。",
        "Requests in flight finish; the job can be continued later.",
    ),
    (
        "progress.queued",
        "任务排队中，马上开始。",
        "The job is queued and starts shortly.",
    ),
    ("progress.counts", "各状态行数", "Rows by status"),
    ("progress.status", "状态", "Status"),
    // The job page: finished.
    ("result.title", "结果", "Results"),
    ("result.download", "下载结果", "Download the results"),
    ("result.xlsx", "Excel 文件（.xlsx）", "Excel (.xlsx)"),
    ("result.csv", "CSV 文件", "CSV"),
    (
        "result.token_note",
        "结果中的报价链接含代理的 Token，请勿外传。",
        "The quote links in the results carry the agent's Token: do not pass them on.",
    ),
    ("result.report", "报告", "Report"),
    (
        "result.report_open",
        "在新窗口打开报告",
        "Open the report in a new window",
    ),
    ("result.retry", "重试失败的 {k} 行", "Retry the {k} failed rows"),
    (
        "result.retry_note",
        "只重新发送失败或未完成的行，已有结果的行保持不变。",
        "Only failed or unfinished rows are sent again; rows with a final result stay as they are.",
    ),
    ("result.continue", "继续任务", "Continue the job"),
    (
        "result.cancelled",
        "任务已取消：已完成 {done} / {total} 行。",
        "The job was cancelled: {done} of {total} rows done.",
    ),
    ("result.finished", "完成时间", "Finished"),
    (
        "result.done_note",
        "任务已完成：{total} 行都已有结果。",
        "The job is done: all {total} rows have a result.",
    ),
    (
        "result.cli_message",
        "程序的原话（给管理员）",
        "The program's words (for the administrator)",
    ),
    // Aborted jobs, as the CLI's exit 3 says it.
    (
        "aborted.title",
        "任务已中止：壁虎拒绝了代理的凭证",
        "The job stopped: Bihu refused the agent's credentials",
    ),
    (
        "aborted.403",
        "Token 已过期或无效，或此代理账号无权续保。请联系本服务的管理员：用 bihu-renew login 取得新的 Token（或在配置中填写 user_name 让程序自动登录），然后点“重试”。",
        "The Token has expired or is not valid, or this agent may not renew. Ask the administrator of this service to get a fresh Token (bihu-renew login, or set user_name in the config so the tool logs in by itself), then press Retry.",
    ),
    (
        "aborted.406",
        "签名或时间被拒。请联系本服务的管理员：检查配置中的密钥（secret_key）和服务器的时钟，然后点“重试”。",
        "The signature or the time was refused. Ask the administrator of this service to check the secret key in the config and the server's clock, then press Retry.",
    ),
    (
        "aborted.title_other",
        "任务意外中止",
        "The job stopped unexpectedly",
    ),
    (
        "aborted.other",
        "这不是代理凭证的问题。请把下面“程序的原话”发给本服务的管理员，处理后点“重试”。",
        "This is not about the agent's credentials. Pass the program's words below to the administrator of this service, then press Retry.",
    ),
    (
        "aborted.rows_kept",
        "已完成的 {done} 行结果已保存，重试时不会重复发送。",
        "The {done} rows already done are kept and are not sent again on retry.",
    ),
    // Errors.
    ("error.title", "出错了", "Something went wrong"),
    ("error.upload", "文件无法使用", "The file cannot be used"),
    (
        "error.too_large",
        "文件太大：请把名单拆成几个较小的文件分别上传。",
        "The file is too large: split the list into smaller files and upload each.",
    ),
    (
        "error.no_vehicle",
        "名单中没有车辆列：表头需要有“车牌号”列，或“车架号”和“发动机号”列。请改好表头后重新上传。",
        "The list has no vehicle column: its header needs a plate column (车牌号), or VIN (车架号) and engine number (发动机号) columns. Fix the header and upload it again.",
    ),
    (
        "error.empty",
        "文件是空的：名单第一行需要是表头。",
        "The file is empty: a list needs a header row first.",
    ),
    (
        "error.unreadable",
        "文件无法读取：它不是 Excel 表格，或不是能识别的文字编码。请用 Excel 打开名单，“另存为”选择“CSV UTF-8（逗号分隔）”或“Excel 工作簿（.xlsx）”，再上传另存的文件。",
        "The file cannot be read: it is not an Excel workbook, or not text in an encoding the tool knows. Open the list in Excel, Save As \"CSV UTF-8 (Comma delimited)\" or \"Excel Workbook (.xlsx)\", and upload the saved file.",
    ),
    (
        "error.no_file",
        "请先选择一个名单文件。",
        "Choose a list file first.",
    ),
    (
        "error.csrf",
        "页面已过期，请刷新页面后再试。",
        "The page is out of date: reload it and try again.",
    ),
    (
        "error.not_found",
        "没有这个任务（可能已被删除）。",
        "There is no such job (it may have been deleted).",
    ),
    (
        "error.no_page",
        "没有这个页面：请从任务列表进入。",
        "There is no such page: start from the jobs.",
    ),
    ("error.conflict", "现在不能这样做：", "That cannot be done now: "),
    (
        "error.unavailable",
        "服务暂时不可用，请稍后再试；如果一直这样，请联系管理员。",
        "The service is unavailable for now: try again later, and tell the administrator if it stays so.",
    ),
    ("error.other", "请求被拒绝：", "The request was refused: "),
    ("error.details", "程序的原话", "The program's words"),
    // Rejection reasons: what it is, and what to do.
    (
        "reason.plate_unsupported",
        "新能源或特殊车牌",
        "New-energy or special plate",
    ),
    (
        "fix.plate_unsupported",
        "续保接口只接受普通 7 位车牌：请补上车架号和发动机号。",
        "The renewal API takes only ordinary 7-character plates: add the VIN and engine number.",
    ),
    ("reason.plate_invalid", "车牌号格式不对", "Plate not valid"),
    (
        "fix.plate_invalid",
        "核对车牌：首字是省份简称，共 7 位，不用字母 I 和 O。",
        "Check the plate: a province character first, 7 characters, no letters I or O.",
    ),
    ("reason.vin_invalid", "车架号不对", "VIN not valid"),
    (
        "fix.vin_invalid",
        "车架号是 17 位字母或数字（不含 I、O、Q）：请核对。",
        "A VIN has 17 letters or digits (no I, O or Q): check it.",
    ),
    (
        "reason.vin_without_engine",
        "有车架号但没有发动机号",
        "VIN without engine number",
    ),
    (
        "fix.vin_without_engine",
        "请补上发动机号。",
        "Add the engine number.",
    ),
    (
        "reason.engine_without_vin",
        "有发动机号但没有车架号",
        "Engine number without VIN",
    ),
    ("fix.engine_without_vin", "请补上车架号。", "Add the VIN."),
    ("reason.no_vehicle", "没有车辆信息", "No vehicle"),
    (
        "fix.no_vehicle",
        "请填写车牌号，或车架号和发动机号。",
        "Fill in the plate, or the VIN and engine number.",
    ),
    ("reason.city_unknown", "投保城市不认识", "Unknown city"),
    (
        "fix.city_unknown",
        "城市请写城市编号（1–23）或城市名，例如 北京、广州。",
        "Write the city as its number (1–23) or its name, such as 北京 or 广州.",
    ),
    ("reason.no_city", "没有投保城市", "No city"),
    (
        "fix.no_city",
        "请在名单的“投保城市”列填写，或上传时选择默认城市。",
        "Fill in the list's city column, or choose a default city when uploading.",
    ),
    ("reason.ragged_row", "列数不对", "Wrong number of fields"),
    (
        "fix.ragged_row",
        "这一行的列数与表头不同：检查是否多了或少了逗号。",
        "The row has more or fewer fields than the header: look for a missing or extra comma.",
    ),
    ("reason.undecodable", "有无法识别的字符", "Unreadable characters"),
    (
        "fix.undecodable",
        "文件编码有问题：在 Excel 中另存为 .xlsx 或“CSV UTF-8”后重新上传。",
        "The file's encoding is off: save it from Excel as .xlsx or \"CSV UTF-8\" and upload it again.",
    ),
    ("reason.field_too_long", "单元格太长", "A field too long"),
    (
        "fix.field_too_long",
        "有单元格的内容太长：检查是否把很多内容粘贴进了一个单元格。",
        "A field is too long: look for a cell holding much more than it should.",
    ),
    ("reason.other", "其他原因", "Other"),
    ("fix.other", "见说明。", "See the fix."),
    // Printing.
    ("print.report", "报告：", "Report: "),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_unique_and_has_both_languages() {
        let mut seen = std::collections::HashSet::new();
        for (key, zh, en) in TEXTS {
            assert!(seen.insert(key), "{key} twice");
            assert!(!zh.is_empty() && !en.is_empty(), "{key}");
        }
    }

    #[test]
    fn states_statuses_and_reasons_all_have_texts() {
        let states = [
            JobState::Validated,
            JobState::Queued,
            JobState::Running,
            JobState::Done,
            JobState::Cancelled,
            JobState::Aborted,
        ];
        for lang in [Lang::Zh, Lang::En] {
            for state in states {
                assert_ne!(lang.state(state), "?", "{state:?}");
            }
            for status in Status::ALL.into_iter().chain([Status::Ready]) {
                assert_ne!(lang.status(status), "?", "{status:?}");
            }
            for kind in ALL_REASONS {
                let (name, fix) = lang.reason(kind.as_str());
                assert!(name != "?" && fix != "?", "{kind:?}");
                assert_ne!(name, lang.t("reason.other"), "{kind:?}");
            }
        }
        assert_eq!(Lang::Zh.state(JobState::Done), "已完成");
        assert_eq!(Lang::En.reason("plate_invalid").0, "Plate not valid");
    }

    #[test]
    fn every_key_the_templates_ask_for_is_in_the_table() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/pages");
        let mut n_keys = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            for piece in text.split("c.t(\"").skip(1) {
                let key = piece.split('"').next().unwrap();
                assert!(
                    TEXTS.iter().any(|(k, _, _)| *k == key),
                    "{} asks for {key:?}, which the table lacks",
                    path.display()
                );
                n_keys += 1;
            }
        }
        assert!(n_keys > 30, "the templates ask for {n_keys} texts");
    }

    #[test]
    fn fills_placeholders() {
        assert_eq!(
            Lang::En.fill(
                "check.start",
                &[("n", "33".into()), ("m", "about 1 minute".into())]
            ),
            "Start: 33 requests, about 1 minute at the agent's rate"
        );
        assert_eq!(
            Lang::Zh.fill("result.retry", &[("k", "3".into())]),
            "重试失败的 3 行"
        );
    }
}
