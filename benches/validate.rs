//! The cost per row of reading a lead list: `lead::validate` alone over a mix of rows, and
//! `LeadReader` (CSV parsing, UTF-8 checks, validation) over a generated 100,000-row list.
//!
//! `cargo bench --bench validate`; criterion reports elements/s, i.e. rows/s.

use std::fmt::Write as _;
use std::hint::black_box;

use bihu_renew::leads::input::{InputOptions, LeadReader};
use bihu_renew::leads::lead::{self, RawLead};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

// The binary's allocator (see `src/main.rs`), so that the figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Clean rows as most lists carry them, noisy ones as clerks type them, and the rejections.
const MIX: [[&str; 4]; 12] = [
    ["京J97896", "", "", ""],
    ["粤B12345", "", "", "深圳"],
    ["沪A5B7C9", "", "", "6"],
    ["苏E1234X", "LS4ASE2A2GJ137027", "2192209", "16"],
    [" 京 j·978-96 ", "", "", ""],
    ["京Ｊ９７８９６", "", "", "1"],
    ["", "LS4ASE2A2GJ137027", "4G15S 4L9AM4623", "1"],
    ["", " ls4ase2a2gj137027 ", "2192209", "北京市"],
    ["粤BD12345", "LS4ASE2A2GJ137027", "2192209", ""],
    ["粤B12345", "", "", "1"],
    ["京A1234", "", "", ""],
    ["藏A12345", "", "", ""],
];

const LETTERS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
const SERIAL: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ0123456789";

/// Distinct ordinary Beijing plates, as `benches/run.sh` generates them.
fn plate(i: usize) -> String {
    let mut k = i;
    let mut serial = [0u8; 5];
    for slot in serial.iter_mut().rev() {
        *slot = SERIAL[k % 34];
        k /= 34;
    }
    format!(
        "京{}{}",
        LETTERS[k % 24] as char,
        std::str::from_utf8(&serial).unwrap()
    )
}

fn validate(c: &mut Criterion) {
    let mut group = c.benchmark_group("validate");
    group.throughput(Throughput::Elements(MIX.len() as u64));
    group.bench_function("mix", |b| {
        b.iter(|| {
            for [plate, vin, engine, city] in &MIX {
                let raw = RawLead {
                    plate,
                    vin,
                    engine,
                    city,
                };
                black_box(lead::validate(black_box(&raw), None)).ok();
            }
        })
    });
    let plates: Vec<String> = (0..1000).map(plate).collect();
    group.throughput(Throughput::Elements(plates.len() as u64));
    group.bench_function("clean_plate", |b| {
        b.iter(|| {
            for plate in &plates {
                let raw = RawLead {
                    plate,
                    ..RawLead::default()
                };
                black_box(lead::validate(black_box(&raw), None)).ok();
            }
        })
    });
    group.finish();
}

const N_ROWS: usize = 100_000;

fn read(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let plates_only = dir.path().join("plates.csv");
    let mixed = dir.path().join("mixed.csv");
    let mut text = String::from("name,LicenseNo\n");
    for i in 0..N_ROWS {
        writeln!(text, "lead{i},{}", plate(i)).unwrap();
    }
    std::fs::write(&plates_only, &text).unwrap();
    text = String::from("name,LicenseNo,CarVin,EngineNo,CityCode\n");
    for i in 0..N_ROWS {
        let [plate, vin, engine, city] = MIX[i % MIX.len()];
        writeln!(text, "lead{i},{plate},{vin},{engine},{city}").unwrap();
    }
    std::fs::write(&mixed, &text).unwrap();

    let mut group = c.benchmark_group("read");
    group.sample_size(20);
    group.throughput(Throughput::Elements(N_ROWS as u64));
    for (name, path) in [("plates_100k", &plates_only), ("mixed_100k", &mixed)] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut reader = LeadReader::open(path, &InputOptions::default()).unwrap();
                let mut n_ok = 0;
                while let Some(row) = reader.next_row() {
                    n_ok += usize::from(row.unwrap().lead.is_ok());
                }
                black_box(n_ok)
            })
        });
    }
    // The run's survey needs the leads only.
    group.bench_function("plates_100k_leads_only", |b| {
        b.iter(|| {
            let mut reader = LeadReader::open(&plates_only, &InputOptions::default()).unwrap();
            let mut n_ok = 0;
            while let Some(lead) = reader.next_lead() {
                n_ok += usize::from(lead.unwrap().is_ok());
            }
            black_box(n_ok)
        })
    });
    group.finish();
}

criterion_group!(benches, validate, read);
criterion_main!(benches);
