//! Writing results: the input's own columns, then the result columns, one row per input row.
//!
//! Owns the output contract (column names and their text) and where the bytes go: stdout,
//! or a `.partial` file beside OUTPUT that becomes OUTPUT only when the run is complete, so
//! a crash never leaves a half-written file under the final name.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use csv::StringRecord;
use serde::Serialize;

use crate::leads::input::csv_io_error;
use crate::results::formula::FormulaGuard;
use crate::results::outcome::{RowOutcome, Status};
use crate::results::table::Format;

/// One result column, after the input's own. To add a column: a variant here, its row in
/// [`COLUMNS`] (names and cell kind), its text in [`cell_texts`] and its reading in
/// [`Layout::parse`]; the CSV writer, the `.xlsx` writer and every reader follow from those.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Row,
    Status,
    /// `--zh-headers` only: the status in Chinese words, beside the machine value.
    StatusText,
    HttpStatus,
    Message,
    RenewalToken,
    QuoteUrl,
    Attempts,
    Warnings,
    /// When the answer was given (ISO 8601 with its offset), fresh or reused; empty when none
    /// came. Files written before it existed lack it, and are read all the same.
    AnsweredAt,
}

/// What a column's cells are, for a spreadsheet (a CSV holds text alone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellKind {
    Text,
    /// A whole number (empty when there is none).
    Integer,
    /// A link (empty when there is none).
    Url,
}

/// A result column's names and kind.
#[derive(Debug, Clone, Copy)]
pub struct ColumnSpec {
    pub column: Column,
    pub name: &'static str,
    /// Its name with `--zh-headers`.
    pub zh: &'static str,
    pub kind: CellKind,
    /// Written only with `--zh-headers`, and optional on read.
    pub zh_only: bool,
    /// Newer than the first results files: optional on read.
    pub added_later: bool,
}

/// Every result column, in the order written, [`Column`]'s order.
pub const COLUMNS: [ColumnSpec; 10] = {
    use CellKind::*;
    use Column::*;
    const fn spec(column: Column, name: &'static str, zh: &'static str, kind: CellKind) -> ColumnSpec {
        ColumnSpec {
            column,
            name,
            zh,
            kind,
            zh_only: false,
            added_later: false,
        }
    }
    [
        spec(Row, "row", "行号", Integer),
        spec(Status, "status", "状态", Text),
        ColumnSpec {
            zh_only: true,
            ..spec(StatusText, "status_text", "状态说明", Text)
        },
        spec(HttpStatus, "http_status", "HTTP状态", Integer),
        spec(Message, "message", "消息", Text),
        spec(RenewalToken, "renewal_token", "续保令牌", Text),
        spec(QuoteUrl, "quote_url", "报价链接", Url),
        spec(Attempts, "attempts", "尝试次数", Integer),
        spec(Warnings, "warnings", "警告", Text),
        ColumnSpec {
            added_later: true,
            ..spec(AnsweredAt, "answered_at", "应答时间", Text)
        },
    ]
};

impl Column {
    pub fn spec(self) -> &'static ColumnSpec {
        &COLUMNS[self as usize]
    }
}

const fn n_columns(zh: bool) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < COLUMNS.len() {
        if zh || !COLUMNS[i].zh_only {
            n += 1;
        }
        i += 1;
    }
    n
}

const fn column_names<const N: usize>(zh: bool) -> [&'static str; N] {
    let mut names = [""; N];
    let (mut i, mut n) = (0, 0);
    while i < COLUMNS.len() {
        if zh || !COLUMNS[i].zh_only {
            names[n] = if zh { COLUMNS[i].zh } else { COLUMNS[i].name };
            n += 1;
        }
        i += 1;
    }
    names
}

/// The result columns, in order, after the input's own.
pub const RESULT_COLUMNS: [&str; n_columns(false)] = column_names(false);

/// The result columns for people (`--zh-headers`), with the status described in Chinese
/// beside its machine value; readers accept either set (and this one without `状态说明`).
pub const RESULT_COLUMNS_ZH: [&str; n_columns(true)] = column_names(true);

