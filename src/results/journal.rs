//! The journal beside OUTPUT (`OUTPUT.journal`): the answers of a run that its ordered
//! results file cannot take yet.
//!
//! The ordered `.partial` can only grow by its next row, so a row waiting out a backoff holds
//! back every later answer; the journal does not wait. After each batch of answers the run
//! writes the rows it can in order, then journals the batch's answers that are not among
//! them: every answer is on disk after its batch, written once unless it waited in the
//! journal for an earlier row (`.partial` then takes it too). Each record names the row, the
//! vehicle it was for and the row's result columns: a decided row (`D`), or a row about to
//! wait out a backoff (`R`, with its failures so far and when it may go again), so that a
//! resumed run neither asks again for an answer it had nor gives a row a fresh retry budget.
//! A row that waited out a backoff has its answer journalled whatever happens to it, after
//! (and superseding) its `R` record.
//!
//! Records are CSV lines, each ending with a checksum of its fields: a record cut by a kill
//! (or torn by a power cut) is recognised and dropped with everything after it. The writer
//! pushes its buffer to the operating system after every batch of answers ([`Journal::flush`]),
//! and a background thread `fsync`s the file, and the `.partial` beside it
//! ([`Journal::sync_with`]), about once a second while the run writes ([`fsync_every`]), and
//! once more when the run ends.
//!
//! `--resume` reads the journal ([`load_live`]) and keeps the records that OUTPUT does not
//! already hold as final rows, then rewrites the journal with just those ([`Journal::create`]),
//! so the file never grows beyond one run's answers plus what earlier runs left unwritten.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use csv::StringRecord;

use crate::leads::input::csv_io_error;
use crate::results::outcome::{RowOutcome, Status};
use crate::results::output::with_suffix;

/// The journal of a run writing to `output`.
pub fn journal_path(output: &Path) -> PathBuf {
    with_suffix(output, ".journal")
}

/// The journal's first line: what it is, and its format's version. Version 2 added the
/// answer's time (`answered_at`, Unix ms, empty if none) before the checksum; a version 1
/// journal (from an older build) is read all the same, without it.
const MAGIC: &str = "bihu-renew journal 2";
const MAGIC_V1: &str = "bihu-renew journal 1";

/// Fields of a record, the checksum included.
const N_FIELDS: usize = 13;

/// One answer (or one row waiting for its next attempt).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// 1-based data row of the input.
    pub row: u64,
    /// The vehicle's identity ([`vehicle_id`]), to tell a journal made from another input.
    pub vehicle: u64,
    /// The result columns (without warnings: they come from the input row).
    pub outcome: RowOutcome,
    /// Set when the row was waiting out a backoff: `outcome` is its latest attempt's.
    pub retry: Option<Retry>,
}

/// Where a row waiting out a backoff stood.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Transient failures so far (they count against `--retries`).
    pub transient_failures: u32,
    /// Unix time in milliseconds when it may be sent again.
    pub due_unix_ms: u64,
}

impl Record {
    /// Whether `--resume` keeps this record: a final answer, or a row in its backoff.
    pub fn is_live(&self) -> bool {
        self.retry.is_some() || self.outcome.status.is_final()
    }
}

/// A vehicle's identity as the journal stores it: 64 bits of [`crate::leads::lead::VehicleKey::fingerprint`],
/// which, unlike the run's in-memory dedupe key, is the same in every build.
pub fn vehicle_id(lead: &crate::leads::lead::Lead) -> u64 {
    (lead.fingerprint() >> 64) as u64
}

