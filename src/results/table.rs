//! Reading a results file as rows of text, whether it is a CSV or an `.xlsx` workbook, so
//! that `--resume`, the summary and `report` read both alike.
//!
//! A CSV is streamed; a workbook's first sheet is read whole by calamine (a workbook cannot
//! be streamed), its cells as text the way the lead reader reads them (`input::cell_text`):
//! numbers keep every digit, so the typed columns of [`crate::results::xlsx`] read back as
//! the CSV writer spells them.

use std::fs::File;
use std::io::{self, BufReader};
use std::path::Path;

use csv::{ByteRecord, StringRecord};

use crate::leads::input::cell_text;
use crate::leads::input::csv_io_error;

/// How a results file is stored, by its name: `.xlsx` is a workbook, anything else CSV
/// (a run's `.partial` beside an `.xlsx` OUTPUT is CSV too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Xlsx,
}

impl Format {
    pub fn of(path: &Path) -> Format {
        let xlsx = path
            .extension()
            .is_some_and(|extension| extension.eq_ignore_ascii_case("xlsx"));
        if xlsx { Format::Xlsx } else { Format::Csv }
    }
}

enum Rows {
    Csv {
        csv: csv::Reader<BufReader<File>>,
        record: ByteRecord,
    },
    Sheet {
        range: calamine::Range<calamine::Data>,
        /// The next row of `range` to read.
        next: usize,
    },
}

/// A results file's header and rows, as text.
pub struct TableReader {
    rows: Rows,
    headers: StringRecord,
    /// Where the last record read starts: its line (CSV) or its sheet row (1-based).
    line: u64,
}

impl TableReader {
    /// Opens `path` and reads its header (empty for an empty file).
    pub fn open(path: &Path) -> io::Result<TableReader> {
        let rows = match Format::of(path) {
            Format::Csv => Rows::Csv {
                csv: csv::ReaderBuilder::new()
                    .flexible(true)
                    .has_headers(false)
                    .from_reader(BufReader::with_capacity(1 << 16, File::open(path)?)),
                record: ByteRecord::new(),
            },
            Format::Xlsx => Rows::Sheet {
                range: first_sheet(path)?,
                next: 0,
            },
        };
        let mut reader = TableReader {
            rows,
            headers: StringRecord::new(),
            line: 0,
        };
        let mut headers = StringRecord::new();
        if reader.read_record(&mut headers)? {
            reader.headers = headers
                .iter()
                .map(|name| name.trim_start_matches('\u{feff}').trim())
                .collect();
        }
        Ok(reader)
    }

    pub fn headers(&self) -> &StringRecord {
        &self.headers
    }

    /// Where the last record read starts: its line in a CSV, its row in a sheet.
    pub fn line(&self) -> u64 {
        self.line
    }

    /// Reads the next row into `record`; `false` at the end. Text that is not UTF-8 is
    /// read lossily (the tool writes UTF-8 alone).
    pub fn read_record(&mut self, record: &mut StringRecord) -> io::Result<bool> {
        match &mut self.rows {
            Rows::Csv { csv, record: bytes } => {
                let more = csv.read_byte_record(bytes).map_err(csv_io_error)?;
                if more {
                    self.line = bytes.position().map_or(0, |position| position.line());
                    *record = StringRecord::from_byte_record_lossy(bytes.clone());
                }
                Ok(more)
            }
            Rows::Sheet { range, next } => {
                use calamine::DataType as _;
                let (start_row, start_column) = range.start().unwrap_or((0, 0));
                let (height, width) = range.get_size();
                while *next < height {
                    let i = *next;
                    *next += 1;
                    let cell = |j: usize| range.get((i, j)).unwrap_or(&calamine::Data::Empty);
                    if (0..width).all(|j| cell(j).is_empty()) {
                        continue;
                    }
                    record.clear();
                    // Columns left of the first used one are empty, not missing.
                    for _ in 0..start_column {
                        record.push_field("");
                    }
                    for j in 0..width {
                        record.push_field(&cell_text(cell(j)));
                    }
                    self.line = u64::from(start_row) + i as u64 + 1;
                    return Ok(true);
                }
                Ok(false)
            }
        }
    }
}

/// The first sheet of a workbook.
fn first_sheet(path: &Path) -> io::Result<calamine::Range<calamine::Data>> {
    use calamine::Reader as _;
    let unreadable = |detail: String| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("not a readable .xlsx workbook ({detail})"),
        )
    };
    let mut workbook: calamine::Xlsx<_> = calamine::open_workbook(path).map_err(|e| match e {
        calamine::XlsxError::Io(error) => error,
        other => unreadable(other.to_string()),
    })?;
    let Some(name) = workbook.sheet_names().first().cloned() else {
        return Ok(calamine::Range::empty());
    };
    workbook
        .worksheet_range(&name)
        .map_err(|e| unreadable(format!("sheet {name}: {e}")))
}
