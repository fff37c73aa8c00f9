//! The yardstick of `benches/run.sh`: a bare loop that posts the same signed renewal bodies
//! as `bihu-renew run`, through the same reqwest transport with the same settings, on the
//! same runtime (one thread) and allocator (mimalloc), with `CONCURRENCY` requests in
//! flight. No list to read, no validation, no rate limiter, no retries, no results file:
//! what is left between it and a real run is the pipeline's own cost.
//!
//! ```text
//! cargo run --release --example bare_reqwest -- BASE_URL ROWS CONCURRENCY AGENT TOKEN SECRET
//! ```
//! prints one JSON object on stdout: requests, answers by HTTP status, elapsed seconds and
//! requests per second. Only for a loopback sandbox: it refuses any other host.

// The allocator of `bihu-renew` itself (`src/main.rs`): the yardstick differs from the run
// by the pipeline alone, not by how its buffers are allocated.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bihu_renew::api::client::{Http, Proxies, unix_now};
use bihu_renew::api::protocol::{Agent, RenewalRequest};
use bihu_renew::api::secret::Secret;
use bihu_renew::api::transport::{Endpoint, Transport};
use bihu_renew::leads::city::City;
use bihu_renew::leads::lead::Lead;
use url::Url;

/// The `i`th of the distinct Beijing plates `benches/run.sh` writes into its lists.
fn plate(i: usize) -> String {
    const LETTERS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
    const SERIAL: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ0123456789";
    let mut k = i;
    let mut serial = [0u8; 5];
    for slot in serial.iter_mut().rev() {
        *slot = SERIAL[k % 34];
        k /= 34;
    }
    format!(
        "京{}{}",
        LETTERS[k % 24] as char,
        std::str::from_utf8(&serial).expect("ASCII")
    )
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [base, rows, concurrency, agent_id, token, secret] = args.as_slice() else {
        eprintln!("usage: bare_reqwest BASE_URL ROWS CONCURRENCY AGENT TOKEN SECRET");
        std::process::exit(2);
    };
    let base = Url::parse(base).expect("a base URL");
    if !matches!(base.host_str(), Some("127.0.0.1" | "localhost" | "[::1]")) {
        eprintln!("bare_reqwest talks only to a loopback sandbox");
        std::process::exit(2);
    }
    let rows: usize = rows.parse().expect("ROWS is a number");
    let concurrency: usize = concurrency.parse().expect("CONCURRENCY is a number");
    let agent = Agent {
        agent_id: agent_id.clone(),
        secret: Secret::new(secret.as_str()),
        secret_label: "secretKey".to_string(),
    };
    let token = token.clone();
    let beijing = City::by_id(1).expect("Beijing is in the city table");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async move {
        let http =
            Http::new(&base, Duration::from_secs(30), concurrency, Proxies::Direct).expect("the transport");
        let http: Arc<dyn Transport> = Arc::new(http);
        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let mut workers = Vec::with_capacity(concurrency);
        for _ in 0..concurrency {
            let (http, next, agent, token) = (http.clone(), next.clone(), agent.clone(), token.clone());
            workers.push(tokio::spawn(async move {
                let mut statuses = BTreeMap::<u16, u64>::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= rows {
                        break statuses;
                    }
                    let lead = Lead {
                        plate: Some(plate(i)),
                        vin: None,
                        engine: None,
                        city: beijing,
                        warnings: Vec::new(),
                    };
                    let request = RenewalRequest::signed(&lead, &agent, &token, unix_now());
                    let body = serde_json::to_vec(&request).expect("a body");
                    let status = match http.post(Endpoint::Renewal, body.into()).await {
                        Ok(reply) => reply.status,
                        Err(_) => 0,
                    };
                    *statuses.entry(status).or_default() += 1;
                }
            }));
        }
        let mut statuses = BTreeMap::<u16, u64>::new();
        for worker in workers {
            for (status, n) in worker.await.expect("a worker") {
                *statuses.entry(status).or_default() += n;
            }
        }
        let elapsed = started.elapsed().as_secs_f64();
        let by_status: serde_json::Map<String, serde_json::Value> = statuses
            .iter()
            .map(|(status, n)| (status.to_string(), (*n).into()))
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "requests": rows,
                "by_status": by_status,
                "elapsed_secs": elapsed,
                "requests_per_sec": rows as f64 / elapsed,
            })
        );
    });
}
