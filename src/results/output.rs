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

use crate::results::formula::FormulaGuard;
use crate::results::outcome::RowOutcome;

/// The result columns, in order, after the input's own.
pub const RESULT_COLUMNS: [&str; 8] = [
    "row",
    "status",
    "http_status",
    "message",
    "renewal_token",
    "quote_url",
    "attempts",
    "warnings",
];

/// The result columns for people (`--zh-headers`); readers accept either set.
pub const RESULT_COLUMNS_ZH: [&str; 8] = [
    "行号",
    "状态",
    "HTTP状态",
    "消息",
    "续保令牌",
    "报价链接",
    "尝试次数",
    "警告",
];

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

impl OutputStyle {
    pub fn result_columns(&self) -> [&'static str; 8] {
        if self.zh_headers {
            RESULT_COLUMNS_ZH
        } else {
            RESULT_COLUMNS
        }
    }
}

/// Separates several warnings (or reasons) inside one cell.
pub const LIST_SEPARATOR: &str = " | ";

/// Where results go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputTarget {
    Stdout,
    File(PathBuf),
}

impl OutputTarget {
    /// `<input stem>.<kind>.csv` beside the input.
    pub fn beside(input: &Path, kind: &str) -> OutputTarget {
        let stem = input
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        OutputTarget::File(input.with_file_name(format!("{stem}.{kind}.csv")))
    }

    /// A writer for this target: stdout, or the `.partial` file that [`OutputTarget::complete`]
    /// turns into the target.
    pub fn open(&self, style: OutputStyle) -> io::Result<ResultWriter> {
        match self {
            OutputTarget::Stdout => Ok(ResultWriter::stdout(style)),
            OutputTarget::File(path) => ResultWriter::create(&partial_path(path), style),
        }
    }

    /// Gives a finished `.partial` file its final name (nothing to do for stdout).
    pub fn complete(&self) -> io::Result<()> {
        match self {
            OutputTarget::Stdout => Ok(()),
            OutputTarget::File(path) => std::fs::rename(partial_path(path), path),
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

/// Writes result rows as CSV.
pub struct ResultWriter {
    csv: csv::Writer<Box<dyn Write + Send>>,
    result_columns: [&'static str; 8],
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
            result_columns: style.result_columns(),
            guard: style.formula_guard,
            file: None,
        }
    }

    /// The header: the input's columns, then the result columns.
    pub fn write_header(&mut self, input_headers: &StringRecord) -> io::Result<()> {
        let guard = self.guard;
        self.csv
            .write_record(
                input_headers
                    .iter()
                    .map(|name| guard.cell(name))
                    .chain(self.result_columns.map(|name| Cow::Borrowed(name.as_bytes()))),
            )
            .map_err(io::Error::from)
    }

    /// One row: the input's fields as read, then the outcome.
    pub fn write_row(&mut self, fields: &StringRecord, row: u64, outcome: &RowOutcome) -> io::Result<()> {
        let (mut row_number, mut http_status, mut attempts) =
            (itoa::Buffer::new(), itoa::Buffer::new(), itoa::Buffer::new());
        let warnings = outcome.warnings.join(LIST_SEPARATOR);
        let result = [
            row_number.format(row),
            outcome.status.as_str(),
            outcome
                .http_status
                .map_or("", |status| http_status.format(status)),
            &outcome.message,
            &outcome.renewal_token,
            &outcome.quote_url,
            attempts.format(outcome.attempts),
            &warnings,
        ];
        // Straight to the CSV writer, without gathering the row into a record first. The
        // tool's own columns are guarded too: `message` and `warnings` quote the server and
        // the input.
        let guard = self.guard;
        self.csv
            .write_record(fields.iter().chain(result).map(|cell| guard.cell(cell)))
            .map_err(io::Error::from)
    }

    /// A row copied as is (a kept row of an earlier run).
    pub fn write_raw(&mut self, record: &StringRecord) -> io::Result<()> {
        let guard = self.guard;
        self.csv
            .write_record(record.iter().map(|cell| guard.cell(cell)))
            .map_err(io::Error::from)
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

/// Reads the result columns of a row written by [`ResultWriter`]: the row number and the
/// outcome. `None` if they are not a results row (a status this tool never writes, say).
pub fn parse_result(record: &StringRecord) -> Option<(u64, RowOutcome)> {
    let n = record.len();
    if n < RESULT_COLUMNS.len() {
        return None;
    }
    let result = |i: usize| &record[n - RESULT_COLUMNS.len() + i];
    let row = result(0).parse().ok()?;
    let status = crate::results::outcome::Status::parse(result(1))?;
    let http_status = match result(2) {
        "" => None,
        text => Some(text.parse().ok()?),
    };
    let warnings = match result(7) {
        "" => Vec::new(),
        text => text.split(LIST_SEPARATOR).map(str::to_string).collect(),
    };
    let outcome = RowOutcome {
        status,
        http_status,
        message: result(3).to_string(),
        renewal_token: result(4).to_string(),
        quote_url: result(5).to_string(),
        attempts: result(6).parse().ok()?,
        warnings,
    };
    Some((row, outcome))
}

/// Which names a results file gives its result columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResultHeaders {
    English,
    /// `run --zh-headers`: [`RESULT_COLUMNS_ZH`].
    Chinese,
}

/// Whether `header` is that of a results file (the input's columns, then the 8 result
/// columns in English or Chinese); if not, what is missing, in words.
pub fn result_headers(header: &StringRecord) -> Result<ResultHeaders, String> {
    let names: Vec<&str> = header
        .iter()
        .map(|name| name.trim_start_matches('\u{feff}').trim())
        .collect();
    let tail = names
        .len()
        .checked_sub(RESULT_COLUMNS.len())
        .map(|start| &names[start..]);
    if tail == Some(&RESULT_COLUMNS[..]) {
        return Ok(ResultHeaders::English);
    }
    if tail == Some(&RESULT_COLUMNS_ZH[..]) {
        return Ok(ResultHeaders::Chinese);
    }
    let n_present = |set: &[&str]| set.iter().filter(|name| names.contains(name)).count();
    let set = if n_present(&RESULT_COLUMNS_ZH) > n_present(&RESULT_COLUMNS) {
        &RESULT_COLUMNS_ZH
    } else {
        &RESULT_COLUMNS
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
    Err(if missing.is_empty() {
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
    })
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
            result_headers(reader.headers().unwrap()),
            Ok(ResultHeaders::English)
        );
        let record = reader.records().next().unwrap().unwrap();
        assert_eq!(&record[0], "张三");
        assert_eq!(parse_result(&record), Some((7, outcome)));
    }

    #[test]
    fn default_output_sits_beside_the_input() {
        assert_eq!(
            OutputTarget::beside(Path::new("/data/leads.csv"), "results"),
            OutputTarget::File(PathBuf::from("/data/leads.results.csv"))
        );
        assert_eq!(
            partial_path(Path::new("/d/x.csv")),
            PathBuf::from("/d/x.csv.partial")
        );
    }
}
