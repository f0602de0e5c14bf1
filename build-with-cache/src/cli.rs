//! Command-line interface of `build-with-cache` (clap derive; doc comments are the help) and the split of the command line into our own options and the `docker build` options passed through in order.

use clap::Parser;
use microplatform_common::cli::Shell;
use microplatform_common::exit;

const AFTER_HELP: &str = concat!(
    "Every option not listed above is a `docker build` option: it is understood where needed ",
    "(-t/--tag, -f/--file, --build-arg, --target, --platform, --network, --iidfile, ...) and passed ",
    "to the builder in the order given. -t/--tag is required.\n\n",
    "Default cache repository: the repository of the first -t tag itself ",
    "(-t reg:5000/team/app:v1 => reg:5000/team/app); stage cache tags are `cache-<branch>--<stage>` ",
    "(<stage>: the AS name, or the index of an unnamed stage), buildah layer caches go to ",
    "`<cache repo>/layers-<branch>`.\n\n",
    "Content key (with --source-hash or --skip-existing): sha256 over the sources' hash, the Dockerfile, ",
    "the digest of every external image the needed stages use, build args, target and platform. ",
    "When `<repo>:content-<hex>` exists the build is skipped; the key is in the JSON result and on ",
    "the image as the label dev.microplatform.content-key.\n\n",
    "stdout is one JSON document (see docs/build-with-cache.md); builder output goes to stderr.\n\n",
    "`build-with-cache completions SHELL` prints shell completions, `build-with-cache man` the man page ",
    "(a build context of either name: `./man`).\n\n",
);

/// The help's epilogue: the notes above, then the exit codes from the one table in `common`.
fn after_help() -> String {
    format!(
        "{AFTER_HELP}{}",
        exit::help(&[
            (exit::SUCCESS, ""),
            (exit::USAGE, "bad flags or arguments, no -t"),
            (
                exit::INPUT,
                "a Dockerfile syntax error (the message names file and line)"
            ),
            (
                exit::NOT_FOUND,
                "a missing build context or Dockerfile, an unknown stage in --from / --target",
            ),
            (
                exit::NETWORK,
                "the registry is unreachable for the requested image (push, digest lookup, tag copy)",
            ),
            (exit::AUTH, "the push of the requested image was refused"),
            (
                exit::EXTERNAL,
                "the engine or builder is not usable, or a build step failed (the builder's own exit code is in the message)",
            ),
            (exit::INTERNAL, ""),
        ])
    )
}

pub use crate::options::BackendChoice;

/// A drop-in for `docker build` that reuses layers cached in a registry, for every stage of a multi-stage Dockerfile.
///
/// Usage: build-with-cache [OPTIONS] [DOCKER BUILD OPTIONS] -t IMAGE:TAG PATH|URL|-
#[derive(Debug, Parser)]
#[command(name = "build-with-cache", version, after_help = after_help())]
pub struct Cli {
    /// Repository holding the stage cache images (default: the repository of the first tag).
    #[arg(long, value_name = "REPO")]
    pub cache_repo: Option<String>,
    /// Branch whose cache to read and write; made a valid tag (default: `main`).
    #[arg(long, value_name = "NAME", env = "BUILD_WITH_CACHE_BRANCH")]
    pub branch: Option<String>,
    /// Also read the cache of this branch.
    #[arg(long, value_name = "NAME", default_value = "main")]
    pub fallback_branch: String,
    /// Read caches but never write them (for untrusted pull requests).
    #[arg(long)]
    pub no_cache_write: bool,
    /// Builder backend.
    #[arg(long, value_enum, default_value = "auto")]
    pub backend: BackendChoice,
    /// Hash of the sources (e.g. monobuild's): part of the content key; skip the build when the key's image exists.
    #[arg(long, value_name = "HASH")]
    pub source_hash: Option<String>,
    /// Skip the build when the content key's image exists; without --source-hash the sources are the build context, hashed honouring .dockerignore.
    #[arg(long)]
    pub skip_existing: bool,
    /// Stage builds run at once (`BuildKit` backend; default: 1 on engines before 23.0, else one per CPU).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,
    /// Print the plan (stages, edges, cache refs, backend, exact commands) as JSON and run nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print shell completions and exit (also `build-with-cache completions SHELL`).
    #[arg(long, value_name = "SHELL", hide = true)]
    pub completions: Option<Shell>,
    /// Print the man page and exit (also `build-with-cache man`).
    #[arg(long, hide = true)]
    pub man: bool,
    /// Print the Dockerfile's syntax tree in `BuildKit`'s parser-test format and exit (debugging aid).
    #[arg(long, value_name = "DOCKERFILE", hide = true)]
    pub dump_ast: Option<std::path::PathBuf>,
    /// `docker build` options and the build context (PATH, URL or `-`), in order.
    #[arg(
        value_name = "DOCKER BUILD ARGS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub docker_args: Vec<String>,
}

