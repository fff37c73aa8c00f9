//! Making an OUTPUT safe to continue: cutting a half-written last line, folding an
//! interrupted run's `.partial` file back into OUTPUT, and checking that OUTPUT was made from
//! the input at hand.
//!
//! The invariant it keeps: OUTPUT (when it exists) is a valid results CSV whose rows are a
//! prefix of the input, in order; a `.partial` beside it is a newer prefix of the same rows.
//! Every step streams and replaces files by rename, so a kill at any point leaves the pair
//! in a state that this module can still read.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter};
use std::path::Path;

use anyhow::{Context, bail};
use csv::StringRecord;

use crate::leads::input::LeadReader;
use crate::leads::input::csv_io_error;
use crate::results::outcome::RowOutcome;
use crate::results::output::{self, Layout, partial_path};
use crate::results::table::{Format, TableReader};
use crate::results::xlsx::{self, XlsxWriter};

/// Cuts `path` after its last complete record (one ending in a newline, with the header's
/// number of fields) and returns the number of data rows it keeps. A file without a whole
/// header is emptied.
pub fn truncate_to_complete(path: &Path) -> io::Result<u64> {
    let bytes_end_with_newline = |end: u64, file: &File| -> io::Result<bool> {
        use std::os::unix::fs::FileExt;
        if end == 0 {
            return Ok(false);
        }
        let mut last = [0u8; 1];
        file.read_exact_at(&mut last, end - 1)?;
        Ok(last[0] == b'\n')
    };
    let file = File::open(path)?;
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(BufReader::new(file.try_clone()?));
    let mut record = csv::ByteRecord::new();
    let mut n_fields = None;
    let mut good_end = 0;
    let mut n_rows: u64 = 0;
    loop {
        match csv.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(error) if error.is_io_error() => return Err(csv_io_error(error)),
            Err(_) => break,
        }
        let end = csv.position().byte();
        let expected = *n_fields.get_or_insert(record.len());
        if record.len() != expected || !bytes_end_with_newline(end, &file)? {
            break;
        }
        if good_end > 0 {
            n_rows += 1;
        }
        good_end = end;
    }
    if good_end < file.metadata()?.len() {
        OpenOptions::new().write(true).open(path)?.set_len(good_end)?;
    }
    Ok(n_rows)
}

