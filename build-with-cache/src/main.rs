//! The `build-with-cache` binary: parse arguments, run the library, map errors to exit codes.

use build_with_cache::BuildError;
use build_with_cache::Output;
use build_with_cache::cli::{self, Cli};
use microplatform_common::exit;

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if let Some(code) = microplatform_common::cli::meta_command::<Cli>(&args) {
        return code;
    }
    let cli = cli::parse_from(args);
    if let Some(shell) = cli.completions {
        microplatform_common::cli::print_completions::<Cli>(shell);
        return std::process::ExitCode::SUCCESS;
    }
    if cli.man {
        return match microplatform_common::cli::print_man::<Cli>() {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => exit::report("build-with-cache", &e.into(), exit::FAILURE),
        };
    }
    if let Some(file) = &cli.dump_ast {
        return match build_with_cache::dump_ast(file) {
            Ok(text) => {
                print!("{text}");
                std::process::ExitCode::SUCCESS
            }
            Err(e) => exit::fail::<BuildError>("build-with-cache", &e.into(), exit::INTERNAL),
        };
    }
    microplatform_common::cli::init_logging(0, false);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return exit::report("build-with-cache", &e.into(), exit::INTERNAL),
    };
    let result = rt.block_on(build_with_cache::run(cli.into()));
    let printed = match result {
        Ok(Output::Plan(p)) => microplatform_common::io::write_json_stdout(&p),
        Ok(Output::Result(r)) => microplatform_common::io::write_json_stdout(&r),
        Err(e) => {
            // A builder's failure: its own code, machine-readable, on stdout too.
            if let Some(doc) = e.builder_failure() {
                let _ = microplatform_common::io::write_json_stdout(&doc);
            }
            return exit::fail::<BuildError>("build-with-cache", &e.into(), exit::INTERNAL);
        }
    };
    match printed {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => exit::report("build-with-cache", &e.into(), exit::FAILURE),
    }
}
