fn main() {
    std::process::exit(bihu_renew::cli::main());
}
