//! The `lxd-script` binary: parse, run, exit with the run's status.

fn main() {
    let code = lxd_script::cli::main(std::env::args().collect());
    std::process::exit(code);
}
