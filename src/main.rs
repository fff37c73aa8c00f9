// mimalloc: the run allocates small buffers on every worker thread for every request, and
// glibc's malloc spends much of that time contending on arena locks (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(bihu_renew::cli::main());
}
