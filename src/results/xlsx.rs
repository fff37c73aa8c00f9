//! Writing results as an `.xlsx` workbook (`-o results.xlsx`), for people who open them in
//! Excel: every cell carried through from the input is text, so an ID number or an engine
//! number with a leading zero keeps every digit; the tool's own columns are typed by the
//! column list of `output.rs` (numbers, the quote URL as a link); text that looks like a
//! formula stays text; the header row is frozen.
//!
//! A workbook cannot be appended to, so a run never writes one row by row: its durable
//! record is the CSV `.partial` and the journal, as for a CSV OUTPUT, and the workbook is
//! made from them when the run ends (or stops), into a temporary file renamed over OUTPUT.
//! Rows go out in order in constant-memory mode (a temporary file beside OUTPUT).

use std::fs::{self, File};
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};

use csv::StringRecord;
use rust_xlsxwriter::{Format, Url, Workbook, XlsxError};

use crate::results::output::{CellKind, Layout, with_suffix};
use crate::results::table::TableReader;

/// Rows a worksheet holds, the header's included.
pub const MAX_ROWS: u64 = 1_048_576;

/// Links a worksheet holds in Excel; quote URLs beyond it are written as plain text.
pub const MAX_LINKS: usize = 65_530;

/// Characters a cell holds in Excel.
const MAX_CELL_CHARS: usize = 32_767;

/// Writes one results workbook, row by row in order.
pub struct XlsxWriter {
    workbook: Workbook,
    layout: Layout,
    target: PathBuf,
    n_rows: u32,
    n_links: usize,
    header_format: Format,
}

fn xlsx_error(error: XlsxError) -> io::Error {
    match error {
        XlsxError::IoError(error) => error,
        other => io::Error::other(other.to_string()),
    }
}

impl XlsxWriter {
    /// A workbook that [`XlsxWriter::finish`] will save as `target`, with `header` (a
    /// results header: the input's columns, then the result columns) as its frozen first row.
    pub fn create(target: &Path, header: &StringRecord) -> io::Result<XlsxWriter> {
        let layout = Layout::of_header(header).map_err(|problem| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("not a results header: {problem}"),
            )
        })?;
        let mut workbook = Workbook::new();
        // The worksheet's rows wait in a temporary file beside OUTPUT, not in memory (nor
        // in a /tmp that may be memory).
        let directory = target
            .parent()
            .filter(|dir| !dir.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        workbook.set_tempdir(directory).map_err(xlsx_error)?;
        let sheet = workbook
            .add_worksheet_with_constant_memory()
            .map_err(xlsx_error)?;
        sheet.set_name("results").map_err(xlsx_error)?;
        sheet.set_freeze_panes(1, 0).map_err(xlsx_error)?;
        for i in 0..layout.width() {
            let width = match layout.kind(i) {
                CellKind::Integer => 10,
                CellKind::Url => 40,
                CellKind::Text => 16,
            };
            sheet.set_column_width(i as u16, width).map_err(xlsx_error)?;
        }
        let mut writer = XlsxWriter {
            workbook,
            layout,
            target: target.to_path_buf(),
            n_rows: 0,
            n_links: 0,
            header_format: Format::new().set_bold(),
        };
        let header_format = writer.header_format.clone();
        for (i, name) in header.iter().enumerate() {
            writer
                .sheet()
                .write_string_with_format(0, i as u16, name, &header_format)
                .map_err(xlsx_error)?;
        }
        Ok(writer)
    }

    fn sheet(&mut self) -> &mut rust_xlsxwriter::Worksheet {
        self.workbook
            .worksheet_from_index(0)
            .expect("the workbook has its sheet")
    }

    /// One row, as the CSV holds it: each cell typed by its column.
    pub fn write_record(&mut self, record: &StringRecord) -> io::Result<()> {
        if u64::from(self.n_rows) + 2 > MAX_ROWS {
            return Err(io::Error::other(format!(
                "an .xlsx sheet holds at most {} data rows; write a .csv instead",
                MAX_ROWS - 1
            )));
        }
        self.n_rows += 1;
        let row = self.n_rows;
        for (i, text) in record.iter().enumerate() {
            if text.is_empty() {
                continue;
            }
            let column = i as u16;
            let kind = self.layout.kind(i);
            if text.chars().count() > MAX_CELL_CHARS {
                return Err(io::Error::other(format!(
                    "data row {row}, column {}: {} characters, more than the {MAX_CELL_CHARS} a spreadsheet cell holds; write a .csv instead",
                    i + 1,
                    text.chars().count()
                )));
            }
            let number = match kind {
                CellKind::Integer => text.parse::<u64>().ok(),
                _ => None,
            };
            let linked = kind == CellKind::Url && self.n_links < MAX_LINKS;
            let sheet = self.sheet();
            let written = if let Some(number) = number {
                sheet.write_number(row, column, number as f64).map(|_| ())
            } else if linked {
                // A URL Excel refuses as a link (too long, say) is still written, as text.
                match sheet.write_url(row, column, Url::new(text)) {
                    Ok(_) => {
                        self.n_links += 1;
                        Ok(())
                    }
                    Err(_) => self.sheet().write_string(row, column, text).map(|_| ()),
                }
            } else {
                // Always a string, never a formula or a number: `=1+1` and `0012345` stay as
                // they were written.
                sheet.write_string(row, column, text).map(|_| ())
            };
            written.map_err(xlsx_error)?;
        }
        Ok(())
    }

    /// Saves the workbook into a temporary file beside the target, `fsync`s it and renames
    /// it over the target: the target is either the old file or the whole new one.
    pub fn finish(mut self) -> io::Result<()> {
        let temporary = with_suffix(&self.target, ".writing");
        let result = (|| {
            let file = File::create(&temporary)?;
            let mut sink = BufWriter::with_capacity(1 << 16, file);
            self.workbook.save_to_writer(&mut sink).map_err(xlsx_error)?;
            let file = sink.into_inner().map_err(io::IntoInnerError::into_error)?;
            file.sync_all()?;
            fs::rename(&temporary, &self.target)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&temporary);
        }
        result
    }
}

