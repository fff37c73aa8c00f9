//! Reading a lead list: finds the vehicle columns by header name and streams rows, each
//! already validated into a [`Lead`] or a [`Rejection`].
//!
//! Runs on a blocking thread (the pipeline feeds its rows into a bounded channel). Only an
//! I/O error stops it; a ragged or undecodable row becomes a rejected row like any other.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use csv::{ByteRecord, StringRecord};

use crate::city::City;
use crate::lead::{self, Lead, RawLead, Rejection};

/// Header names accepted for each vehicle column, compared with case and spacing ignored.
pub const PLATE_HEADERS: [&str; 5] = ["LicenseNo", "plate", "车牌号", "车牌", "车牌号码"];
pub const VIN_HEADERS: [&str; 5] = ["CarVin", "vin", "车架号", "车辆识别代号", "车辆识别代码"];
pub const ENGINE_HEADERS: [&str; 4] = ["EngineNo", "engine_no", "发动机号", "发动机号码"];
pub const CITY_HEADERS: [&str; 4] = ["CityCode", "city", "城市", "投保城市"];

/// A fatal problem with the input file itself (not with one row).
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path} is empty: a lead list needs a header row")]
    Empty { path: PathBuf },
    #[error(
        "{path} has no vehicle column. Its header is: {found}.\n  Accepted headers (case and spaces ignored):\n    plate:  {plate}\n    VIN:    {vin}\n    engine: {engine}\n    city:   {city}",
        plate = PLATE_HEADERS.join(", "),
        vin = VIN_HEADERS.join(", "),
        engine = ENGINE_HEADERS.join(", "),
        city = CITY_HEADERS.join(", ")
    )]
    NoVehicleColumns { path: PathBuf, found: String },
}

/// Where the vehicle columns are in a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Columns {
    pub plate: Option<usize>,
    pub vin: Option<usize>,
    pub engine: Option<usize>,
    pub city: Option<usize>,
}

fn header_key(name: &str) -> String {
    name.trim_start_matches('\u{feff}')
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

impl Columns {
    /// Finds the columns; `None` when there is no vehicle column at all.
    pub fn find(headers: &StringRecord) -> Option<Columns> {
        let position = |aliases: &[&str]| {
            let keys: Vec<String> = aliases.iter().map(|alias| header_key(alias)).collect();
            headers
                .iter()
                .position(|header| keys.contains(&header_key(header)))
        };
        let columns = Columns {
            plate: position(&PLATE_HEADERS),
            vin: position(&VIN_HEADERS),
            engine: position(&ENGINE_HEADERS),
            city: position(&CITY_HEADERS),
        };
        (columns.plate.is_some() || columns.vin.is_some() || columns.engine.is_some()).then_some(columns)
    }
}

/// One data row, its fields fitted to the header, and what validation made of it.
#[derive(Debug, Clone)]
pub struct InputRow {
    /// 1-based data row (the header is not counted).
    pub row: u64,
    pub fields: StringRecord,
    pub lead: Result<Lead, Rejection>,
}

/// Streams a CSV lead list.
pub struct LeadReader {
    path: PathBuf,
    csv: csv::Reader<Box<dyn Read + Send>>,
    headers: StringRecord,
    columns: Columns,
    default_city: Option<City>,
    n_rows: u64,
    record: ByteRecord,
}

fn csv_builder() -> csv::ReaderBuilder {
    let mut builder = csv::ReaderBuilder::new();
    builder.flexible(true).has_headers(true);
    builder
}

impl LeadReader {
    pub fn open(path: &Path, default_city: Option<City>) -> Result<LeadReader, InputError> {
        let io_error = |source| InputError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io_error)?;
        let source: Box<dyn Read + Send> = Box::new(BufReader::with_capacity(1 << 16, file));
        let mut csv = csv_builder().from_reader(source);
        let header_bytes = csv.byte_headers().map_err(|e| io_error(csv_io(e)))?.clone();
        if header_bytes.is_empty() {
            return Err(InputError::Empty {
                path: path.to_path_buf(),
            });
        }
        let headers: StringRecord = header_bytes
            .iter()
            .map(|field| {
                String::from_utf8_lossy(field)
                    .trim_start_matches('\u{feff}')
                    .to_string()
            })
            .collect();
        let columns = Columns::find(&headers).ok_or_else(|| InputError::NoVehicleColumns {
            path: path.to_path_buf(),
            found: headers.iter().collect::<Vec<_>>().join(", "),
        })?;
        Ok(LeadReader {
            path: path.to_path_buf(),
            csv,
            headers,
            columns,
            default_city,
            n_rows: 0,
            record: ByteRecord::new(),
        })
    }

    pub fn headers(&self) -> &StringRecord {
        &self.headers
    }

    pub fn columns(&self) -> Columns {
        self.columns
    }

    /// The next row, `None` at the end.
    pub fn next_row(&mut self) -> Option<Result<InputRow, InputError>> {
        match self.csv.read_byte_record(&mut self.record) {
            Ok(false) => None,
            Err(error) => Some(Err(InputError::Io {
                path: self.path.clone(),
                source: csv_io(error),
            })),
            Ok(true) => {
                self.n_rows += 1;
                Some(Ok(self.decode_row()))
            }
        }
    }

    fn decode_row(&self) -> InputRow {
        let n_headers = self.headers.len();
        let mut problems = Vec::new();
        let mut fields = StringRecord::with_capacity(self.record.as_slice().len(), n_headers);
        for (i, bytes) in self.record.iter().enumerate().take(n_headers) {
            match std::str::from_utf8(bytes) {
                Ok(text) => fields.push_field(text),
                Err(_) => {
                    fields.push_field(&String::from_utf8_lossy(bytes));
                    problems.push(format!(
                        "column {} ({}) is not valid UTF-8: save the list as UTF-8 CSV",
                        i + 1,
                        &self.headers[i]
                    ));
                }
            }
        }
        let n_fields = self.record.len();
        if n_fields < n_headers {
            problems.push(format!(
                "the row has {n_fields} fields but the header has {n_headers}: a field is missing (check for a lost separator)"
            ));
            while fields.len() < n_headers {
                fields.push_field("");
            }
        } else if n_fields > n_headers {
            let extra: Vec<String> = self
                .record
                .iter()
                .skip(n_headers)
                .map(|f| String::from_utf8_lossy(f).into_owned())
                .collect();
            problems.push(format!(
                "the row has {n_fields} fields but the header has {n_headers} (an unquoted comma?); extra fields: {}",
                extra.join(" | ")
            ));
        }
        let field = |column: Option<usize>| column.and_then(|i| fields.get(i)).unwrap_or("");
        let raw = RawLead {
            plate: field(self.columns.plate),
            vin: field(self.columns.vin),
            engine: field(self.columns.engine),
            city: field(self.columns.city),
        };
        let lead = if problems.is_empty() {
            lead::validate(&raw, self.default_city)
        } else {
            Err(Rejection {
                reasons: problems,
                warnings: Vec::new(),
            })
        };
        InputRow {
            row: self.n_rows,
            fields,
            lead,
        }
    }
}

