//! Shared helpers of the build-with-cache integration tests: the JSON contract as strict structs and a three-stage build context.

#![allow(dead_code, clippy::struct_field_names)]

use std::collections::BTreeMap;

use microplatform_test_support::{Cmd, TestDir, bin};
use serde::Deserialize;

/// What stdout holds when a build step failed in the builder.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuilderFailure {
    pub schema_version: u32,
    pub error: BuilderFailureError,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuilderFailureError {
    pub class: String,
    pub step: String,
    pub builder_exit_code: i32,
    pub exit_code: u8,
    pub message: String,
}

/// One stage in the result.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageResult {
    pub name: String,
    pub cache_ref: Option<String>,
    pub digest: Option<String>,
    pub cache: String,
    pub hit_from: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Durations {
    pub total_s: f64,
    pub check_s: f64,
    pub pull_s: f64,
    pub build_s: f64,
    pub push_s: f64,
}

/// The sources of the content key.
#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct KeySources {
    pub kind: String,
    pub hash: String,
}

/// What the content key covers.
#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct KeyInputs {
    pub domain: String,
    pub version: u32,
    pub sources: KeySources,
    pub dockerfile: String,
    pub images: BTreeMap<String, Option<String>>,
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub platform: Option<String>,
}

/// The result JSON.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildResult {
    pub schema_version: u32,
    pub image: String,
    pub tags: Vec<String>,
    pub digest: String,
    pub backend: Option<String>,
    pub skipped: bool,
    pub content_key: Option<String>,
    pub content_ref: Option<String>,
    pub content_key_inputs: Option<KeyInputs>,
    pub stages: Vec<StageResult>,
    pub cache_read: Vec<String>,
    pub cache_written: Vec<String>,
    pub warnings: Vec<String>,
    pub durations: Durations,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanStage {
    pub name: String,
    pub index: usize,
    pub line: usize,
    pub base: String,
    pub external_images: Vec<String>,
    pub depends_on: Vec<String>,
    pub target: bool,
    pub tracked: bool,
    pub cache_ref: Option<String>,
    pub cache_from: Vec<String>,
    pub build_target: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Edge {
    pub from: String,
    pub to: String,
    pub kind: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub step: String,
    pub stage: Option<String>,
    pub argv: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    pub condition: Option<String>,
}

/// The dry-run plan JSON.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub schema_version: u32,
    pub dry_run: bool,
    pub backend: String,
    pub program: String,
    pub context: String,
    pub dockerfile: String,
    pub image: String,
    pub tags: Vec<String>,
    pub target: String,
    pub cache_repo: String,
    pub branch: String,
    pub fallback_branch: String,
    pub cache_write: bool,
    pub source_hash: Option<String>,
    pub skip_existing: bool,
    pub content_key_inputs: Option<KeyInputs>,
    pub content_key: Option<String>,
    pub content_ref: Option<String>,
    pub jobs: usize,
    pub build_dockerfile: String,
    pub stages: Vec<PlanStage>,
    pub pruned: Vec<String>,
    pub edges: Vec<Edge>,
    pub cache_read: Vec<String>,
    pub cache_write_refs: Vec<String>,
    pub commands: Vec<Step>,
}

/// A three-stage Dockerfile (deps -> build -> final) on `base`, plus an
/// unneeded `lint` stage, in a fresh directory.
pub fn three_stage(base: &str) -> TestDir {
    let dir = TestDir::new();
    dir.write(
        "Dockerfile",
        format!(
            "# escape=\\\n\
             ARG BASE={base}\n\
             FROM ${{BASE}} AS deps\n\
             RUN echo deps > /deps.txt && \\\n    echo more >> /deps.txt\n\
             FROM $BASE AS lint\n\
             RUN echo lint > /lint.txt\n\
             FROM ${{BASE}} AS build\n\
             COPY --from=deps /deps.txt /deps.txt\n\
             COPY app.txt /app.txt\n\
             RUN cat /deps.txt /app.txt > /out.txt\n\
             FROM ${{BASE}}\n\
             COPY --from=build /out.txt /out.txt\n\
             CMD [\"cat\", \"/out.txt\"]\n"
        ),
    );
    dir.write("app.txt", "hello from the app\n");
    dir
}

/// The build-with-cache command in `dir`.
pub fn bwc(dir: &TestDir) -> Cmd {
    let config = dir.path().join(".docker-config");
    if !config.join("config.json").exists() {
        dir.write(".docker-config/config.json", "{\"auths\": {}}\n");
    }
    Cmd::new(bin("build-with-cache"))
        .current_dir(dir.path())
        .env("DOCKER_CONFIG", dir.path().join(".docker-config"))
        .env_remove("BUILD_WITH_CACHE_BRANCH")
}

/// Stage names and cache states, for assertions.
pub fn states(r: &BuildResult) -> Vec<(String, String)> {
    r.stages
        .iter()
        .map(|s| (s.name.clone(), s.cache.clone()))
        .collect()
}
