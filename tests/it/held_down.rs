//! Issue 15, case 9: neither the sandbox nor the service can be held down. Connections that
//! send nothing, trickle a head or stall a body are closed after the listener's timeouts;
//! beyond the connection cap new connections wait while the held ones are served, and the
//! server answers again once they go; `sandbox --record` streams its lines instead of
//! keeping bodies. Timeouts are short here; the defaults are in `listen::Limits`.

use std::time::{Duration, Instant};

use bihu_renew::listen::Limits;
use bihu_renew::sandbox::{Sandbox, SandboxConfig};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::support::{client, start_sandbox};

const SHORT: Limits = Limits {
    max_connections: 64,
    header_read_timeout: Duration::from_millis(400),
    idle_timeout: Duration::from_millis(400),
};

async fn sandbox_with(limits: Limits) -> Sandbox {
    start_sandbox(SandboxConfig {
        limits,
        ..SandboxConfig::default()
    })
    .await
}

/// Reads until the server closes the connection, or `enough` holds of what came, for at most
/// `within`. Returns what the server sent, and whether it stopped before `within`.
async fn read_until(
    stream: &mut TcpStream,
    within: Duration,
    enough: impl Fn(&[u8]) -> bool,
) -> (Vec<u8>, bool) {
    let mut received = Vec::new();
    let read = tokio::time::timeout(within, async {
        let mut buffer = [0u8; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
            if enough(&received) {
                break;
            }
        }
    })
    .await;
    (received, read.is_ok())
}

/// Reads until the server closes the connection; panics if it is still open after `within`.
/// Returns what the server sent before closing.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Vec<u8> {
    let (received, closed) = read_until(stream, within, |_| false).await;
    assert!(closed, "the connection is still open after {within:?}");
    received
}

/// A request that gets a status back, or `None` if none came within `within`.
async fn status_of_get(url: &str, within: Duration) -> Option<u16> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(within)
        .build()
        .unwrap();
    http.get(url).send().await.ok().map(|r| r.status().as_u16())
}

/// Silent connections and slowloris heads are closed after the header-read timeout, while a
/// normal request beside them is answered at once.
#[tokio::test(flavor = "multi_thread")]
async fn silent_and_trickling_connections_are_closed_after_the_header_timeout() {
    let sandbox = sandbox_with(SHORT).await;
    let addr = sandbox.addr();
    let mut silent = Vec::new();
    for _ in 0..40 {
        silent.push(TcpStream::connect(addr).await.unwrap());
    }
    // Slowloris: a head that keeps coming, one header line every 100 ms, never ending.
    let mut trickling = Vec::new();
    for _ in 0..8 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"POST /unite/unitecheckrenewal HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        trickling.push(stream);
    }
    let trickle = tokio::spawn(async move {
        for n in 0.. {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let mut open = 0;
            for stream in &mut trickling {
                if stream
                    .write_all(format!("X-Slow-{n}: 1\r\n").as_bytes())
                    .await
                    .is_ok()
                {
                    open += 1;
                }
            }
            if open == 0 {
                return n;
            }
        }
        unreachable!()
    });

    let answered = status_of_get(&format!("{}nowhere", sandbox.base_url()), Duration::from_secs(2)).await;
    assert_eq!(answered, Some(404), "a normal request beside them is answered");

    let started = Instant::now();
    for stream in &mut silent {
        closed_within(stream, Duration::from_secs(3)).await;
    }
    let rounds = tokio::time::timeout(Duration::from_secs(5), trickle)
        .await
        .expect("every trickling head is cut off")
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "closed after {:?}",
        started.elapsed()
    );
    // The 400 ms timeout counts the whole head: heads still growing are cut off too.
    assert!(rounds < 30, "trickled for {rounds} rounds");
    let answered = status_of_get(&format!("{}nowhere", sandbox.base_url()), Duration::from_secs(2)).await;
    assert_eq!(answered, Some(404), "and the sandbox still answers");
}