fn open_table(path: &Path) -> anyhow::Result<TableReader> {
    TableReader::open(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Folds an interrupted run's `.partial` into OUTPUT: its rows replace OUTPUT's first rows,
/// OUTPUT's later rows stay (in the newer run's layout). Afterwards only OUTPUT exists, a
/// CSV or a workbook as its name says. Safe to repeat after a kill.
pub fn consolidate(output: &Path) -> anyhow::Result<()> {
    let partial = partial_path(output);
    if !partial.exists() {
        return Ok(());
    }
    truncate_to_complete(&partial).with_context(|| format!("cannot repair {}", partial.display()))?;
    if fs::metadata(&partial)
        .with_context(|| format!("cannot read {}", partial.display()))?
        .len()
        == 0
    {
        return fs::remove_file(&partial).with_context(|| format!("cannot remove {}", partial.display()));
    }
    let format = Format::of(output);
    if !output.exists() {
        match format {
            Format::Csv => {
                fs::rename(&partial, output).with_context(|| {
                    format!("cannot rename {} to {}", partial.display(), output.display())
                })?;
                return output::sync_directory(output)
                    .with_context(|| format!("cannot sync the directory of {}", output.display()));
            }
            Format::Xlsx => {
                xlsx::from_csv(&partial, output, false)
                    .with_context(|| format!("cannot write {}", output.display()))?;
                return fs::remove_file(&partial)
                    .with_context(|| format!("cannot remove {}", partial.display()));
            }
        }
    }
    let merging = output::with_suffix(output, ".merging");
    let mut newer = open_table(&partial)?;
    let mut older = open_table(output)?;
    let header = newer.headers().clone();
    // Rows of an older run are written again in the newer run's columns.
    let newer_layout = Layout::of_header(&header).ok();
    let older_layout = Layout::of_header(older.headers()).ok();
    let relayout = |record: &StringRecord| match (&older_layout, &newer_layout) {
        (Some(older), Some(newer)) => older.relayout(record, newer),
        _ => record.clone(),
    };
    let mut sink = match format {
        Format::Csv => {
            let mut file = BufWriter::new(
                File::create(&merging).with_context(|| format!("cannot create {}", merging.display()))?,
            );
            // Keep the BOM (or its absence) of the run that wrote the rows.
            if output::starts_with_bom(&partial)
                .with_context(|| format!("cannot read {}", partial.display()))?
            {
                output::write_bom(&mut file)
                    .with_context(|| format!("cannot write {}", merging.display()))?;
            }
            let mut writer = csv::WriterBuilder::new().flexible(true).from_writer(file);
            writer
                .write_record(&header)
                .map_err(csv_io_error)
                .with_context(|| format!("cannot write {}", merging.display()))?;
            Merged::Csv(writer)
        }
        Format::Xlsx => Merged::Xlsx(
            XlsxWriter::create(output, &header)
                .with_context(|| format!("cannot write {}", output.display()))?,
        ),
    };
    let written = match format {
        Format::Csv => merging.clone(),
        Format::Xlsx => output.to_path_buf(),
    };
    let mut record = StringRecord::new();
    let mut n_newer = 0;
    while newer
        .read_record(&mut record)
        .with_context(|| format!("cannot read {}", partial.display()))?
    {
        sink.write(&record)
            .with_context(|| format!("cannot write {}", written.display()))?;
        n_newer += 1;
    }
    let mut n_older = 0;
    while older
        .read_record(&mut record)
        .with_context(|| format!("cannot read {}", output.display()))?
    {
        n_older += 1;
        if n_older > n_newer {
            sink.write(&relayout(&record))
                .with_context(|| format!("cannot write {}", written.display()))?;
        }
    }
    match sink {
        Merged::Csv(writer) => {
            // On disk before it replaces OUTPUT: `.partial` goes next, and with it the only
            // copy of its rows.
            let file = writer
                .into_inner()
                .map_err(|error| error.into_error())
                .and_then(|buffered| buffered.into_inner().map_err(|error| error.into_error()))
                .with_context(|| format!("cannot write {}", merging.display()))?;
            file.sync_data()
                .with_context(|| format!("cannot sync {}", merging.display()))?;
            drop(file);
            fs::rename(&merging, output)
                .with_context(|| format!("cannot rename {} to {}", merging.display(), output.display()))?;
            output::sync_directory(output)
                .with_context(|| format!("cannot sync the directory of {}", output.display()))?;
        }
        Merged::Xlsx(writer) => writer
            .finish()
            .with_context(|| format!("cannot write {}", output.display()))?,
    }
    fs::remove_file(&partial).with_context(|| format!("cannot remove {}", partial.display()))
}

/// Where [`consolidate`] writes the merged rows (one at a time: its size does not matter).
#[allow(clippy::large_enum_variant)]
enum Merged {
    Csv(csv::Writer<BufWriter<File>>),
    Xlsx(XlsxWriter),
}

impl Merged {
    fn write(&mut self, record: &StringRecord) -> io::Result<()> {
        match self {
            Merged::Csv(writer) => writer.write_record(record).map_err(csv_io_error),
            Merged::Xlsx(writer) => writer.write_record(record),
        }
    }
}

/// What an earlier run left in OUTPUT.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Previous {
    /// Rows OUTPUT holds (a prefix of the input).
    pub n_rows: u64,
    /// Of those, rows with a final outcome (kept as they are).
    pub n_final: u64,
}

/// Checks, before any request, that OUTPUT is a results file made from `input` (same header,
/// same input fields row by row) and counts what it holds.
pub fn verify(output: &Path, input: &mut LeadReader) -> anyhow::Result<Previous> {
    verify_each(output, input, |_| {})
}

/// [`verify`], telling `each` the status of every row in order.
pub fn verify_each(
    output: &Path,
    input: &mut LeadReader,
    mut each: impl FnMut(crate::results::outcome::Status),
) -> anyhow::Result<Previous> {
    let mut previous = open_table(output)?;
    let header = previous.headers().clone();
    let shown = output.display();
    let layout = match Layout::of_header(&header) {
        Ok(layout) => layout,
        Err(problem) => {
            bail!(
                "{shown} is not a results file of bihu-renew: {problem}. Use -o to write elsewhere, or --force to replace it"
            );
        }
    };
    let n_input_columns = layout.n_input;
    let input_headers = input.headers().clone();
    if header
        .iter()
        .take(n_input_columns)
        .map(crate::results::formula::unguard)
        .ne(input_headers.iter())
    {
        bail!(
            "{shown} was not made from this input: its input columns are [{}], the input's are [{}]. Resume with the input it was made from, or pass --force to start over",
            header.iter().take(n_input_columns).collect::<Vec<_>>().join(", "),
            input_headers.iter().collect::<Vec<_>>().join(", ")
        );
    }
    let mut counts = Previous::default();
    let mut record = StringRecord::new();
    while previous
        .read_record(&mut record)
        .with_context(|| format!("cannot read {}", output.display()))?
    {
        counts.n_rows += 1;
        let row = counts.n_rows;
        let Some((written_row, outcome)) = layout.parse(&record) else {
            bail!("{shown}: data row {row} has no readable result columns; pass --force to start over");
        };
        let Some(next) = input.next_row() else {
            bail!(
                "{shown} has more rows than the input ({row} and more against {}): it was not made from this input. Pass --force to start over",
                row - 1
            );
        };
        let input_row = next?;
        // A cell that looked like a formula was written with a `'` in front (unless the run
        // had --raw-cells): either form is the input's.
        let differs = (0..n_input_columns).find(|&i| {
            record.get(i) != input_row.fields.get(i)
                && record.get(i).map(crate::results::formula::unguard) != input_row.fields.get(i)
        });
        if written_row != row || differs.is_some() {
            let detail = differs
                .map(|i| {
                    format!(
                        "column {}: {:?} in the results, {:?} in the input",
                        &input_headers[i],
                        record.get(i).unwrap_or(""),
                        input_row.fields.get(i).unwrap_or("")
                    )
                })
                .unwrap_or_else(|| format!("its row column says {written_row}"));
            bail!(
                "{shown} was not made from this input: data row {row} differs ({detail}). Resume with the input it was made from, or pass --force to start over"
            );
        }
        if outcome.status.is_final() {
            counts.n_final += 1;
        }
        each(outcome.status);
    }
    Ok(counts)
}

/// Reads OUTPUT's outcomes in order, beside the input.
pub struct PreviousRows {
    table: TableReader,
    layout: Option<Layout>,
    record: StringRecord,
}

impl PreviousRows {
    pub fn open(output: &Path) -> anyhow::Result<PreviousRows> {
        let table = open_table(output)?;
        let layout = Layout::of_header(table.headers()).ok();
        Ok(PreviousRows {
            table,
            layout,
            record: StringRecord::new(),
        })
    }

    /// The next row's outcome; `None` at the end, or for a row that does not read as one
    /// (it is done again).
    pub fn next_outcome(&mut self) -> Option<RowOutcome> {
        match self.table.read_record(&mut self.record) {
            Ok(true) => self
                .layout
                .as_ref()?
                .parse(&self.record)
                .map(|(_, outcome)| outcome),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_half_written_last_line_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        fs::write(&path, "a,b\n1,2\n3,\"x\ny\"\n5,").unwrap();
        assert_eq!(truncate_to_complete(&path).unwrap(), 2);
        assert_eq!(fs::read_to_string(&path).unwrap(), "a,b\n1,2\n3,\"x\ny\"\n");
        fs::write(&path, "a,b\n1,2\n3").unwrap();
        assert_eq!(truncate_to_complete(&path).unwrap(), 1);
        assert_eq!(fs::read_to_string(&path).unwrap(), "a,b\n1,2\n");
        fs::write(&path, "a,").unwrap();
        assert_eq!(truncate_to_complete(&path).unwrap(), 0);
        assert_eq!(fs::read_to_string(&path).unwrap(), "");
    }

    #[test]
    fn consolidate_lays_the_newer_prefix_over_the_older_rows() {
        let dir = tempfile::tempdir().unwrap();
        let output = dir.path().join("out.csv");
        fs::write(&output, "h\nold1\nold2\nold3\n").unwrap();
        fs::write(partial_path(&output), "h\nnew1\nnew2\nnew").unwrap();
        consolidate(&output).unwrap();
        assert_eq!(fs::read_to_string(&output).unwrap(), "h\nnew1\nnew2\nold3\n");
        assert!(!partial_path(&output).exists());
        // Without an older OUTPUT the partial simply becomes it.
        fs::write(partial_path(&output), "h\nx\n").unwrap();
        fs::remove_file(&output).unwrap();
        consolidate(&output).unwrap();
        assert_eq!(fs::read_to_string(&output).unwrap(), "h\nx\n");
    }
}
