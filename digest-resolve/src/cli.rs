//! Command-line interface of `digest-resolve` (clap derive; doc comments are the help).

use std::path::PathBuf;

use clap::Parser;
use microplatform_common::cli::Shell;
use microplatform_common::exit;

/// Extra help after the exit-code table.
/// The help's epilogue: the exit codes from the one table in `common`, then notes and examples.
pub fn after_help() -> String {
    format!(
        "{}\n{AFTER_HELP_NOTES}",
        exit::help(&[
            (exit::SUCCESS, "with --check: nothing would change"),
            (exit::FAILURE, "--check: a rewrite would change something"),
            (
                exit::USAGE,
                "--in-place with stdin, a lock for another platform"
            ),
            (
                exit::INPUT,
                "YAML/JSON that does not parse, an invalid image reference, a bad lock file",
            ),
            (
                exit::NOT_FOUND,
                "an input file, image, tag, repository or platform (or missing from --lock); with --promote-to, a blob or child manifest missing at the source",
            ),
            (exit::NETWORK, "unreachable, timeouts, 5xx after retries"),
            (exit::AUTH, "refused credentials"),
            (exit::INTERNAL, ""),
        ])
    )
}

const AFTER_HELP_NOTES: &str =
    "With several failing images, one line per image is printed and the exit code is
the most fundamental class among them (2, then 3, 7, 6, 4).

Examples:
  digest-resolve < deploy.yaml > pinned.yaml
  digest-resolve --in-place k8s/ compose.yaml
  digest-resolve --check --report - k8s/
  digest-resolve --lock-output images.lock.json k8s/ > /dev/null
  digest-resolve --lock images.lock.json < big-stream.yaml
  digest-resolve --list k8s/ | jq -r '.images[].reference'
  digest-resolve --image-path 'example.com/v1/App:spec.workers[*].image' app.yaml
  digest-resolve --promote-to rc.example.com/rc --promote-report promote.json -i envs/staging/
  digest-resolve completions bash > /etc/bash_completion.d/digest-resolve
  digest-resolve man > digest-resolve.1   (an input file of either name: ./man)";

pub use crate::options::Format;

/// Pin every container image in Kubernetes, Argo and Compose manifests to its registry content digest.
///
/// Reads YAML or JSON from stdin or from files and directories, and writes the
/// same bytes with each image rewritten to `name:tag@sha256:...`: comments,
/// quoting, key order and document separators stay. Images already pinned by
/// digest are left as they are, so running it twice gives the same bytes.
#[derive(Debug, Parser)]
#[command(name = "digest-resolve", version, after_help = after_help())]
pub struct Cli {
    /// Files or directories (searched for *.yaml, *.yml, *.json); `-` or none = stdin.
    pub inputs: Vec<PathBuf>,

    /// Rewrite the files in place (all of them or, on any error, none).
    #[arg(short = 'i', long, conflicts_with = "check")]
    pub in_place: bool,

    /// Change nothing; exit 1 when a rewrite would change something (differences on stderr).
    #[arg(long)]
    pub check: bool,

    /// Only list the images found, as JSON on stdout (no network, nothing rewritten); invalid references and unparsable input still fail.
    #[arg(long, conflicts_with_all = ["in_place", "check", "report", "lock", "lock_output", "verify_pinned", "platform"])]
    pub list: bool,

    /// Write a JSON report of every image occurrence to FILE (`-` = stderr).
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// Write a lock (normalised reference -> digest, JSON) to FILE.
    #[arg(long, value_name = "FILE")]
    pub lock_output: Option<PathBuf>,

    /// Resolve from this lock instead of the network (a missing image is an error).
    #[arg(long, value_name = "FILE")]
    pub lock: Option<PathBuf>,

    /// Pin the manifest of this platform (os/arch[/variant]) instead of what the tag names (the index).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,

    /// Write `name@sha256:...` instead of `name:tag@sha256:...`.
    #[arg(long)]
    pub drop_tag: bool,

    /// Check that images already pinned by digest exist in their registry.
    #[arg(long)]
    pub verify_pinned: bool,

    /// Copy every image by digest into this release-candidate registry (REGISTRY[/PREFIX]: the
    /// repository path is kept, the registry replaced, the prefix put in front) and write each
    /// reference as `REGISTRY[/PREFIX]/<repository>:<tag>@sha256:…` (`@sha256:…` only with
    /// --drop-tag). Within one registry blobs are mounted, between registries streamed; what the
    /// target has is skipped.
    #[arg(long, value_name = "REGISTRY[/PREFIX]", conflicts_with = "check")]
    pub promote_to: Option<String>,

    /// Write the JSON promotion report (per image: source, target, digest, media type, blobs
    /// mounted/copied/present, bytes copied; and totals) to FILE (`-` = stderr).
    #[arg(long, value_name = "FILE", requires = "promote_to")]
    pub promote_report: Option<PathBuf>,

    /// Talk plain HTTP to this registry (host[:port]); loopback and localhost always are. Repeatable.
    #[arg(long, value_name = "HOST[:PORT]")]
    pub insecure_registry: Vec<String>,

    /// At most this many registry requests at once.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,

    /// Also look for images at KIND:PATH, e.g. `example.com/v1/App:spec.workers[*].image` or `*:spec.image`. Repeatable.
    #[arg(long, value_name = "KIND:PATH")]
    pub image_path: Vec<String>,

    /// Input format.
    #[arg(long, value_enum, default_value_t = Format::Auto)]
    pub format: Format,

    /// Retries per request on timeouts, connection errors, 429 and 5xx.
    #[arg(long, default_value_t = 4)]
    pub retries: u32,

    /// Timeout of one HTTP request, in seconds.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub timeout: u64,

    /// More logging on stderr (-v info, -vv debug).
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Only errors on stderr.
    #[arg(short, long)]
    pub quiet: bool,

    /// Print shell completions for SHELL and exit (also `digest-resolve completions SHELL`).
    #[arg(long, value_name = "SHELL", exclusive = true, hide = true)]
    pub completions: Option<Shell>,

    /// Print the man page (roff) and exit (also `digest-resolve man`).
    #[arg(long, exclusive = true, hide = true)]
    pub man: bool,
}

impl From<&Cli> for crate::options::Options {
    fn from(c: &Cli) -> Self {
        Self {
            inputs: c.inputs.clone(),
            in_place: c.in_place,
            check: c.check,
            list: c.list,
            report: c.report.clone(),
            lock_output: c.lock_output.clone(),
            lock: c.lock.clone(),
            platform: c.platform.clone(),
            drop_tag: c.drop_tag,
            verify_pinned: c.verify_pinned,
            promote_to: c.promote_to.clone(),
            promote_report: c.promote_report.clone(),
            insecure_registry: c.insecure_registry.clone(),
            concurrency: c.concurrency,
            image_path: c.image_path.clone(),
            format: c.format,
            retries: c.retries,
            timeout: c.timeout,
        }
    }
}
