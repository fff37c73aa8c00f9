//! Reading a workbook within fixed bounds, checked before anything large is allocated.
//!
//! A workbook is a zip archive: a few KB can claim cells at A1 and XFD1048576 (calamine's
//! sheet is a dense grid of their bounding box, 17 billion cells) or inflate to a 1 GB shared
//! string. So, before calamine reads a byte of the sheet:
//!
//! 1. the zip's central directory is read (sizes only): the entries together may unpack to at
//!    most [`WorkbookLimits::max_unzipped_bytes`], the shared strings to at most
//!    [`MAX_SHARED_STRINGS_BYTES`] of that (a directory that lies is no way around it: the zip
//!    reader stops an entry that unpacks to more than its declared size, with an error);
//! 2. an `.xlsx`/`.xlsm`/`.xlsb` sheet is streamed cell by cell: the cells present and the
//!    box they span may hold at most [`WorkbookLimits::max_cells`] cells (the grid the reader
//!    then builds, once).
//!
//! `.xls` (not a zip) and `.ods` (no cell stream in calamine) are read whole after the file
//! and zip checks.
//!
//! Also here: which files are read as spreadsheets, a file named like a workbook that is not
//! one refused in words, and a cell's text as the clerk sees it.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use calamine::{Cell, Data, DataRef, Range, Reader as _};

use crate::leads::input_error::InputError;

/// The most the shared strings (every distinct text of a workbook, held in memory whole) may
/// unpack to.
pub const MAX_SHARED_STRINGS_BYTES: u64 = 256 << 20;

/// The bounds a workbook is read within (`--max-cells`, `--max-unzipped-mb`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkbookLimits {
    /// Cells of the sheet's grid: rows times columns of the box its cells span.
    pub max_cells: u64,
    /// What the zip's entries may unpack to, together.
    pub max_unzipped_bytes: u64,
}

impl Default for WorkbookLimits {
    /// 10 million cells (500,000 rows of 20 columns; about 320 MB of grid) and 512 MB unpacked.
    fn default() -> WorkbookLimits {
        WorkbookLimits {
            max_cells: 10_000_000,
            max_unzipped_bytes: 512 << 20,
        }
    }
}

const RAISE_CELLS: &str = "If it is a real list this large, pass --max-cells with a higher number; if not, delete the cells far from the data (or copy the data to a new workbook)";
const RAISE_UNZIPPED: &str = "If it is a real list this large, pass --max-unzipped-mb with a higher number; if not, it is no lead list (a zip bomb?)";

fn too_large(path: &Path, detail: String, fix: &'static str) -> InputError {
    InputError::WorkbookTooLarge {
        path: path.to_path_buf(),
        detail,
        fix,
    }
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / f64::from(1 << 20))
}

