//! The tool's own cost per row, without any network: normalise + validate, sign, serialise
//! the request body, read an answer, and write the results row.
//!
//! `cargo bench --bench per_row`; `benches/run.sh` reports the figure in ns/row.

use std::hint::black_box;

use bihu_renew::api::protocol::{self, Agent, RenewalRequest};
use bihu_renew::api::secret::Secret;
use bihu_renew::leads::lead::{self, RawLead};
use bihu_renew::results::journal;
use bihu_renew::results::outcome::RowOutcome;
use bihu_renew::results::output::{OutputStyle, ResultWriter};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use csv::StringRecord;

const ROWS: [[&str; 4]; 4] = [
    [" 京 j·978-96 ", "", "", ""],
    ["粤B12345", "LS4ASE2A2GJ137027", "2192209", "深圳"],
    ["", "LS4ASE2A2GJ137027", "4G15S 4L9AM4623", "1"],
    ["粤BD12345", "LS4ASE2A2GJ137027", "2192209", ""],
];

fn per_row(c: &mut Criterion) {
    let agent = Agent {
        agent_id: "102".into(),
        secret: Secret::new("xxxxx"),
        secret_label: "secretKey".into(),
    };
    let quote_page = protocol::QuotePage::new(&url::Url::parse("http://127.0.0.1:8080/").unwrap());
    let token = "4773EEC3EE9B572851C11DF730DCE827";
    let answer =
        br#"{"code":200,"msg":"\u7eed\u4fdd\u6210\u529f","RenewalToken":"0123456789ABCDEF0123456789ABCDEF"}"#;
    let mut group = c.benchmark_group("per_row");
    group.throughput(Throughput::Elements(ROWS.len() as u64));
    group.bench_function("validate_sign_serialise_write", |b| {
        let mut writer = ResultWriter::to_sink(Box::new(std::io::sink()), OutputStyle::default());
        b.iter(|| {
            for (i, [plate, vin, engine, city]) in ROWS.iter().enumerate() {
                let raw = RawLead {
                    plate,
                    vin,
                    engine,
                    city,
                };
                let fields = StringRecord::from(vec![*plate, *vin, *engine, *city]);
                let outcome = match lead::validate(black_box(&raw), None) {
                    Ok(lead) => {
                        let request = RenewalRequest::signed(&lead, &agent, token, 1_700_000_000);
                        black_box(serde_json::to_vec(&request).unwrap());
                        let answer = protocol::classify(200, None, black_box(answer));
                        RowOutcome::from_answer(answer, 1, &quote_page, token, 1_796_164_795_000)
                    }
                    Err(rejection) => RowOutcome::invalid_input(rejection.to_string(), rejection.warnings),
                };
                writer.write_row(&fields, i as u64 + 1, &outcome).unwrap();
            }
        })
    });
    group.finish();
}

/// What the journal adds per answered row: the vehicle's id, one record, and a flush (a
/// `write` and an `fstat`) every 8 records, as a batch of answers gets, into a real file
/// (fsync left to its background thread, as in a run).
fn journal(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let quote_page = protocol::QuotePage::new(&url::Url::parse("http://127.0.0.1:8080/").unwrap());
    let token = "4773EEC3EE9B572851C11DF730DCE827";
    let answer =
        br#"{"code":200,"msg":"\u7eed\u4fdd\u6210\u529f","RenewalToken":"0123456789ABCDEF0123456789ABCDEF"}"#;
    let outcome = RowOutcome::from_answer(
        protocol::classify(200, None, answer),
        1,
        &quote_page,
        token,
        1_796_164_795_000,
    );
    let lead = lead::validate(
        &RawLead {
            plate: "京J97896",
            ..Default::default()
        },
        None,
    )
    .unwrap();
    let mut group = c.benchmark_group("journal");
    group.throughput(Throughput::Elements(8));
    group.bench_function("append_8_then_flush", |b| {
        let path = dir.path().join("out.csv.journal");
        let mut journal = journal::Journal::create(&path, &[]).unwrap();
        let mut row = 0;
        b.iter(|| {
            for _ in 0..8 {
                row += 1;
                let vehicle = journal::vehicle_id(black_box(&lead));
                journal.append_parts(row, vehicle, &outcome, None).unwrap();
            }
            journal.flush().unwrap();
        })
    });
    group.finish();
}

criterion_group!(benches, per_row, journal);
criterion_main!(benches);