pub fn unix_ms_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// FNV-1a over the fields, with a separator that cannot occur in CSV text unnoticed.
fn checksum<'a>(fields: impl IntoIterator<Item = &'a str>) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for field in fields {
        for &byte in field.as_bytes().iter().chain(&[0x1f]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// `value` as 16 lower-case hex digits (`{:016x}`), in `buffer`.
fn hex_u64(value: u64, buffer: &mut [u8; 16]) -> &str {
    hex::encode_to_slice(value.to_be_bytes(), buffer).expect("8 bytes are 16 hex digits");
    std::str::from_utf8(buffer).expect("hex digits are ASCII")
}

/// How often the background thread `fsync`s a changing journal: `BIHU_JOURNAL_FSYNC_MS`
/// milliseconds (default 1000), or never with `off` (measured in BENCHMARKS.md).
pub fn fsync_every() -> Option<Duration> {
    match std::env::var("BIHU_JOURNAL_FSYNC_MS") {
        Ok(text) if text.trim() == "off" => None,
        Ok(text) => Some(Duration::from_millis(text.trim().parse().unwrap_or(1000).max(1))),
        Err(_) => Some(Duration::from_secs(1)),
    }
}

/// Whether runs keep a journal: always, except with `BIHU_JOURNAL=off`, which exists only to
/// measure what the journal costs (BENCHMARKS.md); without it `--resume` loses the answers
/// beyond `.partial`.
pub fn enabled() -> bool {
    !std::env::var("BIHU_JOURNAL").is_ok_and(|value| value.trim() == "off")
}

/// The journal of the run in progress, open for appending.
pub struct Journal {
    path: PathBuf,
    csv: csv::Writer<File>,
    /// The same file, for `fstat` and `fsync`.
    file: File,
    dirty: bool,
    syncer: Option<Syncer>,
    /// OUTPUT's `.partial`, synced with the journal ([`Journal::sync_with`]).
    companion: Option<File>,
}

impl Journal {
    /// Starts the journal at `path` holding `carried` (records an earlier run left that are
    /// still needed), replacing any earlier file only once the new one is on disk.
    pub fn create<'a>(path: &Path, carried: impl IntoIterator<Item = &'a Record>) -> io::Result<Journal> {
        let fresh = with_suffix(path, ".new");
        let file = File::create(&fresh)?;
        let mut journal = Journal {
            path: path.to_path_buf(),
            csv: csv::WriterBuilder::new()
                .flexible(true)
                .buffer_capacity(1 << 16)
                .from_writer(file.try_clone()?),
            file,
            dirty: false,
            syncer: None,
            companion: None,
        };
        journal.csv.write_record([MAGIC]).map_err(csv_io_error)?;
        for record in carried {
            journal.append(record)?;
        }
        journal.csv.flush()?;
        journal.file.sync_data()?;
        fs::rename(&fresh, path)?;
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            // The rename itself survives a power cut only once the directory is synced.
            File::open(dir)?.sync_all()?;
        }
        journal.dirty = false;
        journal.syncer = fsync_every().map(|every| Syncer::start(vec![journal.file.try_clone()], every));
        Ok(journal)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Has the background thread `fsync` `companion` (OUTPUT's `.partial`) with the journal:
    /// the answers the journal leaves to it survive a power cut as the journal's own do.
    pub fn sync_with(&mut self, companion: File) {
        if let Some(syncer) = self.syncer.take() {
            syncer.stop();
        }
        self.syncer = fsync_every()
            .map(|every| Syncer::start(vec![companion.try_clone(), self.file.try_clone()], every));
        self.companion = Some(companion);
    }

    /// Buffers one record; [`Journal::flush`] pushes it out.
    pub fn append(&mut self, record: &Record) -> io::Result<()> {
        self.append_parts(record.row, record.vehicle, &record.outcome, record.retry)
    }

    /// [`Journal::append`] from borrowed parts.
    pub fn append_parts(
        &mut self,
        row_number: u64,
        vehicle_id: u64,
        outcome: &RowOutcome,
        retry: Option<Retry>,
    ) -> io::Result<()> {
        let (mut row, mut http, mut attempts, mut failures, mut due, mut answered) = (
            itoa::Buffer::new(),
            itoa::Buffer::new(),
            itoa::Buffer::new(),
            itoa::Buffer::new(),
            itoa::Buffer::new(),
            itoa::Buffer::new(),
        );
        let (mut vehicle, mut check) = ([0u8; 16], [0u8; 16]);
        let (kind, failures, due) = match &retry {
            Some(retry) => (
                "R",
                failures.format(retry.transient_failures),
                due.format(retry.due_unix_ms),
            ),
            None => ("D", "", ""),
        };
        let fields = [
            kind,
            row.format(row_number),
            hex_u64(vehicle_id, &mut vehicle),
            outcome.status.as_str(),
            outcome.http_status.map_or("", |status| http.format(status)),
            &outcome.message,
            &outcome.renewal_token,
            &outcome.quote_url,
            attempts.format(outcome.attempts),
            failures,
            due,
            outcome.answered_at.map_or("", |at| answered.format(at)),
        ];
        let check = hex_u64(checksum(fields), &mut check);
        self.csv
            .write_record(fields.into_iter().chain([check]))
            .map_err(csv_io_error)?;
        self.dirty = true;
        Ok(())
    }

    /// Whether records were appended since the last flush.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Pushes the buffered records to the operating system (they then survive a kill of the
    /// process), and fails if the file is gone from its directory or the last `fsync` failed.
    /// Called after every batch, records or not: the next `fsync` then covers the companion's
    /// rows of the batch too.
    pub fn flush(&mut self) -> io::Result<()> {
        self.csv.flush()?;
        self.dirty = false;
        if let Some(syncer) = &self.syncer {
            syncer.state.written.store(true, Ordering::Release);
        }
        if let Some(error) = self.syncer.as_ref().and_then(|syncer| syncer.take_error()) {
            return Err(error);
        }
        if self.file.metadata()?.nlink() == 0 {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "the file was deleted (is its directory gone?)",
            ));
        }
        Ok(())
    }

    /// Flushes and `fsync`s: everything appended survives a power cut, and so does the
    /// companion's content: the answers the journal left to it are as safe as its own.
    pub fn finish(mut self) -> io::Result<()> {
        self.flush()?;
        if let Some(syncer) = self.syncer.take() {
            syncer.stop();
        }
        // Both are synced whatever the first gives; the first failure is told.
        let companion = self.companion.as_ref().map_or(Ok(()), File::sync_data);
        let own = self.file.sync_data();
        companion.and(own)
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        if let Some(syncer) = self.syncer.take() {
            syncer.stop();
        }
    }
}