/// Number buffers and the time's text for [`cell_texts`], reused from row to row.
#[derive(Default)]
pub struct CellBuffers {
    numbers: [itoa::Buffer; 3],
    answered_at: String,
}

/// The text of every result column of one row, by [`Column`]; numbers are formatted into
/// `buffers`, so that writing a row allocates nothing beyond the warnings.
fn cell_texts<'a>(
    row: u64,
    outcome: &'a RowOutcome,
    warnings: &'a str,
    buffers: &'a mut CellBuffers,
) -> [&'a str; COLUMNS.len()] {
    let [row_number, http_status, attempts] = &mut buffers.numbers;
    buffers.answered_at.clear();
    if let Some(at) = outcome.answered_at {
        crate::results::history::write_time(&mut buffers.answered_at, at);
    }
    [
        row_number.format(row),
        outcome.status.as_str(),
        outcome.status.zh_description(),
        outcome
            .http_status
            .map_or("", |status| http_status.format(status)),
        &outcome.message,
        &outcome.renewal_token,
        &outcome.quote_url,
        attempts.format(outcome.attempts),
        warnings,
        &buffers.answered_at,
    ]
}

/// Where a results file's columns are: the input's first, then its result columns, which
/// its header names (English, Chinese, or Chinese without `状态说明` from before it existed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub headers: ResultHeaders,
    pub n_input: usize,
    columns: Vec<Column>,
}

impl Layout {
    /// The layout a run writes in this style after `n_input` input columns.
    pub fn written(style: OutputStyle, n_input: usize) -> Layout {
        let columns = COLUMNS
            .iter()
            .filter(|spec| style.zh_headers || !spec.zh_only)
            .map(|spec| spec.column)
            .collect();
        Layout {
            headers: if style.zh_headers {
                ResultHeaders::Chinese
            } else {
                ResultHeaders::English
            },
            n_input,
            columns,
        }
    }

    /// The layout a header says; if it is not a results header, what is wrong, in words.
    pub fn of_header(header: &StringRecord) -> Result<Layout, String> {
        let names: Vec<&str> = header
            .iter()
            .map(|name| name.trim_start_matches('\u{feff}').trim())
            .collect();
        let matches = |set: &[&ColumnSpec], zh: bool| {
            let start = names.len().checked_sub(set.len())?;
            let tail = &names[start..];
            tail.iter()
                .zip(set)
                .all(|(name, spec)| *name == if zh { spec.zh } else { spec.name })
                .then(|| Layout {
                    headers: if zh {
                        ResultHeaders::Chinese
                    } else {
                        ResultHeaders::English
                    },
                    n_input: start,
                    columns: set.iter().map(|spec| spec.column).collect(),
                })
        };
        // Every set a file may have: with or without the zh-only column, and without the
        // columns added later (a file from an older build).
        let set = |zh_only: bool, later: bool| -> Vec<&ColumnSpec> {
            COLUMNS
                .iter()
                .filter(|spec| (zh_only || !spec.zh_only) && (later || !spec.added_later))
                .collect()
        };
        let candidates = [
            (set(false, true), false),
            (set(true, true), true),
            (set(false, true), true),
            (set(false, false), false),
            (set(true, false), true),
            (set(false, false), true),
        ];
        if let Some(layout) = candidates.iter().find_map(|(set, zh)| matches(set, *zh)) {
            return Ok(layout);
        }
        Err(header_problem(&names))
    }

    /// Columns in all.
    pub fn width(&self) -> usize {
        self.n_input + self.columns.len()
    }

