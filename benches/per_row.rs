//! The tool's own cost per row, without any network: normalise + validate, sign, serialise
//! the request body, read an answer, and write the results row.
//!
//! `cargo bench --bench per_row`; `benches/run.sh` reports the figure in ns/row.

use std::hint::black_box;

use bihu_renew::api::protocol::{self, Agent, RenewalRequest};
use bihu_renew::api::secret::Secret;
use bihu_renew::leads::lead::{self, RawLead};
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
                        RowOutcome::from_answer(answer, 1, &quote_page, token)
                    }
                    Err(rejection) => RowOutcome::invalid_input(rejection.to_string(), rejection.warnings),
                };
                writer.write_row(&fields, i as u64 + 1, &outcome).unwrap();
            }
        })
    });
    group.finish();
}

criterion_group!(benches, per_row);
criterion_main!(benches);