/// The background `fsync` of a journal (and of its companion).
struct Syncer {
    state: Arc<SyncState>,
    stop: mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

#[derive(Default)]
struct SyncState {
    /// Set by each flush; the thread syncs when it finds it set.
    written: AtomicBool,
    error: Mutex<Option<io::Error>>,
}

impl Syncer {
    fn start(files: Vec<io::Result<File>>, every: Duration) -> Syncer {
        let state = Arc::new(SyncState::default());
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = {
            let state = state.clone();
            std::thread::spawn(move || {
                let files = match files.into_iter().collect::<io::Result<Vec<File>>>() {
                    Ok(files) => files,
                    Err(error) => {
                        *state.error.lock().expect("sync lock") = Some(error);
                        return;
                    }
                };
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    if state.written.swap(false, Ordering::AcqRel)
                        && let Err(error) = files.iter().try_for_each(File::sync_data)
                    {
                        *state.error.lock().expect("sync lock") = Some(error);
                        return;
                    }
                }
            })
        };
        Syncer { state, stop, thread }
    }

    fn take_error(&self) -> Option<io::Error> {
        self.state.error.lock().expect("sync lock").take()
    }

    fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }
}

/// Reads a journal's whole records, in order, stopping at the first torn or damaged one.
/// Returns them with the number of bytes they span (what is beyond is damaged).
pub fn read(path: &Path) -> io::Result<(Vec<Record>, u64)> {
    let mut records = Vec::new();
    let end = read_each(path, |record| records.push(record))?;
    Ok((records, end))
}

fn read_each(path: &Path, mut each: impl FnMut(Record)) -> io::Result<u64> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    // A record is whole only with its newline: the last one may have lost just that.
    let ends_with_newline = {
        use std::os::unix::fs::FileExt;
        let mut last = [0u8; 1];
        len > 0 && file.read_exact_at(&mut last, len - 1).is_ok() && last[0] == b'\n'
    };
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(BufReader::with_capacity(1 << 16, file));
    let mut fields = StringRecord::new();
    let mut good_end = 0;
    let mut first = true;
    loop {
        match csv.read_record(&mut fields) {
            Ok(true) => {}
            Ok(false) => break,
            Err(error) if error.is_io_error() => return Err(csv_io_error(error)),
            Err(_) => break,
        }
        if first {
            if fields.len() != 1 || (&fields[0] != MAGIC && &fields[0] != MAGIC_V1) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("not a journal of bihu-renew (its first line is not {MAGIC:?})"),
                ));
            }
            first = false;
            good_end = csv.position().byte();
            if good_end == len && !ends_with_newline {
                good_end = 0;
                break;
            }
            continue;
        }
        let end = csv.position().byte();
        if end == len && !ends_with_newline {
            break;
        }
        let Some(record) = parse(&fields) else { break };
        good_end = end;
        each(record);
    }
    Ok(good_end)
}