    /// The result columns' names, in order.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        let zh = self.headers == ResultHeaders::Chinese;
        self.columns
            .iter()
            .map(move |column| if zh { column.spec().zh } else { column.spec().name })
    }

    /// What the `i`-th cell of a row holds (the input's cells are text, as read).
    pub fn kind(&self, i: usize) -> CellKind {
        i.checked_sub(self.n_input)
            .and_then(|j| self.columns.get(j))
            .map_or(CellKind::Text, |column| column.spec().kind)
    }

    /// The row's result columns in order, their text from `texts` (by [`Column`]).
    fn results<'a>(&'a self, texts: &'a [&'a str; COLUMNS.len()]) -> impl Iterator<Item = &'a str> + 'a {
        self.columns.iter().map(|column| texts[*column as usize])
    }

    /// Reads a row's result columns: its row number and outcome. `None` if the row has not
    /// this layout's width or is not a results row (a status this tool never writes, say).
    pub fn parse(&self, record: &StringRecord) -> Option<(u64, RowOutcome)> {
        if record.len() != self.width() {
            return None;
        }
        let cell = |wanted: Column| {
            let at = self.columns.iter().position(|column| *column == wanted)?;
            record.get(self.n_input + at)
        };
        let row = cell(Column::Row)?.parse().ok()?;
        let status = Status::parse(cell(Column::Status)?)?;
        let http_status = match cell(Column::HttpStatus)? {
            "" => None,
            text => Some(text.parse().ok()?),
        };
        let warnings = match cell(Column::Warnings)? {
            "" => Vec::new(),
            text => text.split(LIST_SEPARATOR).map(str::to_string).collect(),
        };
        let outcome = RowOutcome {
            status,
            http_status,
            message: cell(Column::Message)?.to_string(),
            renewal_token: cell(Column::RenewalToken)?.to_string(),
            quote_url: cell(Column::QuoteUrl)?.to_string(),
            attempts: cell(Column::Attempts)?.parse().ok()?,
            warnings,
            // Absent from older files; a time this tool cannot read counts as none.
            answered_at: cell(Column::AnsweredAt).and_then(crate::results::history::parse_time),
        };
        Some((row, outcome))
    }

    /// A row of this layout written again in `to`'s (rows of an earlier run that wrote
    /// another style); a row that does not parse stays as it is.
    pub fn relayout(&self, record: &StringRecord, to: &Layout) -> StringRecord {
        if self == to {
            return record.clone();
        }
        let Some((row, outcome)) = self.parse(record) else {
            return record.clone();
        };
        let warnings = outcome.warnings.join(LIST_SEPARATOR);
        let mut buffers = Default::default();
        let texts = cell_texts(row, &outcome, &warnings, &mut buffers);
        record
            .iter()
            .take(self.n_input)
            .chain(to.results(&texts))
            .collect()
    }
}

fn header_problem(names: &[&str]) -> String {
    let required: Vec<&ColumnSpec> = COLUMNS
        .iter()
        .filter(|spec| !spec.zh_only && !spec.added_later)
        .collect();
    let english: Vec<&str> = required.iter().map(|spec| spec.name).collect();
    let chinese: Vec<&str> = required.iter().map(|spec| spec.zh).collect();
    let n_present = |set: &[&str]| set.iter().filter(|name| names.contains(name)).count();
    let set = if n_present(&chinese) > n_present(&english) {
        &chinese
    } else {
        &english
    };
    let missing: Vec<&str> = set.iter().copied().filter(|name| !names.contains(name)).collect();
    let found = if names.iter().all(|name| name.is_empty()) {
        "(empty)".to_string()
    } else {
        names.join(",")
    };
    let expected = format!(
        "a results file has the lead list's columns followed by {} (or, with --zh-headers, {})",
        RESULT_COLUMNS.join(","),
        RESULT_COLUMNS_ZH.join(",")
    );
    if missing.is_empty() {
        format!(
            "its result columns are there but not as the last {} columns in this order: {}; {expected}. Its header is: {found}",
            set.len(),
            set.join(",")
        )
    } else {
        format!(
            "its header lacks the result column{} {}; {expected}. Its header is: {found}",
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", ")
        )
    }
}

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// How the results file looks to whoever opens it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputStyle {
    /// Start files with a UTF-8 BOM, so that Excel shows Chinese text right (never on stdout).
    pub bom: bool,
    /// Chinese names for the result columns.
    pub zh_headers: bool,
    /// A `'` before cells that a spreadsheet would run as formulas (off with `--raw-cells`).
    pub formula_guard: FormulaGuard,
}

impl Default for OutputStyle {
    fn default() -> Self {
        OutputStyle {
            bom: true,
            zh_headers: false,
            formula_guard: FormulaGuard::default(),
        }
    }
}

/// Separates several warnings (or reasons) inside one cell; defined beside the reasons.
pub use crate::leads::lead::LIST_SEPARATOR;

