//! The answer history (issue 19): the `history` subcommand over a file made through the
//! library, as `run --history` and the service make it.

use std::time::Duration;

use bihu_renew::error::exit::{OK, USAGE};
use bihu_renew::leads::lead::VehicleKey;
use bihu_renew::results::history::{self, Answer, History};
use bihu_renew::results::outcome::Status;

use crate::support::run_binary;

fn answer(vehicle: VehicleKey, status: Status, answered_at: i64) -> Answer {
    Answer {
        agent_id: "102".into(),
        vehicle,
        status,
        http_status: Some(if status == Status::Renewed { 200 } else { 206 }),
        renewal_token: if status == Status::Renewed {
            "RT-1".into()
        } else {
            String::new()
        },
        message: "ok".into(),
        answered_at,
    }
}

#[tokio::test]
async fn history_lists_a_vehicle_newest_first_and_prunes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.sqlite");
    let now = history::unix_ms_now();
    let day = 86_400_000;
    let plate = VehicleKey::Plate {
        plate: "京A12345".into(),
        city: 1,
    };
    let vin = VehicleKey::Vin {
        vin: "LSVAU2180N2183294".into(),
        engine: "E123".into(),
        city: 1,
    };
    History::open(&path)
        .unwrap()
        .record_all(&[
            answer(plate.clone(), Status::NotRenewable, now - 10 * day),
            answer(plate.clone(), Status::Renewed, now - day),
            answer(vin, Status::Renewed, now - 2 * day),
        ])
        .unwrap();
    let file = path.to_str().unwrap();

    // Noise in the plate is ignored, as in a lead list.
    let shown = run_binary(&["history", "--history", file, "京a 123-45"], &[]).await;
    assert_eq!(shown.code, OK, "{}", shown.stderr);
    let mut csv = csv::Reader::from_reader(shown.stdout.as_slice());
    assert_eq!(
        csv.headers().unwrap().iter().collect::<Vec<_>>(),
        bihu_renew::cmd::history::COLUMNS
    );
    let rows: Vec<csv::StringRecord> = csv.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(&rows[0][6], "renewed", "newest first");
    assert_eq!(&rows[1][6], "not_renewable");
    assert_eq!(history::parse_time(&rows[0][0]), Some((now - day) / 1000 * 1000));

    let by_vin = run_binary(&["history", "--history", file, "lsvau2180n2183294"], &[]).await;
    assert_eq!(by_vin.code, OK, "{}", by_vin.stderr);
    assert!(
        by_vin.stdout_text().contains("LSVAU2180N2183294,E123,1,renewed"),
        "{}",
        by_vin.stdout_text()
    );

    let pruned = run_binary(&["history", "--history", file, "--prune", "7d"], &[]).await;
    assert_eq!(pruned.code, OK, "{}", pruned.stderr);
    assert!(
        pruned.stderr.contains("pruned 1 answer given before"),
        "{}",
        pruned.stderr
    );
    assert!(
        pruned.stdout_text().starts_with("answers\t2\n"),
        "{}",
        pruned.stdout_text()
    );
    let history = History::open(&path).unwrap();
    assert_eq!(
        history
            .lookup("102", &plate, now, Duration::from_secs(30 * 86_400))
            .unwrap()
            .map(|a| a.status),
        Some(Status::Renewed)
    );
    assert_eq!(history.list("京A12345").unwrap().len(), 1);

    let unknown = run_binary(&["history", "--history", file, "沪C00000"], &[]).await;
    assert_eq!(unknown.code, OK);
    assert!(unknown.stderr.contains("holds no answer"), "{}", unknown.stderr);
}

#[tokio::test]
async fn history_needs_an_existing_file() {
    let missing = run_binary(&["history", "京A12345"], &[]).await;
    assert_eq!(missing.code, USAGE);
    assert!(missing.stderr.contains("--history FILE"), "{}", missing.stderr);
    let dir = tempfile::tempdir().unwrap();
    let absent = dir.path().join("none.sqlite");
    let absent = run_binary(&["history", "--history", absent.to_str().unwrap()], &[]).await;
    assert_eq!(absent.code, USAGE);
    assert!(absent.stderr.contains("does not exist"), "{}", absent.stderr);
    let bad = run_binary(&["history", "--history", "x", "--prune", "7 days"], &[]).await;
    assert_eq!(bad.code, USAGE);
}