fn parse(fields: &StringRecord) -> Option<Record> {
    // Version 1's records lack the answer's time.
    let n = fields.len();
    if n != N_FIELDS && n != N_FIELDS - 1 {
        return None;
    }
    let check = u64::from_str_radix(&fields[n - 1], 16).ok()?;
    if checksum(fields.iter().take(n - 1)) != check {
        return None;
    }
    let answered_at = match (n == N_FIELDS).then(|| &fields[11]) {
        None | Some("") => None,
        Some(text) => Some(text.parse().ok()?),
    };
    let number = |i: usize| fields[i].parse::<u64>().ok();
    let retry = match &fields[0] {
        "D" => None,
        "R" => Some(Retry {
            transient_failures: fields[9].parse().ok()?,
            due_unix_ms: number(10)?,
        }),
        _ => return None,
    };
    Some(Record {
        row: number(1)?,
        vehicle: u64::from_str_radix(&fields[2], 16).ok()?,
        outcome: RowOutcome {
            status: Status::parse(&fields[3])?,
            http_status: match &fields[4] {
                "" => None,
                text => Some(text.parse().ok()?),
            },
            message: fields[5].to_string(),
            renewal_token: fields[6].to_string(),
            quote_url: fields[7].to_string(),
            attempts: fields[8].parse().ok()?,
            warnings: Vec::new(),
            answered_at,
        },
        retry,
    })
}

/// What `--resume` takes from a journal: for each row that OUTPUT does not hold as final
/// (`final_in_output` says which do), its latest record, if that is a final answer or a row
/// in its backoff. A torn or damaged tail is dropped (and said so in the log).
pub fn load_live(path: &Path, final_in_output: impl Fn(u64) -> bool) -> io::Result<BTreeMap<u64, Record>> {
    let mut live = BTreeMap::new();
    let end = read_each(path, |record| {
        if !final_in_output(record.row) {
            live.insert(record.row, record);
        }
    })?;
    let len = fs::metadata(path)?.len();
    if end < len {
        tracing::warn!(
            journal = %path.display(),
            dropped_bytes = len - end,
            "the journal's last record is torn; it is dropped and its row is requested again"
        );
    }
    live.retain(|_, record| record.is_live());
    Ok(live)
}

