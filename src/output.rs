//! Writing results: the input's own columns, then the result columns, one row per input row.
//!
//! Owns the output contract (column names and their text) and where the bytes go: stdout,
//! or a `.partial` file beside OUTPUT that becomes OUTPUT only when the run is complete, so
//! a crash never leaves a half-written file under the final name.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use csv::StringRecord;

use crate::outcome::RowOutcome;

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

/// Separates several warnings (or reasons) inside one cell.
pub const LIST_SEPARATOR: &str = " | ";

/// Where results go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputTarget {
    Stdout,
    File(PathBuf),
}

impl OutputTarget {
    /// `<input stem>.results.csv` beside the input.
    pub fn default_for(input: &Path) -> OutputTarget {
        let stem = input
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        OutputTarget::File(input.with_file_name(format!("{stem}.results.csv")))
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
    let mut name = output.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

/// Writes result rows as CSV.
pub struct ResultWriter {
    csv: csv::Writer<Box<dyn Write + Send>>,
    record: StringRecord,
}

impl ResultWriter {
    pub fn stdout() -> ResultWriter {
        ResultWriter::new(Box::new(io::stdout()))
    }

    /// Creates (or truncates) `path` for writing.
    pub fn create(path: &Path) -> io::Result<ResultWriter> {
        let file = File::create(path)?;
        Ok(ResultWriter::new(Box::new(BufWriter::with_capacity(
            1 << 16,
            file,
        ))))
    }

    /// Appends to `path`, which already holds a header and complete rows.
    pub fn append(path: &Path) -> io::Result<ResultWriter> {
        let file = OpenOptions::new().append(true).open(path)?;
        Ok(ResultWriter::new(Box::new(BufWriter::with_capacity(
            1 << 16,
            file,
        ))))
    }

    fn new(sink: Box<dyn Write + Send>) -> ResultWriter {
        let csv = csv::WriterBuilder::new().flexible(true).from_writer(sink);
        ResultWriter {
            csv,
            record: StringRecord::new(),
        }
    }

    /// The header: the input's columns, then [`RESULT_COLUMNS`].
    pub fn write_header(&mut self, input_headers: &StringRecord) -> io::Result<()> {
        let mut header = input_headers.clone();
        header.extend(RESULT_COLUMNS);
        self.csv.write_record(&header).map_err(io::Error::from)
    }

    /// One row: the input's fields as read, then the outcome.
    pub fn write_row(&mut self, fields: &StringRecord, row: u64, outcome: &RowOutcome) -> io::Result<()> {
        self.record.clone_from(fields);
        let mut number = itoa_buffer();
        self.record.push_field(number.format(row));
        self.record.push_field(outcome.status.as_str());
        match outcome.http_status {
            Some(status) => self.record.push_field(number.format(status)),
            None => self.record.push_field(""),
        }
        self.record.push_field(&outcome.message);
        self.record.push_field(&outcome.renewal_token);
        self.record.push_field(&outcome.quote_url);
        self.record.push_field(number.format(outcome.attempts));
        self.record.push_field(&outcome.warnings.join(LIST_SEPARATOR));
        self.csv.write_record(&self.record).map_err(io::Error::from)
    }

    /// A row copied as is (a kept row of an earlier run).
    pub fn write_raw(&mut self, record: &StringRecord) -> io::Result<()> {
        self.csv.write_record(record).map_err(io::Error::from)
    }

    /// Pushes everything written so far to the operating system.
    pub fn flush(&mut self) -> io::Result<()> {
        self.csv.flush()
    }
}

fn itoa_buffer() -> itoa::Buffer {
    itoa::Buffer::new()
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
    let status = crate::outcome::Status::parse(result(1))?;
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

/// Whether a header is that of a results file: it ends with [`RESULT_COLUMNS`].
pub fn is_results_header(header: &StringRecord) -> bool {
    header.len() >= RESULT_COLUMNS.len()
        && header
            .iter()
            .skip(header.len() - RESULT_COLUMNS.len())
            .eq(RESULT_COLUMNS.iter().copied())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Status;

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
        let mut writer = ResultWriter::create(&path).unwrap();
        writer
            .write_header(&StringRecord::from(vec!["name", "plate"]))
            .unwrap();
        writer
            .write_row(&StringRecord::from(vec!["张三", "京J97896"]), 7, &outcome)
            .unwrap();
        writer.flush().unwrap();
        drop(writer);
        let mut reader = csv::Reader::from_path(&path).unwrap();
        assert!(is_results_header(reader.headers().unwrap()));
        let record = reader.records().next().unwrap().unwrap();
        assert_eq!(&record[0], "张三");
        assert_eq!(parse_result(&record), Some((7, outcome)));
    }

    #[test]
    fn default_output_sits_beside_the_input() {
        assert_eq!(
            OutputTarget::default_for(Path::new("/data/leads.csv")),
            OutputTarget::File(PathBuf::from("/data/leads.results.csv"))
        );
        assert_eq!(
            partial_path(Path::new("/d/x.csv")),
            PathBuf::from("/d/x.csv.partial")
        );
    }
}
