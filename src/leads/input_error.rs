//! What stops the reading of a lead list: a problem with the file itself (unreadable,
//! empty, no vehicle column, a stray quote, mixed encodings, a workbook out of bounds),
//! never with one row. The reader, the encodings and the workbook reader return it.

use std::io;
use std::path::PathBuf;

use crate::leads::columns::{CITY_HEADERS, ENGINE_HEADERS, PLATE_HEADERS, VIN_HEADERS};

/// A fatal problem with the input file itself (not with one row).
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    /// The CSV reader stopped: a failed read, or a record it cannot parse (its message names
    /// the record and line).
    #[error("cannot read {path}: {source}")]
    Csv { path: PathBuf, source: csv::Error },
    #[error("{path} is empty: a lead list needs a header row")]
    Empty { path: PathBuf },
    #[error("{path} has no sheet named {wanted:?}; its sheets are: {found}")]
    NoSuchSheet {
        path: PathBuf,
        wanted: String,
        found: String,
    },
    #[error("{path} is not a lead list: {detail}")]
    Unreadable { path: PathBuf, detail: String },
    #[error(
        "{path} has no vehicle column. Its header is: {found}.\n  Accepted headers (case and spaces ignored):\n    plate:  {plate}\n    VIN:    {vin}\n    engine: {engine}\n    city:   {city}",
        plate = PLATE_HEADERS.join(", "),
        vin = VIN_HEADERS.join(", "),
        engine = ENGINE_HEADERS.join(", "),
        city = CITY_HEADERS.join(", ")
    )]
    NoVehicleColumns { path: PathBuf, found: String },
    #[error(
        "{path}: the quote that opens on line {line} (column {column}) runs over {n_lines} lines{swallowed}: a stray or unclosed \" takes the rows after it into one field, and they would never be sent. Fix line {line}: remove the stray \", or write it as \"\" inside a quoted field; then run again"
    )]
    StrayQuote {
        path: PathBuf,
        line: u64,
        column: String,
        n_lines: u64,
        swallowed: &'static str,
    },
    #[error(
        "{path} mixes text encodings: line {utf8_line} is UTF-8, line {other_line} is not (GBK?). Save the whole list in one encoding (in Excel: Save As \"CSV UTF-8\"), or pass --input-encoding gbk or --input-encoding utf-8 to read every line one way (lines that do not fit it are then rejected as undecodable)"
    )]
    MixedEncoding {
        path: PathBuf,
        utf8_line: u64,
        other_line: u64,
    },
    #[error(
        "{path}: line {line} is neither UTF-8 nor GBK/GB18030 text (is it a lead list?). Save the list as \"CSV UTF-8\", or pass --input-encoding utf-8 or gbk to read it one way (lines that do not fit it are then rejected as undecodable)"
    )]
    NotText { path: PathBuf, line: u64 },
    #[error(
        "{path} is not a workbook: a .{extension} file is a zip archive, and this one starts like {looks_like}. If it is a CSV, name it .csv; or open it in Excel and save it as a workbook"
    )]
    NotAWorkbook {
        path: PathBuf,
        extension: String,
        looks_like: &'static str,
    },
    #[error("{path} is larger than the tool reads: {detail}; nothing was sent. {fix}")]
    WorkbookTooLarge {
        path: PathBuf,
        detail: String,
        fix: &'static str,
    },
}
