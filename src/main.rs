//! The `lxd-script` binary: parse, run, exit with the run's status.

fn main() {
    let args = std::env::args().collect();
    // Scripts recurse (their own functions, deep values): they run on a thread whose stack
    // matches the engine's call-depth limit, not on the main thread's.
    let code = std::thread::Builder::new()
        .name("script".into())
        .stack_size(lxd_script::script::SCRIPT_STACK_BYTES)
        .spawn(move || lxd_script::cli::main(args))
        .map(|script| script.join().unwrap_or(101));
    match code {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("lxd-script: cannot start the script thread: {e}");
            std::process::exit(1);
        }
    }
}