/// Step 1: the zip's sizes, from its central directory. Not a zip: nothing to check here
/// (the caller names what it is).
pub fn check_archive(path: &Path, limits: &WorkbookLimits) -> Result<(), InputError> {
    let file = File::open(path).map_err(|source| InputError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let Ok(mut archive) = zip::ZipArchive::new(BufReader::new(file)) else {
        return Ok(());
    };
    let shared_limit = MAX_SHARED_STRINGS_BYTES.min(limits.max_unzipped_bytes);
    let mut total: u64 = 0;
    for i in 0..archive.len() {
        let entry = archive.by_index_raw(i).map_err(|e| InputError::Unreadable {
            path: path.to_path_buf(),
            detail: format!("its zip directory is damaged: {e}"),
        })?;
        let name = entry
            .name()
            .map(|n| n.into_owned())
            .unwrap_or_else(|_| format!("entry {i}"));
        let size = entry.size();
        let lower = name.to_ascii_lowercase();
        let shared = lower.ends_with("sharedstrings.xml") || lower.ends_with("sharedstrings.bin");
        if shared && size > shared_limit {
            return Err(too_large(
                path,
                format!(
                    "its shared strings ({name}) unpack to {}, more than the {} the tool holds",
                    mb(size),
                    mb(shared_limit)
                ),
                RAISE_UNZIPPED,
            ));
        }
        total = total.saturating_add(size);
        if total > limits.max_unzipped_bytes {
            return Err(too_large(
                path,
                format!(
                    "its parts unpack to more than {} (the limit; {name} alone to {})",
                    mb(limits.max_unzipped_bytes),
                    mb(size)
                ),
                RAISE_UNZIPPED,
            ));
        }
    }
    Ok(())
}

/// The box the cells seen so far span.
struct Extent {
    first: (u32, u32),
    last: (u32, u32),
}

impl Extent {
    fn cells(&self) -> u64 {
        u64::from(self.last.0 - self.first.0 + 1) * u64::from(self.last.1 - self.first.1 + 1)
    }
}

/// A1-style name of a cell.
fn cell_name((row, column): (u32, u32)) -> String {
    let mut letters = Vec::new();
    let mut n = column + 1;
    while n > 0 {
        letters.push(b'A' + ((n - 1) % 26) as u8);
        n = (n - 1) / 26;
    }
    letters.reverse();
    format!("{}{}", String::from_utf8(letters).expect("ASCII"), row + 1)
}

/// Step 2: collects a sheet's non-empty cells from `next`, refusing as soon as they or the box
/// they span pass `max_cells`; then the grid, built once.
fn collect<'a, E: std::fmt::Display>(
    path: &Path,
    sheet: &str,
    max_cells: u64,
    mut next: impl FnMut() -> Result<Option<Cell<DataRef<'a>>>, E>,
) -> Result<Range<Data>, InputError> {
    let mut cells = Vec::new();
    let mut extent: Option<Extent> = None;
    loop {
        let cell = next().map_err(|e| InputError::Unreadable {
            path: path.to_path_buf(),
            detail: format!("sheet {sheet}: {e}"),
        })?;
        let Some(cell) = cell else { break };
        if matches!(cell.get_value(), DataRef::Empty) {
            continue;
        }
        let (row, column) = cell.get_position();
        let extent = extent.get_or_insert(Extent {
            first: (row, column),
            last: (row, column),
        });
        extent.first = (extent.first.0.min(row), extent.first.1.min(column));
        extent.last = (extent.last.0.max(row), extent.last.1.max(column));
        if extent.cells() > max_cells {
            return Err(too_large(
                path,
                format!(
                    "sheet {sheet} has cells from {} to {} (so far), a grid of {} cells; the limit is {max_cells}",
                    cell_name(extent.first),
                    cell_name(extent.last),
                    extent.cells()
                ),
                RAISE_CELLS,
            ));
        }
        cells.push(Cell::new((row, column), Data::from(cell.get_value().clone())));
    }
    Ok(Range::from_sparse(cells))
}

fn unreadable(path: &Path, error: impl std::fmt::Display) -> InputError {
    InputError::Unreadable {
        path: path.to_path_buf(),
        detail: error.to_string(),
    }
}

/// The sheet to read: `wanted`, else the first.
fn pick(path: &Path, names: &[String], wanted: Option<&str>) -> Result<String, InputError> {
    match wanted {
        Some(wanted) => names
            .iter()
            .find(|n| n.as_str() == wanted)
            .cloned()
            .ok_or_else(|| InputError::NoSuchSheet {
                path: path.to_path_buf(),
                wanted: wanted.to_string(),
                found: names.join(", "),
            }),
        None => names.first().cloned().ok_or_else(|| InputError::Empty {
            path: path.to_path_buf(),
        }),
    }
}

/// Reads one sheet of the workbook at `path` within `limits` (the file is known to look like
/// a workbook).
pub fn read_sheet(
    path: &Path,
    sheet: Option<&str>,
    limits: &WorkbookLimits,
) -> Result<Range<Data>, InputError> {
    check_archive(path, limits)?;
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    match extension.as_str() {
        "xlsx" | "xlsm" => {
            let mut workbook: calamine::Xlsx<_> =
                calamine::open_workbook(path).map_err(|e| unreadable(path, e))?;
            let name = pick(path, &workbook.sheet_names(), sheet)?;
            let mut cells = workbook
                .worksheet_cells_reader(&name)
                .map_err(|e| unreadable(path, format!("sheet {name}: {e}")))?;
            collect(path, &name, limits.max_cells, || cells.next_cell())
        }
        "xlsb" => {
            let mut workbook: calamine::Xlsb<_> =
                calamine::open_workbook(path).map_err(|e| unreadable(path, e))?;
            let name = pick(path, &workbook.sheet_names(), sheet)?;
            let mut cells = workbook
                .worksheet_cells_reader(&name)
                .map_err(|e| unreadable(path, format!("sheet {name}: {e}")))?;
            collect(path, &name, limits.max_cells, || cells.next_cell())
        }
        _ => {
            let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
            if size > limits.max_unzipped_bytes {
                return Err(too_large(
                    path,
                    format!(
                        "the file holds {}, more than the limit of {}",
                        mb(size),
                        mb(limits.max_unzipped_bytes)
                    ),
                    RAISE_UNZIPPED,
                ));
            }
            let mut workbook = calamine::open_workbook_auto(path).map_err(|e| unreadable(path, e))?;
            let name = pick(path, &workbook.sheet_names(), sheet)?;
            let range = workbook
                .worksheet_range(&name)
                .map_err(|e| unreadable(path, format!("sheet {name}: {e}")))?;
            let (height, width) = range.get_size();
            let grid = height as u64 * width as u64;
            if grid > limits.max_cells {
                return Err(too_large(
                    path,
                    format!(
                        "sheet {name} is a grid of {grid} cells; the limit is {}",
                        limits.max_cells
                    ),
                    RAISE_CELLS,
                ));
            }
            Ok(range)
        }
    }
}