/// Removes a journal whose run is complete (OUTPUT then holds every answer).
pub fn remove(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

/// Cuts a journal after its last whole record (a torn record from a kill), keeping the rest.
pub fn truncate_to_complete(path: &Path) -> io::Result<()> {
    let end = read_each(path, |_| {})?;
    if end < fs::metadata(path)?.len() {
        OpenOptions::new().write(true).open(path)?.set_len(end)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The journal's vehicle id and hex fields are fed without building the key or a string:
    /// they must stay what they were (`VehicleKey::fingerprint`, `{:016x}`), or every journal
    /// left by an earlier build would read as another input's.
    #[test]
    fn vehicle_ids_and_hex_fields_are_what_earlier_builds_wrote() {
        use crate::leads::city::City;
        use crate::leads::lead::Lead;

        let city = City::by_id(11).expect("a city");
        let plate = Lead {
            plate: Some("京A12345".into()),
            vin: None,
            engine: None,
            city,
            warnings: Vec::new(),
        };
        let vin = Lead {
            plate: None,
            vin: Some("LSVAU2180N2183294".into()),
            engine: Some("CSS123456".into()),
            ..plate.clone()
        };
        for lead in [&plate, &vin] {
            assert_eq!(lead.fingerprint(), lead.key().fingerprint(), "{lead:?}");
            assert_eq!(vehicle_id(lead), (lead.key().fingerprint() >> 64) as u64);
        }
        assert_ne!(vehicle_id(&plate), vehicle_id(&vin));
        for value in [0, 1, 0xabc, u64::MAX, 0x0123_4567_89ab_cdef] {
            assert_eq!(hex_u64(value, &mut [0; 16]), format!("{value:016x}"));
        }
    }

    fn record(row: u64, status: Status, retry: Option<Retry>) -> Record {
        Record {
            row,
            vehicle: 0xdead_beef_0000_0000 + row,
            outcome: RowOutcome {
                status,
                http_status: Some(200),
                message: "续保成功, \"quoted\"\nsecond line".into(),
                renewal_token: "RT".into(),
                quote_url: "http://h/q?a=1&b=2".into(),
                attempts: 2,
                warnings: Vec::new(),
                answered_at: Some(1_796_164_795_000 + row as i64),
            },
            retry,
        }
    }

    #[test]
    fn a_version_1_journal_reads_without_answer_times() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv.journal");
        let fields = [
            "D",
            "3",
            "00000000deadbeef",
            "renewed",
            "200",
            "ok",
            "RT",
            "",
            "1",
            "",
            "",
        ];
        let check = format!("{:016x}", checksum(fields));
        let line = fields.join(",") + "," + &check;
        std::fs::write(&path, format!("{MAGIC_V1}\n{line}\n")).unwrap();
        let (records, _) = read(&path).unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].row, 3);
        assert_eq!(records[0].outcome.renewal_token, "RT");
        assert_eq!(records[0].outcome.answered_at, None);
    }

    #[test]
    fn records_read_back_and_a_torn_tail_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv.journal");
        let written = [
            record(3, Status::Renewed, None),
            record(
                1,
                Status::ServerError,
                Some(Retry {
                    transient_failures: 1,
                    due_unix_ms: 1_700_000_000_123,
                }),
            ),
            record(2, Status::NotRenewable, None),
        ];
        let mut journal = Journal::create(&path, &written[..1]).unwrap();
        for record in &written[1..] {
            journal.append(record).unwrap();
        }
        journal.finish().unwrap();
        let (read_back, end) = read(&path).unwrap();
        assert_eq!(read_back, written);
        let bytes = fs::read(&path).unwrap();
        assert_eq!(end, bytes.len() as u64);

        // Every cut inside the last record drops that record only.
        let last_start = {
            let mut without_last = Journal::create(&dir.path().join("two"), &written[..2]).unwrap();
            without_last.flush().unwrap();
            fs::metadata(dir.path().join("two")).unwrap().len() as usize
        };
        for cut in last_start..bytes.len() {
            fs::write(&path, &bytes[..cut]).unwrap();
            let (records, end) = read(&path).unwrap();
            assert_eq!(records, written[..2], "cut at {cut}");
            assert_eq!(end, last_start as u64);
        }
        truncate_to_complete(&path).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().len(), last_start as u64);

        // A changed byte fails the checksum.
        let mut damaged = bytes.clone();
        let at = bytes.len() - 20;
        damaged[at] = if damaged[at] == b'0' { b'1' } else { b'0' };
        fs::write(&path, &damaged).unwrap();
        assert_eq!(read(&path).unwrap().0, written[..2]);
    }

    #[test]
    fn resume_keeps_the_latest_final_or_waiting_record_of_rows_not_final_in_output() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let retry = Some(Retry {
            transient_failures: 1,
            due_unix_ms: 5,
        });
        let records = [
            record(1, Status::Renewed, None),
            record(2, Status::ServerError, retry),
            record(3, Status::ServerError, retry),
            record(3, Status::Renewed, None),
            record(4, Status::ServerError, None),
            record(5, Status::ServerError, retry),
        ];
        Journal::create(&path, &records).unwrap().finish().unwrap();
        let live = load_live(&path, |row| row == 1).unwrap();
        let rows: Vec<(u64, Status, bool)> = live
            .values()
            .map(|r| (r.row, r.outcome.status, r.retry.is_some()))
            .collect();
        assert_eq!(
            rows,
            [
                (2, Status::ServerError, true),
                (3, Status::Renewed, false),
                (5, Status::ServerError, true)
            ]
        );
    }

    #[test]
    fn a_deleted_journal_fails_its_next_flush() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let mut journal = Journal::create(&path, &[]).unwrap();
        journal.append(&record(1, Status::Renewed, None)).unwrap();
        journal.flush().unwrap();
        fs::remove_file(&path).unwrap();
        journal.append(&record(2, Status::Renewed, None)).unwrap();
        assert!(journal.flush().is_err());
    }

    #[test]
    fn another_file_is_not_a_journal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        fs::write(&path, "name,plate\n").unwrap();
        assert!(read(&path).is_err());
    }
}
