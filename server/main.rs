//! The `sluice` binary: everything lives in the library; see `sluice::cli`. The binary only
//! chooses the allocator (see Cargo.toml on why mimalloc).

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    sluice::cli::run()
}
