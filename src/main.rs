// mimalloc: every request allocates many small buffers (hyper, the row's strings).
// Measured with 200,000 rows, the run takes 2.3 CPU seconds per 100k rows with mimalloc and
// 2.7 with glibc's malloc, which also contended on its arena locks when the run used several
// threads (BENCHMARKS.md). Its `no_thp` feature keeps it from asking Linux for transparent
// huge pages: zeroing 2 MB pages on first touch stalled the sending thread, and with them peak
// RSS was 48 MB instead of 25 and throughput about 5% lower and less steady.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let code = bihu_renew::cmd::cli::main();
    bihu_renew::cmd::cli::report_peak_memory();
    std::process::exit(code);
}
