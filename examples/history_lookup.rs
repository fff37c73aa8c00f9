//! The answer history at scale (issue 19's figure): fills a history file with N answers
//! (default 10,000,000: 2,500,000 vehicles answered four times each over 28 days, in 23
//! cities, two agents) unless it already holds them, then times single lookups as a run
//! makes them (`History::lookup`, a 7-day window), hits and misses mixed, and prints the
//! percentiles and the file's size. `benches/history.sh` runs it; by hand:
//!
//! ```sh
//! cargo run --release --example history_lookup -- target/history-10m.sqlite [N] [LOOKUPS]
//! ```

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bihu_renew::leads::lead::VehicleKey;
use bihu_renew::results::history::{Answer, History};
use bihu_renew::results::outcome::Status;

const PROVINCES: [char; 20] = [
    '京', '沪', '粤', '浙', '苏', '鲁', '川', '鄂', '湘', '豫', '闽', '皖', '冀', '辽', '吉', '黑', '陕',
    '晋', '渝', '津',
];
const ANSWERS_PER_VEHICLE: u64 = 4;
const DAY_MS: i64 = 86_400_000;

/// Vehicle `j`'s key: a distinct plate for every j below 52,000,000.
fn vehicle(j: u64) -> VehicleKey {
    let province = PROVINCES[(j % 20) as usize];
    let letter = (b'A' + ((j / 20) % 26) as u8) as char;
    VehicleKey::Plate {
        plate: format!("{province}{letter}{:05}", (j / 520) % 100_000),
        city: (j % 23) as u8 + 1,
    }
}

/// A small deterministic generator (xorshift), so runs are comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let path = PathBuf::from(args.next().unwrap_or_else(|| "target/history-10m.sqlite".into()));
    let n: u64 = args
        .next()
        .map_or(10_000_000, |t| t.parse().expect("N is a number"));
    let n_lookups: usize = args
        .next()
        .map_or(200_000, |t| t.parse().expect("LOOKUPS is a number"));
    let vehicles = n / ANSWERS_PER_VEHICLE;
    let now = bihu_renew::results::history::unix_ms_now();

    let mut history = History::open(&path).expect("the history opens");
    let have = history.count().expect("count");
    if have < n {
        eprintln!(
            "filling {} with {} answers ({have} there) ...",
            path.display(),
            n - have
        );
        let started = Instant::now();
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut batch = Vec::with_capacity(50_000);
        // Answer i: vehicle i % vehicles, round i / vehicles (older rounds first).
        for i in have..n {
            let round = (i / vehicles) as i64;
            let status = match rng.next() % 10 {
                0..=5 => Status::Renewed,
                6..=8 => Status::NotRenewable,
                _ => Status::InvalidParams,
            };
            batch.push(Answer {
                agent_id: if rng.next().is_multiple_of(8) {
                    "103"
                } else {
                    "102"
                }
                .to_string(),
                vehicle: vehicle(i % vehicles),
                status,
                http_status: Some(match status {
                    Status::Renewed => 200,
                    Status::NotRenewable => 206,
                    _ => 412,
                }),
                renewal_token: if status == Status::Renewed {
                    format!("{:032X}", rng.next() as u128 * 0x1_0000_0001)
                } else {
                    String::new()
                },
                message: if status == Status::Renewed {
                    "续保成功"
                } else {
                    "没有续保信息"
                }
                .to_string(),
                // Rounds 7 days apart, within a round spread over a day: 28 days in all.
                answered_at: now - (ANSWERS_PER_VEHICLE as i64 - round) * 7 * DAY_MS
                    + (rng.next() % DAY_MS as u64) as i64,
            });
            if batch.len() == batch.capacity() {
                history.record_all(&batch).expect("recorded");
                batch.clear();
            }
        }
        history.record_all(&batch).expect("recorded");
        eprintln!("filled in {:.1} s", started.elapsed().as_secs_f64());
        drop(history);
        history = History::open(&path).expect("the history opens");
    }
    let answers = history.count().expect("count");

    // Lookups: 80% known vehicles, 20% never answered; agent 102; a 7-day window.
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let window = Duration::from_secs(7 * 86_400);
    let mut times = Vec::with_capacity(n_lookups);
    let mut found = 0usize;
    for _ in 0..n_lookups {
        let j = if rng.next().is_multiple_of(5) {
            vehicles + rng.next() % vehicles
        } else {
            rng.next() % vehicles
        };
        let key = vehicle(j);
        let started = Instant::now();
        let answer = history.lookup("102", &key, now, window).expect("looked up");
        times.push(started.elapsed());
        found += usize::from(answer.is_some());
    }
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    let micros = |d: Duration| d.as_secs_f64() * 1e6;
    let size = |p: &std::path::Path| std::fs::metadata(p).map_or(0, |m| m.len());
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    println!(
        "history of {answers} answers ({vehicles} vehicles): {n_lookups} lookups, {found} found within 7 days"
    );
    println!(
        "lookup µs: p50 {:.1}, p90 {:.1}, p99 {:.1}, p99.9 {:.1}, max {:.1}",
        micros(at(0.50)),
        micros(at(0.90)),
        micros(at(0.99)),
        micros(at(0.999)),
        micros(*times.last().unwrap())
    );
    println!(
        "file size: {:.1} MB ({:.0} bytes per answer), WAL {:.1} MB",
        size(&path) as f64 / 1e6,
        size(&path) as f64 / answers as f64,
        size(&wal) as f64 / 1e6
    );
}