/// Our own options that take a value.
const OWN_VALUE: &[&str] = &[
    "--cache-repo",
    "--branch",
    "--fallback-branch",
    "--backend",
    "--source-hash",
    "--jobs",
    "--completions",
    "--dump-ast",
];
/// Our own flags.
const OWN_FLAGS: &[&str] = &[
    "--no-cache-write",
    "--skip-existing",
    "--dry-run",
    "--man",
    "--help",
    "-h",
    "--version",
    "-V",
];

/// `docker build` (and buildah bud) options that take a value.
pub const DOCKER_VALUE: &[&str] = &[
    "-t",
    "--tag",
    "-f",
    "--file",
    "--build-arg",
    "--target",
    "--platform",
    "--network",
    "--cache-from",
    "--cache-to",
    "--iidfile",
    "--label",
    "--add-host",
    "--cgroup-parent",
    "--cpu-period",
    "--cpu-quota",
    "-c",
    "--cpu-shares",
    "--cpuset-cpus",
    "--cpuset-mems",
    "--isolation",
    "-m",
    "--memory",
    "--memory-swap",
    "--progress",
    "--secret",
    "--security-opt",
    "--shm-size",
    "--ssh",
    "--ulimit",
    "-o",
    "--output",
    "--builder",
    "--allow",
    "--build-context",
    "--metadata-file",
    "--attest",
    "--sbom",
    "--provenance",
    "--annotation",
    "--root",
    "--runroot",
    "--storage-driver",
    "--storage-opt",
    "--runtime",
    "--format",
    "--authfile",
    "--creds",
];

/// Split argv (without the program name) into our own options and the
/// `docker build` arguments, keeping the order of the latter.
pub fn split_args(argv: &[String]) -> (Vec<String>, Vec<String>) {
    let mut own = Vec::new();
    let mut rest = Vec::new();
    let mut i = 0;
    while i < argv.len() {
        let a = &argv[i];
        if a == "--" {
            rest.extend(argv[i..].iter().cloned());
            break;
        }
        let name = a.split_once('=').map_or(a.as_str(), |(n, _)| n);
        if OWN_VALUE.contains(&name) {
            own.push(a.clone());
            if !a.contains('=') && i + 1 < argv.len() {
                own.push(argv[i + 1].clone());
                i += 1;
            }
        } else if OWN_FLAGS.contains(&a.as_str()) {
            own.push(a.clone());
        } else {
            rest.push(a.clone());
            if DOCKER_VALUE.contains(&a.as_str()) && i + 1 < argv.len() {
                rest.push(argv[i + 1].clone());
                i += 1;
            }
        }
        i += 1;
    }
    (own, rest)
}

/// Parse the process arguments.
pub fn parse_from(args: impl IntoIterator<Item = String>) -> Cli {
    let mut all: Vec<String> = args.into_iter().collect();
    let program = if all.is_empty() {
        "build-with-cache".to_string()
    } else {
        all.remove(0)
    };
    let (mut own, rest) = split_args(&all);
    own.insert(0, program);
    if !rest.is_empty() {
        own.push("--".to_string());
        own.extend(rest.into_iter().skip_while(|a| a == "--"));
    }
    Cli::parse_from(own)
}

impl From<Cli> for crate::options::Options {
    fn from(c: Cli) -> Self {
        Self {
            cache_repo: c.cache_repo,
            branch: c.branch,
            fallback_branch: c.fallback_branch,
            no_cache_write: c.no_cache_write,
            backend: c.backend,
            source_hash: c.source_hash,
            skip_existing: c.skip_existing,
            jobs: c.jobs,
            dry_run: c.dry_run,
            docker_args: c.docker_args,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_string()).collect()
    }

    #[test]
    fn own_options_are_pulled_out_in_any_position() {
        let (own, rest) = split_args(&s(&[
            "--build-arg",
            "--dry-run",
            "-t",
            "r/a:1",
            "--branch=feat/x",
            "--label",
            "a=b",
            "--dry-run",
            "--cache-repo",
            "r/c",
            "--pull",
            ".",
        ]));
        assert_eq!(
            own,
            s(&["--branch=feat/x", "--dry-run", "--cache-repo", "r/c"])
        );
        assert_eq!(
            rest,
            s(&[
                "--build-arg",
                "--dry-run",
                "-t",
                "r/a:1",
                "--label",
                "a=b",
                "--pull",
                "."
            ])
        );
    }

    #[test]
    fn clap_gets_the_rest_verbatim() {
        let cli = parse_from(s(&[
            "bwc",
            "-t",
            "r/a:1",
            "--no-cache",
            "--backend",
            "buildah",
            "-",
        ]));
        assert_eq!(cli.backend, BackendChoice::Buildah);
        assert_eq!(cli.docker_args, s(&["-t", "r/a:1", "--no-cache", "-"]));
    }
}