/// The extensions of the spreadsheets read as lead lists, `.xlsx` first.
pub const SPREADSHEET_EXTENSIONS: [&str; 5] = ["xlsx", "xlsm", "xlsb", "xls", "ods"];

/// Whether a path is read as a spreadsheet rather than CSV.
pub fn is_spreadsheet(path: &Path) -> bool {
    let extension = path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase());
    extension.is_some_and(|extension| SPREADSHEET_EXTENSIONS.contains(&extension.as_str()))
}

/// A spreadsheet cell as the clerk sees it. Identifiers stored as numbers keep every digit
/// (`2192209`, not `2192209.0` or `2.192209E+6`).
pub fn cell_text(cell: &calamine::Data) -> String {
    use calamine::Data;
    match cell {
        Data::Empty => String::new(),
        Data::String(text) | Data::DateTimeIso(text) | Data::DurationIso(text) => text.clone(),
        Data::Int(n) => n.to_string(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e17 => format!("{f:.0}"),
        Data::Float(f) => f.to_string(),
        Data::Bool(b) => if *b { "TRUE" } else { "FALSE" }.to_string(),
        Data::DateTime(date) => {
            let (y, mo, d, h, mi, s, _) = date.to_ymd_hms_milli();
            if date.is_datetime() && (h, mi, s) != (0, 0, 0) {
                format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
            } else if date.is_datetime() {
                format!("{y:04}-{mo:02}-{d:02}")
            } else {
                date.as_f64().to_string()
            }
        }
        Data::Error(error) => format!("#{error:?}"),
    }
}

/// A file named like a workbook that is not one (a CSV renamed `.xlsx`): said in words
/// rather than as the zip reader's complaint.
fn refuse_what_is_not_a_workbook(path: &Path) -> Result<(), InputError> {
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let mut start = [0u8; 8];
    let n = File::open(path)
        .and_then(|mut file| file.read(&mut start))
        .map_err(|source| InputError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    let start = &start[..n];
    let zip = start.starts_with(b"PK\x03\x04");
    let ole = start.starts_with(&[0xD0, 0xCF, 0x11, 0xE0]);
    let fits = match extension.as_str() {
        "xls" => ole || zip,
        _ => zip,
    };
    if fits || n == 0 {
        return Ok(());
    }
    let looks_like = if start
        .iter()
        .all(|&b| b.is_ascii_graphic() || b.is_ascii_whitespace() || b >= 0x80)
    {
        "text (a CSV renamed?)"
    } else {
        "neither a zip archive nor text"
    };
    Err(InputError::NotAWorkbook {
        path: path.to_path_buf(),
        extension,
        looks_like,
    })
}

/// Opens the sheet a lead list is read from (`sheet`, or the first), within `limits`; a file
/// that is no workbook is refused in words first.
pub(super) fn open_sheet(
    path: &Path,
    sheet: Option<&str>,
    limits: &WorkbookLimits,
) -> Result<calamine::Range<calamine::Data>, InputError> {
    refuse_what_is_not_a_workbook(path)?;
    read_sheet(path, sheet, limits)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The box's size counts from its first cell, not from A1 (cargo-mutants: `-` made `+`
    /// went unseen while every test's box started at A1).
    #[test]
    fn an_extent_counts_the_cells_of_its_box_wherever_it_starts() {
        let extent = |first, last| Extent { first, last };
        assert_eq!(extent((0, 0), (0, 0)).cells(), 1);
        assert_eq!(extent((2, 3), (4, 7)).cells(), 3 * 5);
        assert_eq!(extent((9, 1), (9, 1)).cells(), 1);
    }

    /// An OpenDocument spreadsheet of `rows` rows of `columns` text cells.
    fn ods(rows: usize, columns: usize) -> Vec<u8> {
        use std::io::Write as _;
        let mut table = String::new();
        for row in 0..rows {
            table.push_str("<table:table-row>");
            for column in 0..columns {
                table.push_str(&format!(
                    "<table:table-cell office:value-type=\"string\"><text:p>r{row}c{column}</text:p></table:table-cell>"
                ));
            }
            table.push_str("</table:table-row>");
        }
        let content = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2"><office:body><office:spreadsheet><table:table table:name="Sheet1">{table}</table:table></office:spreadsheet></office:body></office:document-content>"#
        );
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let stored =
            zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        zip.start_file("mimetype", stored).unwrap();
        zip.write_all(b"application/vnd.oasis.opendocument.spreadsheet")
            .unwrap();
        zip.start_file("META-INF/manifest.xml", stored).unwrap();
        zip.write_all(
            br#"<?xml version="1.0" encoding="UTF-8"?><manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2"><manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/><manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/></manifest:manifest>"#,
        )
        .unwrap();
        zip.start_file("content.xml", stored).unwrap();
        zip.write_all(content.as_bytes()).unwrap();
        zip.finish().unwrap().into_inner()
    }

    /// A sheet read whole (an `.ods`, an `.xls`) is held to the cell limit by its grid, rows
    /// times columns (cargo-mutants: nothing tested this path's bound).
    #[test]
    fn a_sheet_read_whole_is_held_to_the_cell_limit_by_its_grid() {
        let (_dir, path) = file_of("leads.ods", &ods(3, 4));
        let limits = |max_cells| WorkbookLimits {
            max_cells,
            ..WorkbookLimits::default()
        };
        let range = read_sheet(&path, None, &limits(12)).unwrap();
        assert_eq!(range.get_size(), (3, 4));
        let error = read_sheet(&path, None, &limits(11)).unwrap_err().to_string();
        assert!(error.contains("a grid of 12 cells; the limit is 11"), "{error}");
    }

    #[test]
    fn cells_are_named_as_excel_names_them() {
        assert_eq!(cell_name((0, 0)), "A1");
        assert_eq!(cell_name((9, 25)), "Z10");
        assert_eq!(cell_name((0, 26)), "AA1");
        assert_eq!(cell_name((1_048_575, 16_383)), "XFD1048576");
    }

    /// The grid is refused at the first cell that takes it past the limit, before the grid is
    /// built, whatever the cells hold.
    #[test]
    fn a_sheet_is_refused_at_the_cell_that_passes_the_limit() {
        const CELLS: [(u32, u32); 7] = [(0, 0), (0, 1), (1, 0), (1, 1), (2, 1), (3, 3), (4, 4)];
        fn feed(given: &mut usize) -> impl FnMut() -> Result<Option<Cell<DataRef<'static>>>, String> + '_ {
            move || {
                let cell = CELLS.get(*given).map(|&pos| Cell::new(pos, DataRef::Int(1)));
                *given += 1;
                Ok(cell)
            }
        }
        let mut given = 0;
        let error = collect(Path::new("x.xlsx"), "S", 6, feed(&mut given))
            .unwrap_err()
            .to_string();
        assert_eq!(given, 6, "stopped at D4, the cell that makes a 4x4 grid");
        assert!(error.contains("from A1 to D4"), "{error}");
        assert!(error.contains("--max-cells"), "{error}");

        let mut given = 0;
        let range = collect(Path::new("x.xlsx"), "S", 25, feed(&mut given)).unwrap();
        assert_eq!(range.get_size(), (5, 5));
    }

    fn file_of(name: &str, bytes: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        (dir, path)
    }

    /// A zip whose entries are `(name, size)`, each that many zeros, deflated.
    fn zip_of(entries: &[(&str, usize)]) -> Vec<u8> {
        use std::io::Write as _;
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for &(name, size) in entries {
            zip.start_file(name, zip::write::SimpleFileOptions::default())
                .unwrap();
            zip.write_all(&vec![0u8; size]).unwrap();
        }
        zip.finish().unwrap().into_inner()
    }

    const KB_LIMITS: WorkbookLimits = WorkbookLimits {
        max_cells: 100,
        max_unzipped_bytes: 10_000,
    };

    fn archive_error(entries: &[(&str, usize)]) -> Option<String> {
        let (_dir, path) = file_of("a.xlsx", &zip_of(entries));
        check_archive(&path, &KB_LIMITS).err().map(|e| e.to_string())
    }

    #[test]
    fn a_zip_may_unpack_to_its_limit_and_not_a_byte_more() {
        assert_eq!(archive_error(&[("xl/a.xml", 6_000), ("xl/b.xml", 4_000)]), None);
        let error = archive_error(&[("xl/a.xml", 6_000), ("xl/b.xml", 4_001)]).unwrap();
        assert!(error.contains("its parts unpack to more than"), "{error}");
        assert!(error.contains("xl/b.xml alone"), "{error}");
        assert!(error.contains("--max-unzipped-mb"), "{error}");
        // The shared strings have the same bound here (the smaller of the two).
        assert_eq!(archive_error(&[("xl/sharedStrings.xml", 10_000)]), None);
        let error = archive_error(&[("xl/SharedStrings.XML", 10_001)]).unwrap();
        assert!(
            error.contains("its shared strings (xl/SharedStrings.XML)"),
            "{error}"
        );
        let error = archive_error(&[("xl/sharedStrings.bin", 10_001)]).unwrap();
        assert!(error.contains("shared strings"), "{error}");
        assert_eq!(mb(3 << 19), "1.5 MB");
        // Not a zip: nothing to check here.
        let (_dir, path) = file_of("a.xlsx", b"plate\n");
        assert!(check_archive(&path, &KB_LIMITS).is_ok());
    }

    #[test]
    fn a_cell_reads_as_the_clerk_sees_it() {
        use calamine::{CellErrorType, ExcelDateTime, ExcelDateTimeType};
        let date = |value, kind| Data::DateTime(ExcelDateTime::new(value, kind, false));
        for (cell, text) in [
            (Data::Empty, ""),
            (Data::String("京A12345".into()), "京A12345"),
            (
                Data::DateTimeIso("2024-01-02T03:04:05".into()),
                "2024-01-02T03:04:05",
            ),
            (Data::DurationIso("PT1H".into()), "PT1H"),
            (Data::Int(-42), "-42"),
            (Data::Float(2192209.0), "2192209"),
            (Data::Float(-3.0), "-3"),
            (Data::Float(1.5), "1.5"),
            (Data::Float(2e17), "200000000000000000"),
            (Data::Bool(true), "TRUE"),
            (Data::Bool(false), "FALSE"),
            (date(45000.0, ExcelDateTimeType::DateTime), "2023-03-15"),
            (date(45000.5, ExcelDateTimeType::DateTime), "2023-03-15 12:00:00"),
            (date(1.25, ExcelDateTimeType::TimeDelta), "1.25"),
            (Data::Error(CellErrorType::Div0), "#Div0"),
        ] {
            assert_eq!(cell_text(&cell), text, "{cell:?}");
        }
    }

    #[test]
    fn spreadsheets_are_known_by_their_extension_in_any_case() {
        for name in ["a.xlsx", "A.XLSX", "a.xlsm", "a.xlsb", "a.xls", "a.ods"] {
            assert!(is_spreadsheet(Path::new(name)), "{name}");
        }
        for name in ["a.csv", "a", "a.xlsx.csv", "xlsx", "a.txt"] {
            assert!(!is_spreadsheet(Path::new(name)), "{name}");
        }
    }

    #[test]
    fn the_sheet_is_the_one_named_or_else_the_first() {
        let names = ["线索".to_string(), "Sheet2".to_string()];
        let path = Path::new("a.xlsx");
        assert_eq!(pick(path, &names, None).unwrap(), "线索");
        assert_eq!(pick(path, &names, Some("Sheet2")).unwrap(), "Sheet2");
        let error = pick(path, &names, Some("sheet2")).unwrap_err().to_string();
        assert!(
            error.contains("no sheet named \"sheet2\"; its sheets are: 线索, Sheet2"),
            "{error}"
        );
        let error = pick(path, &[], None).unwrap_err().to_string();
        assert!(error.contains("is empty"), "{error}");
    }

    #[test]
    fn a_file_named_like_a_workbook_that_is_none_is_refused_in_words() {
        let refused = |name: &str, bytes: &[u8]| {
            let (_dir, path) = file_of(name, bytes);
            refuse_what_is_not_a_workbook(&path).err().map(|e| e.to_string())
        };
        let error = refused("a.xlsx", "车牌号,城市\n京A12345,1\n".as_bytes()).unwrap();
        assert!(error.contains("a .xlsx file is a zip archive"), "{error}");
        assert!(error.contains("text (a CSV renamed?)"), "{error}");
        // An English header: ASCII letters, a comma and a line break are text too.
        let error = refused("a.xlsx", b"plate,city\nA,1\n").unwrap();
        assert!(error.contains("text (a CSV renamed?)"), "{error}");
        let error = refused("a.XLSX", &encoding_rs::GBK.encode("车牌号\n").0).unwrap();
        assert!(
            error.contains("a .xlsx file") && error.contains("text"),
            "{error}"
        );
        let error = refused("a.xlsx", &[0, 1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
        assert!(error.contains("neither a zip archive nor text"), "{error}");
        let ole = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
        assert!(refused("a.xlsx", &ole).unwrap().contains("neither"));
        assert_eq!(refused("a.xls", &ole), None);
        assert_eq!(refused("a.xls", b"PK\x03\x04rest"), None);
        assert_eq!(refused("a.xlsx", b"PK\x03\x04rest"), None);
        assert_eq!(refused("a.xlsx", b""), None);
        assert!(refused("a.xls", b"plate\n").is_some());
    }

    fn workbook_of(sheets: &[(&str, &[&[&str]])]) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("leads.xlsx");
        let mut workbook = rust_xlsxwriter::Workbook::new();
        for (name, rows) in sheets {
            let sheet = workbook.add_worksheet();
            sheet.set_name(*name).unwrap();
            for (r, row) in rows.iter().enumerate() {
                for (c, text) in row.iter().enumerate() {
                    sheet.write_string(r as u32, c as u16, *text).unwrap();
                }
            }
        }
        workbook.save(&path).unwrap();
        (dir, path)
    }

    #[test]
    fn a_workbook_is_read_by_sheet_within_its_cell_limit() {
        let first: &[&[&str]] = &[&["车牌号"], &["京A12345"]];
        let second: &[&[&str]] = &[&["plate", "city"], &["沪B54321", "2"], &["粤C11111", "3"]];
        let (_dir, path) = workbook_of(&[("一", first), ("二", second)]);
        let range = read_sheet(&path, None, &WorkbookLimits::default()).unwrap();
        assert_eq!(range.get_size(), (2, 1));
        assert_eq!(range.get((1, 0)), Some(&Data::String("京A12345".into())));
        let range = read_sheet(&path, Some("二"), &WorkbookLimits::default()).unwrap();
        assert_eq!(range.get_size(), (3, 2));
        let error = read_sheet(&path, Some("三"), &WorkbookLimits::default())
            .unwrap_err()
            .to_string();
        assert!(error.contains("its sheets are: 一, 二"), "{error}");
        let six = WorkbookLimits {
            max_cells: 6,
            ..WorkbookLimits::default()
        };
        assert!(read_sheet(&path, Some("二"), &six).is_ok());
        let five = WorkbookLimits {
            max_cells: 5,
            ..WorkbookLimits::default()
        };
        let error = read_sheet(&path, Some("二"), &five).unwrap_err().to_string();
        assert!(
            error.contains("sheet 二 has cells from A1 to B3 (so far), a grid of 6 cells; the limit is 5"),
            "{error}"
        );
        let error = open_sheet(
            &path,
            None,
            &WorkbookLimits {
                max_unzipped_bytes: 100,
                ..WorkbookLimits::default()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("unpack to more than"), "{error}");
    }

    #[test]
    fn an_old_excel_file_is_held_to_the_size_limit_before_it_is_opened() {
        let mut bytes = vec![0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
        bytes.resize(2_000, 0);
        let (_dir, path) = file_of("old.xls", &bytes);
        let small = WorkbookLimits {
            max_cells: 100,
            max_unzipped_bytes: 1_999,
        };
        let error = read_sheet(&path, None, &small).unwrap_err().to_string();
        assert!(
            error.contains("the file holds 0.0 MB, more than the limit of 0.0 MB"),
            "{error}"
        );
        let fits = WorkbookLimits {
            max_unzipped_bytes: 2_000,
            ..small
        };
        let error = open_sheet(&path, None, &fits).unwrap_err().to_string();
        assert!(error.contains("is not a lead list"), "{error}");
    }
}