/// Where results go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputTarget {
    Stdout,
    File(PathBuf),
}

impl OutputTarget {
    /// `<input stem>.<kind>.csv` beside a CSV input, `<input stem>.<kind>.xlsx` beside a
    /// workbook: Excel in, Excel out, and `leads.csv` and `leads.xlsx` in one folder never
    /// share a results file (nor its `.partial`, journal and lock).
    pub fn beside(input: &Path, kind: &str) -> OutputTarget {
        let stem = input
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let extension = if crate::leads::input::is_spreadsheet(input) {
            "xlsx"
        } else {
            "csv"
        };
        OutputTarget::File(input.with_file_name(format!("{stem}.{kind}.{extension}")))
    }

    /// A writer for this target: stdout, or the `.partial` file that [`OutputTarget::complete`]
    /// turns into the target.
    pub fn open(&self, style: OutputStyle) -> io::Result<ResultWriter> {
        match self {
            OutputTarget::Stdout => Ok(ResultWriter::stdout(style)),
            // A workbook's cells are never formulas: its `.partial` keeps them raw, and the
            // workbook made from it holds them as they were.
            OutputTarget::File(path) if Format::of(path) == Format::Xlsx => ResultWriter::create(
                &partial_path(path),
                OutputStyle {
                    formula_guard: FormulaGuard(false),
                    ..style
                },
            ),
            OutputTarget::File(path) => ResultWriter::create(&partial_path(path), style),
        }
    }

    /// Gives a finished `.partial` file its final name (nothing to do for stdout).
    pub fn complete(&self) -> io::Result<()> {
        match self {
            OutputTarget::Stdout => Ok(()),
            OutputTarget::File(path) => match Format::of(path) {
                Format::Csv => std::fs::rename(partial_path(path), path),
                // The workbook is made from the finished CSV, then the CSV goes.
                Format::Xlsx => {
                    let partial = partial_path(path);
                    crate::results::xlsx::from_csv(&partial, path, false)?;
                    std::fs::remove_file(partial)
                }
            },
        }
    }

    pub fn display(&self) -> String {
        match self {
            OutputTarget::Stdout => "stdout".to_string(),
            OutputTarget::File(path) => path.display().to_string(),
        }
    }
}

/// The in-progress file of a run writing to `output`.
pub fn partial_path(output: &Path) -> PathBuf {
    with_suffix(output, ".partial")
}

/// `path` with `suffix` appended to its file name (`out.csv` -> `out.csv.partial`).
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// `fsync`s the directory holding `path`: a rename or a new file in it survives a power cut
/// only then.
pub fn sync_directory(path: &Path) -> io::Result<()> {
    match path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        Some(dir) => File::open(dir)?.sync_all(),
        None => File::open(".")?.sync_all(),
    }
}

/// Writes result rows as CSV.
pub struct ResultWriter {
    csv: csv::Writer<Box<dyn Write + Send>>,
    style: OutputStyle,
    /// Known once the header is written.
    layout: Layout,
    guard: FormulaGuard,
    /// The file written, when it is one: to notice it deleted, and to `fsync` it.
    file: Option<File>,
}

impl ResultWriter {
    /// Results on stdout: never a BOM, whatever the style says.
    pub fn stdout(style: OutputStyle) -> ResultWriter {
        ResultWriter::new(Box::new(io::stdout()), style)
    }

    /// Creates (or truncates) `path` for writing, with a BOM if the style says so.
    pub fn create(path: &Path, style: OutputStyle) -> io::Result<ResultWriter> {
        let file = File::create(path)?;
        let handle = file.try_clone()?;
        let mut file = BufWriter::with_capacity(1 << 16, file);
        if style.bom {
            file.write_all(UTF8_BOM)?;
        }
        let mut writer = ResultWriter::new(Box::new(file), style);
        writer.file = Some(handle);
        Ok(writer)
    }

    /// Results into any sink (no BOM: the caller decides what comes first).
    pub fn to_sink(sink: Box<dyn Write + Send>, style: OutputStyle) -> ResultWriter {
        ResultWriter::new(sink, style)
    }

