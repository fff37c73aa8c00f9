//! Latency of `GET /api/jobs/{id}` under many pollers (issue 17's figure): N clients, each
//! with its own keep-alive connection, ask for the URL every INTERVAL ms (0: back to back)
//! for SECONDS, and the percentiles of all answers are printed. `benches/serve.sh` runs it
//! while a job runs; by hand:
//!
//! ```sh
//! cargo run --release --example poll_latency -- http://127.0.0.1:8080/api/jobs/1 [CLIENTS] [SECONDS] [INTERVAL_MS]
//! ```

use std::time::{Duration, Instant};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .expect("usage: poll_latency URL [CLIENTS] [SECONDS] [INTERVAL_MS]");
    let clients: usize = args
        .next()
        .map_or(50, |t| t.parse().expect("CLIENTS is a number"));
    let seconds: u64 = args
        .next()
        .map_or(30, |t| t.parse().expect("SECONDS is a number"));
    let interval = Duration::from_millis(args.next().map_or(100, |t| t.parse().expect("INTERVAL_MS")));
    let end = Instant::now() + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move {
                // One client each, as 50 browsers would be: its own connection.
                let client = reqwest::Client::builder()
                    .no_proxy()
                    .pool_max_idle_per_host(1)
                    .build()
                    .expect("a client");
                let mut times = Vec::new();
                let mut failures = 0u64;
                while Instant::now() < end {
                    let started = Instant::now();
                    match client.get(&url).send().await {
                        Ok(response) if response.status().is_success() => {
                            let _ = response.bytes().await;
                            times.push(started.elapsed());
                        }
                        _ => failures += 1,
                    }
                    if !interval.is_zero() {
                        tokio::time::sleep(interval.saturating_sub(started.elapsed())).await;
                    }
                }
                (times, failures)
            })
        })
        .collect();
    let mut times = Vec::new();
    let mut failures = 0;
    for task in tasks {
        let (mut some, failed) = task.await.expect("a poller");
        times.append(&mut some);
        failures += failed;
    }
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{clients} clients every {} ms for {seconds} s: {} answers ({:.0}/s), {failures} failures; latency ms: p50 {:.2}, p90 {:.2}, p99 {:.2}, max {:.2}",
        interval.as_millis(),
        times.len(),
        times.len() as f64 / seconds as f64,
        ms(at(0.5)),
        ms(at(0.9)),
        ms(at(0.99)),
        ms(*times.last().expect("at least one answer"))
    );
}