impl Iterator for LeadReader {
    type Item = Result<InputRow, InputError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_row()
    }
}

fn csv_io(error: csv::Error) -> io::Error {
    match error.into_kind() {
        csv::ErrorKind::Io(error) => error,
        other => io::Error::other(format!("{other:?}")),
    }
}

/// Counts data rows (for the progress bar's total) without validating them.
pub fn count_rows(path: &Path) -> io::Result<u64> {
    let file = BufReader::with_capacity(1 << 16, File::open(path)?);
    let mut csv = csv_builder().from_reader(file);
    let mut record = ByteRecord::new();
    let mut n_rows = 0;
    while csv.read_byte_record(&mut record).map_err(csv_io)? {
        n_rows += 1;
    }
    Ok(n_rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader_for(text: &[u8]) -> (tempfile::TempDir, Result<LeadReader, InputError>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("leads.csv");
        std::fs::write(&path, text).unwrap();
        let reader = LeadReader::open(&path, None);
        (dir, reader)
    }

    #[test]
    fn columns_found_by_any_alias_case_and_spacing_ignored() {
        let headers = StringRecord::from(vec!["Name", " license no ", "车架号", "ENGINE_NO", "投保城市"]);
        let columns = Columns::find(&headers).unwrap();
        assert_eq!(
            columns,
            Columns {
                plate: Some(1),
                vin: Some(2),
                engine: Some(3),
                city: Some(4)
            }
        );
        assert_eq!(Columns::find(&StringRecord::from(vec!["name", "phone"])), None);
    }

    #[test]
    fn rows_are_validated_and_numbered() {
        let (_dir, reader) =
            reader_for("\u{feff}name,车牌号,城市\n张三,京J97896,北京\n李四,京A1234,\n".as_bytes());
        let rows: Vec<InputRow> = reader.unwrap().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].row, 1);
        assert!(rows[0].lead.is_ok());
        assert_eq!(&rows[1].fields[0], "李四");
        assert!(
            rows[1]
                .lead
                .as_ref()
                .unwrap_err()
                .to_string()
                .contains("6 characters")
        );
    }

    #[test]
    fn ragged_and_undecodable_rows_are_rejected_not_fatal() {
        let mut text = b"name,plate\nshort\nx,\xbe\xa9J97896\na,AB,extra\n".to_vec();
        text.extend_from_slice("ok,京J97896\n".as_bytes());
        let (_dir, reader) = reader_for(&text);
        let rows: Vec<InputRow> = reader.unwrap().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 4);
        assert!(
            rows[0]
                .lead
                .as_ref()
                .unwrap_err()
                .to_string()
                .contains("1 fields but the header has 2")
        );
        assert_eq!(rows[0].fields.len(), 2);
        assert!(
            rows[1]
                .lead
                .as_ref()
                .unwrap_err()
                .to_string()
                .contains("not valid UTF-8")
        );
        assert!(
            rows[2]
                .lead
                .as_ref()
                .unwrap_err()
                .to_string()
                .contains("extra fields: extra")
        );
        assert!(rows[3].lead.is_ok());
    }

    #[test]
    fn a_file_without_vehicle_columns_is_refused_with_the_accepted_headers() {
        let (_dir, reader) = reader_for(b"name,phone\na,1\n");
        let message = reader.err().unwrap().to_string();
        assert!(message.contains("no vehicle column"));
        assert!(message.contains("车牌号码"));
        assert!(message.contains("name, phone"));
    }
}