    fn new(sink: Box<dyn Write + Send>, style: OutputStyle) -> ResultWriter {
        let csv = csv::WriterBuilder::new().flexible(true).from_writer(sink);
        ResultWriter {
            csv,
            style,
            layout: Layout::written(style, 0),
            guard: style.formula_guard,
            file: None,
        }
    }

    /// The header: the input's columns, then the result columns.
    pub fn write_header(&mut self, input_headers: &StringRecord) -> io::Result<()> {
        self.layout = Layout::written(self.style, input_headers.len());
        let guard = self.guard;
        let names = self.layout.names().map(|name| Cow::Borrowed(name.as_bytes()));
        self.csv
            .write_record(input_headers.iter().map(|name| guard.cell(name)).chain(names))
            .map_err(csv_io_error)
    }

    /// One row: the input's fields as read, then the outcome.
    pub fn write_row(&mut self, fields: &StringRecord, row: u64, outcome: &RowOutcome) -> io::Result<()> {
        let warnings = outcome.warnings.join(LIST_SEPARATOR);
        let mut buffers = Default::default();
        let texts = cell_texts(row, outcome, &warnings, &mut buffers);
        // Straight to the CSV writer, without gathering the row into a record first. The
        // tool's own columns are guarded too: `message` and `warnings` quote the server and
        // the input.
        let guard = self.guard;
        self.csv
            .write_record(
                fields
                    .iter()
                    .chain(self.layout.results(&texts))
                    .map(|cell| guard.cell(cell)),
            )
            .map_err(csv_io_error)
    }

    /// Another handle on the file written, when it is one (for a background `fsync`).
    pub fn file_handle(&self) -> Option<io::Result<File>> {
        self.file.as_ref().map(File::try_clone)
    }

    /// Pushes everything written so far to the operating system.
    pub fn flush(&mut self) -> io::Result<()> {
        self.csv.flush()?;
        if let Some(file) = &self.file {
            use std::os::unix::fs::MetadataExt;
            if file.metadata()?.nlink() == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    "the file was deleted (is its directory gone?)",
                ));
            }
        }
        Ok(())
    }

    /// Flushes and `fsync`s a file (nothing more for other sinks).
    pub fn sync(&mut self) -> io::Result<()> {
        self.flush()?;
        match &self.file {
            Some(file) => file.sync_data(),
            None => Ok(()),
        }
    }
}

/// Which names a results file gives its result columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResultHeaders {
    English,
    /// `run --zh-headers`: [`RESULT_COLUMNS_ZH`].
    Chinese,
}

/// Whether `header` is that of a results file (the input's columns, then the result
/// columns in English or Chinese); if not, what is missing, in words.
pub fn result_headers(header: &StringRecord) -> Result<ResultHeaders, String> {
    Layout::of_header(header).map(|layout| layout.headers)
}

/// Whether a file starts with a UTF-8 BOM.
pub fn starts_with_bom(path: &Path) -> io::Result<bool> {
    use std::io::Read;
    let mut start = [0u8; 3];
    let n = File::open(path)?.read(&mut start)?;
    Ok(n == 3 && start == UTF8_BOM)
}