/// A body that stops halfway ends its request after the idle timeout and the connection
/// closes; a keep-alive connection idle after an answer is closed too.
#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_body_and_an_idle_keep_alive_are_closed() {
    let sandbox = sandbox_with(SHORT).await;
    let mut stalled = TcpStream::connect(sandbox.addr()).await.unwrap();
    stalled
        .write_all(b"POST /unite/unitecheckrenewal HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"LicenseNo\":")
        .await
        .unwrap();
    let started = Instant::now();
    let answer = closed_within(&mut stalled, Duration::from_secs(3)).await;
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    let answer = String::from_utf8_lossy(&answer);
    assert!(!answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(sandbox.stats().renewed, 0);

    let mut idle = TcpStream::connect(sandbox.addr()).await.unwrap();
    idle.write_all(b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut reader = BufReader::new(&mut idle);
    let mut status_line = String::new();
    reader.read_line(&mut status_line).await.unwrap();
    assert!(status_line.starts_with("HTTP/1.1 404"), "{status_line}");
    closed_within(&mut idle, Duration::from_secs(3)).await;
}

/// The header-read timeout is for heads only: a handler slower than it, and a body sent after
/// `100 Continue` in pieces for longer than it (each pause within the idle timeout), are
/// answered, not cut off.
#[tokio::test(flavor = "multi_thread")]
async fn a_slow_answer_and_a_slow_body_after_100_continue_are_not_cut_off() {
    let sandbox = start_sandbox(SandboxConfig {
        limits: SHORT,
        latency: Duration::from_millis(1200),
        ..SandboxConfig::default()
    })
    .await;
    let started = Instant::now();
    let status = status_of_get(&format!("{}nowhere", sandbox.base_url()), Duration::from_secs(5)).await;
    assert_eq!(status, Some(404), "a fast path beside the slow one");

    let mut stream = TcpStream::connect(sandbox.addr()).await.unwrap();
    let body = br#"{"LicenseNo":"A12345","CityCode":1,"Agent":1,"SecCode":"x","CustKey":"k"}"#;
    stream
        .write_all(
            format!(
                "POST /unite/unitecheckrenewal HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).await.unwrap();
    assert!(line.starts_with("HTTP/1.1 100"), "{line}");
    let mut blank = String::new();
    reader.read_line(&mut blank).await.unwrap();
    let mut stream = reader.into_inner();
    // 8 pieces, 200 ms apart: 1.4 s in all, past the 400 ms header timeout.
    let sending = Instant::now();
    for piece in body.chunks(body.len().div_ceil(8)) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        stream.write_all(piece).await.unwrap();
    }
    assert!(sending.elapsed() > SHORT.header_read_timeout * 3);
    let answer = closed_or_answered(&mut stream, Duration::from_secs(5)).await;
    let answer = String::from_utf8_lossy(&answer);
    // The sandbox read the whole body, and judged it (no agent in it), after its latency.
    assert!(answer.starts_with("HTTP/1.1 412"), "{answer}");
    assert!(answer.contains("AgentId is missing"), "{answer}");
    assert!(started.elapsed() >= Duration::from_millis(1200));
}

/// Reads until a whole answer's head and some body came, or the connection closed.
async fn closed_or_answered(stream: &mut TcpStream, within: Duration) -> Vec<u8> {
    let answered = |received: &[u8]| {
        received
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .is_some_and(|end| received.len() > end + 4)
    };
    read_until(stream, within, answered).await.0
}

/// Beyond the cap a new connection waits, while a held connection is still served; when the
/// held ones go (here: closed by the header timeout, which must be 800 ms), the waiting one
/// is answered.
async fn holds_at_the_cap_and_recovers(base_url: String, addr: std::net::SocketAddr, cap: usize) {
    let mut held = Vec::new();
    for _ in 0..cap {
        held.push(TcpStream::connect(addr).await.unwrap());
    }
    // Let the server accept them all, so that they hold every slot.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let url = format!("{base_url}nowhere");
    let waiting = {
        let url = url.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let status = status_of_get(&url, Duration::from_secs(10)).await;
            (status, started.elapsed())
        })
    };
    // A connection the server holds is served meanwhile (and kept: it still holds its slot).
    let first = &mut held[0];
    first
        .write_all(b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = [0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(2), first.read(&mut answer))
        .await
        .expect("a held connection is answered")
        .unwrap();
    assert!(
        answer[..n].starts_with(b"HTTP/1.1 404"),
        "{}",
        String::from_utf8_lossy(&answer[..n])
    );

    let (status, waited) = waiting.await.unwrap();
    assert_eq!(
        status,
        Some(404),
        "the waiting request is answered once slots free"
    );
    // It waited for the held ones to time out (the cap held), but not much longer.
    assert!(
        waited >= Duration::from_millis(500) && waited < Duration::from_secs(3),
        "waited {waited:?}"
    );
    drop(held);
    assert_eq!(status_of_get(&url, Duration::from_secs(2)).await, Some(404));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sandbox_serves_within_its_connection_cap_and_recovers() {
    let limits = Limits {
        max_connections: 16,
        header_read_timeout: Duration::from_millis(800),
        ..SHORT
    };
    let sandbox = sandbox_with(limits).await;
    holds_at_the_cap_and_recovers(sandbox.base_url().to_string(), sandbox.addr(), 16).await;
}

/// The service faces browsers and cron: the same listener, the same limits.
#[tokio::test(flavor = "multi_thread")]
async fn the_service_has_the_same_limits() {
    use bihu_renew::serve::{self, AppState, ServeConfig};
    let sandbox = start_sandbox(SandboxConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = sandbox.config();
    let settings = bihu_renew::serve::jobs::JobSettings {
        base_url: sandbox.base_url(),
        agent: crate::support::agent(config),
        token: Some(config.token.clone()),
        user_name: None,
        rate: 10.try_into().unwrap(),
        burst: 1.try_into().unwrap(),
        concurrency: 1.try_into().unwrap(),
        retries: 0,
        timeout: Duration::from_secs(5),
        backoff: bihu_renew::run::config::Backoff {
            min: Duration::from_millis(10),
            max: Duration::from_millis(50),
            max_retry_after: Duration::from_millis(50),
        },
        credential_failure_limit: 3,
    };
    let state = AppState::open(ServeConfig {
        data_dir: dir.path().to_path_buf(),
        max_upload_bytes: 1 << 20,
        retention: Duration::from_secs(86_400),
        users: Vec::new(),
        session_ttl: Duration::from_secs(60),
        settings,
        history: None,
        reuse_within: None,
        limits: Limits {
            max_connections: 8,
            header_read_timeout: Duration::from_millis(800),
            ..SHORT
        },
    })
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(serve::serve(listener, state, stop.clone().cancelled_owned()));

    let mut silent = TcpStream::connect(addr).await.unwrap();
    closed_within(&mut silent, Duration::from_secs(3)).await;
    let mut stalled = TcpStream::connect(addr).await.unwrap();
    stalled
        .write_all(b"POST /api/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc")
        .await
        .unwrap();
    closed_within(&mut stalled, Duration::from_secs(3)).await;
    holds_at_the_cap_and_recovers(format!("http://{addr}/"), addr, 8).await;
    stop.cancel();
    task.await.unwrap().unwrap();
}

fn vm_kb(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"));
    line.trim().trim_end_matches(" kB").trim().parse().unwrap()
}

/// `sandbox --record` writes each request's line as it is answered and keeps no body: 50
/// bodies of 1 MB leave its memory where it was, and the file has every line before exit.
#[tokio::test(flavor = "multi_thread")]
async fn record_streams_to_its_file_and_keeps_no_body() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("requests.txt");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_bihu-renew"))
        .args(["sandbox", "--listen", "127.0.0.1:0", "--record"])
        .arg(&record)
        .env_remove("BIHU_LOG")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let base_url = loop {
        let line = tokio::time::timeout(Duration::from_secs(10), stderr.next_line())
            .await
            .expect("the sandbox starts")
            .unwrap()
            .expect("the sandbox prints its address");
        if let Some(url) = line.strip_prefix("bihu-renew sandbox listening on ") {
            break url.trim().to_string();
        }
    };
    let url = format!("{base_url}{}", bihu_renew::api::protocol::RENEWAL_PATH);
    let http = client();
    let send = |body: Vec<u8>| {
        let request = http.post(&url).body(body).send();
        async move { request.await.unwrap().status().as_u16() }
    };
    // Warm up (first allocations, the runtime's threads), then measure from there.
    assert_eq!(send(vec![b'x'; 1 << 20]).await, 412);
    let before = vm_kb(pid, "VmHWM:");
    let n_bodies = 50;
    for n in 0..n_bodies {
        let mut body = vec![b'0' + (n % 10) as u8; 1 << 20];
        body[0] = b'[';
        assert_eq!(send(body).await, 412);
    }
    let grown_mb = (vm_kb(pid, "VmHWM:") - before) / 1024;
    let lines = std::fs::read_to_string(&record).unwrap();
    assert_eq!(
        lines.lines().count(),
        n_bodies + 1,
        "every line is in the file before exit"
    );
    assert!(lines.lines().all(|line| line.ends_with(" 412")), "{lines}");
    eprintln!("sandbox --record: peak grew {grown_mb} MB over {n_bodies} bodies of 1 MB");
    assert!(
        grown_mb < 20,
        "peak grew {grown_mb} MB over {n_bodies} MB of bodies"
    );
    child.kill().await.unwrap();
}