/// Makes the workbook `xlsx` from the results CSV `csv` (atomically, see
/// [`XlsxWriter::finish`]); returns the rows written. `guarded`: the CSV's cells carry the
/// formula guard's `'` (as the service's results do), which a workbook does not need, since
/// its text cells are never formulas; it is taken off.
pub fn from_csv(csv: &Path, xlsx: &Path, guarded: bool) -> io::Result<u64> {
    let mut reader = TableReader::open(csv)?;
    let unguard = |record: &StringRecord| -> StringRecord {
        record.iter().map(crate::results::formula::unguard).collect()
    };
    let header = match guarded {
        true => unguard(reader.headers()),
        false => reader.headers().clone(),
    };
    let mut writer = XlsxWriter::create(xlsx, &header)?;
    let mut record = StringRecord::new();
    let mut n_rows = 0;
    while reader.read_record(&mut record)? {
        if guarded {
            writer.write_record(&unguard(&record))?;
        } else {
            writer.write_record(&record)?;
        }
        n_rows += 1;
    }
    writer.finish()?;
    Ok(n_rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::outcome::{RowOutcome, Status};
    use crate::results::output::{OutputStyle, ResultWriter};

    #[test]
    fn a_workbook_reads_back_as_the_csv_it_was_made_from() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("out.csv");
        let xlsx = dir.path().join("out.xlsx");
        // As a run writes the `.partial` of a workbook: cells raw.
        let style = OutputStyle {
            bom: true,
            zh_headers: true,
            formula_guard: crate::results::formula::FormulaGuard(false),
        };
        let mut writer = ResultWriter::create(&csv, style).unwrap();
        writer
            .write_header(&StringRecord::from(vec!["身份证号", "EngineNo", "note"]))
            .unwrap();
        let renewed = RowOutcome {
            status: Status::Renewed,
            http_status: Some(200),
            message: "续保成功".into(),
            renewal_token: "RT1".into(),
            quote_url: "http://127.0.0.1/DoQuote?Token=t&RenewalToken=RT1".into(),
            attempts: 2,
            warnings: vec!["a".into(), "b".into()],
            answered_at: Some(1_796_164_795_000),
        };
        let fields = StringRecord::from(vec!["110101199003074518", "0012345", "=1+1"]);
        writer.write_row(&fields, 1, &renewed).unwrap();
        let rejected = RowOutcome::invalid_input("no plate".into(), Vec::new());
        writer
            .write_row(&StringRecord::from(vec!["", "", ""]), 2, &rejected)
            .unwrap();
        writer.flush().unwrap();
        drop(writer);
        assert_eq!(from_csv(&csv, &xlsx, false).unwrap(), 2);
        assert!(!with_suffix(&xlsx, ".writing").exists());

        let read = |path: &Path| {
            let mut reader = TableReader::open(path).unwrap();
            let mut rows = vec![reader.headers().clone()];
            let mut record = StringRecord::new();
            while reader.read_record(&mut record).unwrap() {
                rows.push(record.clone());
            }
            rows
        };
        let from_csv = read(&csv);
        let from_xlsx = read(&xlsx);
        assert_eq!(from_xlsx, from_csv);
        assert_eq!(&from_xlsx[1][0], "110101199003074518");
        assert_eq!(&from_xlsx[1][1], "0012345");
        assert_eq!(&from_xlsx[1][2], "=1+1");

        // The typed columns are typed in the sheet.
        use calamine::{Data, Reader as _};
        let mut workbook: calamine::Xlsx<_> = calamine::open_workbook(&xlsx).unwrap();
        let range = workbook.worksheet_range("results").unwrap();
        let layout = Layout::of_header(&from_csv[0]).unwrap();
        assert_eq!(range.get((1, layout.n_input)), Some(&Data::Float(1.0)), "row");
        assert_eq!(
            range.get((1, 0)),
            Some(&Data::String("110101199003074518".into()))
        );
        assert_eq!(range.get((1, 2)), Some(&Data::String("=1+1".into())));
    }
}