/// Writes a UTF-8 BOM.
pub fn write_bom(sink: &mut impl Write) -> io::Result<()> {
    sink.write_all(UTF8_BOM)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::outcome::Status;

    #[test]
    fn a_written_row_parses_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        let outcome = RowOutcome {
            status: Status::Renewed,
            http_status: Some(200),
            message: "续保成功, \"quoted\"".into(),
            renewal_token: "RT".into(),
            quote_url: "http://h/q?a=1&b=2".into(),
            attempts: 2,
            warnings: vec!["one; with semicolon".into(), "two".into()],
            answered_at: Some(1_796_164_795_000),
        };
        let mut writer = ResultWriter::create(&path, OutputStyle::default()).unwrap();
        writer
            .write_header(&StringRecord::from(vec!["name", "plate"]))
            .unwrap();
        writer
            .write_row(&StringRecord::from(vec!["张三", "京J97896"]), 7, &outcome)
            .unwrap();
        writer.flush().unwrap();
        drop(writer);
        assert!(
            starts_with_bom(&path).unwrap(),
            "files start with a BOM by default"
        );
        let mut reader = csv::Reader::from_path(&path).unwrap();
        assert_eq!(
            result_headers(&reader.headers().unwrap().clone()),
            Ok(ResultHeaders::English)
        );
        let record = reader.records().next().unwrap().unwrap();
        assert_eq!(&record[0], "张三");
        let layout = Layout::of_header(reader.headers().unwrap()).unwrap();
        assert_eq!(layout.parse(&record), Some((7, outcome)));
    }

    #[test]
    fn rows_move_between_english_and_chinese_columns() {
        let outcome = RowOutcome {
            status: Status::NotRenewable,
            http_status: Some(206),
            message: "续保失败".into(),
            attempts: 1,
            ..RowOutcome::default()
        };
        let write = |zh_headers| {
            let style = OutputStyle {
                bom: false,
                zh_headers,
                ..OutputStyle::default()
            };
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("out.csv");
            let mut writer = ResultWriter::create(&path, style).unwrap();
            writer.write_header(&StringRecord::from(vec!["plate"])).unwrap();
            writer
                .write_row(&StringRecord::from(vec!["沪A12345"]), 3, &outcome)
                .unwrap();
            writer.flush().unwrap();
            drop(writer);
            let mut reader = csv::Reader::from_path(&path).unwrap();
            let header = reader.headers().unwrap().clone();
            let record = reader.records().next().unwrap().unwrap();
            (header, record)
        };
        let (english_header, english) = write(false);
        let (chinese_header, chinese) = write(true);
        assert_eq!(
            chinese_header.iter().collect::<Vec<_>>(),
            [
                "plate",
                "行号",
                "状态",
                "状态说明",
                "HTTP状态",
                "消息",
                "续保令牌",
                "报价链接",
                "尝试次数",
                "警告",
                "应答时间"
            ]
        );
        assert_eq!(&chinese[2], "not_renewable", "the machine value stays");
        assert_eq!(&chinese[3], "不可续保（无续保信息）");
        let english_layout = Layout::of_header(&english_header).unwrap();
        let chinese_layout = Layout::of_header(&chinese_header).unwrap();
        assert_eq!(chinese_layout.headers, ResultHeaders::Chinese);
        assert_eq!(chinese_layout.parse(&chinese), Some((3, outcome.clone())));
        assert_eq!(english_layout.relayout(&english, &chinese_layout), chinese);
        assert_eq!(chinese_layout.relayout(&chinese, &english_layout), english);
        // A Chinese file from before `状态说明` reads too.
        let mut legacy_header = StringRecord::from(vec!["plate"]);
        legacy_header.extend(
            RESULT_COLUMNS
                .iter()
                .map(|name| COLUMNS.iter().find(|spec| spec.name == *name).unwrap().zh),
        );
        let legacy = Layout::of_header(&legacy_header).unwrap();
        assert_eq!(legacy.headers, ResultHeaders::Chinese);
        assert_eq!(legacy.parse(&english), Some((3, outcome)));
    }

    #[test]
    fn default_output_sits_beside_the_input_in_its_kind() {
        let beside = |input: &str, kind| match OutputTarget::beside(Path::new(input), kind) {
            OutputTarget::File(path) => path.display().to_string(),
            OutputTarget::Stdout => unreachable!("beside names a file"),
        };
        assert_eq!(beside("/data/leads.csv", "results"), "/data/leads.results.csv");
        assert_eq!(beside("/data/leads.xlsx", "results"), "/data/leads.results.xlsx");
        assert_eq!(beside("/data/leads.XLSX", "dry-run"), "/data/leads.dry-run.xlsx");
        assert_eq!(beside("/data/leads.xls", "results"), "/data/leads.results.xlsx");
        assert_eq!(beside("/data/leads.ods", "results"), "/data/leads.results.xlsx");
        assert_eq!(beside("/data/leads.txt", "results"), "/data/leads.results.csv");
        assert_eq!(beside("/data/leads", "results"), "/data/leads.results.csv");
        assert_eq!(
            partial_path(Path::new("/d/x.csv")),
            PathBuf::from("/d/x.csv.partial")
        );
    }
}
