//! How every tool starts git: the same environment hygiene, so a tool run from a git hook, a CI step or a terminal sees the repository it was pointed at, never prompts, and parses git's output in one locale.

use std::path::Path;
use std::process::{Command, Stdio};

/// `git` in `cwd`, with:
///
/// - `GIT_DIR`, `GIT_WORK_TREE`, `GIT_INDEX_FILE` and `GIT_PREFIX` removed: inherited from a hook (a
///   `post-receive` runs with `GIT_DIR` set), they would point git at another repository; a caller that
///   means them sets them again on the returned command;
/// - `GIT_TERMINAL_PROMPT=0`: a missing credential fails instead of waiting for a terminal;
/// - `GIT_OPTIONAL_LOCKS=0`: reading never takes the index lock another git holds;
/// - `LC_ALL=C`: messages in one language, for the errors the tools pass on;
/// - `core.quotepath=off`: non-ASCII paths as they are, not octal-quoted;
/// - stdin closed.
pub fn command(cwd: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.args(["-c", "core.quotepath=off"])
        .current_dir(cwd)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .env_remove("GIT_PREFIX")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_OPTIONAL_LOCKS", "0")
        .env("LC_ALL", "C")
        .stdin(Stdio::null());
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_inherited_git_dir_does_not_leak_in() {
        let cmd = command(Path::new("/"));
        let envs: Vec<(String, Option<String>)> = cmd
            .get_envs()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.map(|v| v.to_string_lossy().into_owned()),
                )
            })
            .collect();
        for removed in ["GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_PREFIX"] {
            assert!(envs.contains(&(removed.to_string(), None)), "{removed}");
        }
        assert!(envs.contains(&("LC_ALL".into(), Some("C".into()))));
        assert!(envs.contains(&("GIT_TERMINAL_PROMPT".into(), Some("0".into()))));
    }
}
