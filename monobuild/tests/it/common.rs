//! Shared helpers of the monobuild integration tests: fixtures and the JSON contract as strict structs.
#![allow(dead_code)]

use std::collections::BTreeMap;

use microplatform_test_support::{Cmd, TestDir};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Doc {
    pub schema_version: u32,
    pub mode: String,
    pub base: Option<Base>,
    pub head: Option<Head>,
    pub full_rebuild: Option<String>,
    pub changed_files: Vec<ChangedFile>,
    pub deleted_components: Vec<String>,
    pub components: BTreeMap<String, Comp>,
    pub schedule: Schedule,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Base {
    #[serde(rename = "ref")]
    pub reference: String,
    pub commit: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Head {
    pub commit: String,
    pub uncommitted: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangedFile {
    pub path: String,
    pub status: String,
    pub old_path: Option<String>,
    pub components: Vec<String>,
    pub global: bool,
    pub ignored: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Comp {
    pub changed: bool,
    pub affected: bool,
    pub selected: bool,
    pub hash: String,
    pub manifest: String,
    pub dependencies: Vec<Dep>,
    pub dependents: Vec<String>,
    pub reasons: Vec<String>,
}

#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Dep {
    pub name: String,
    pub strong: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    pub stages: Vec<Vec<String>>,
    pub jobs: Vec<Job>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Job {
    pub name: String,
    pub needs: Vec<String>,
    pub hash: String,
    pub stage: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Why {
    pub schema_version: u32,
    pub component: String,
    pub affected: bool,
    pub changed: bool,
    pub cause: Option<String>,
    pub path: Vec<WhyStep>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WhyStep {
    pub component: String,
    pub depends_on: Option<String>,
    pub strong: Option<bool>,
    pub declared_at: Option<String>,
}

impl Doc {
    pub fn changed(&self) -> Vec<&str> {
        self.components
            .iter()
            .filter(|(_, c)| c.changed)
            .map(|(n, _)| n.as_str())
            .collect()
    }
    pub fn affected(&self) -> Vec<&str> {
        self.components
            .iter()
            .filter(|(_, c)| c.affected)
            .map(|(n, _)| n.as_str())
            .collect()
    }
    pub fn jobs(&self) -> Vec<&str> {
        self.schedule.jobs.iter().map(|j| j.name.as_str()).collect()
    }
    pub fn hash(&self, c: &str) -> &str {
        &self.components[c].hash
    }
}

/// The original monobuild's test fixture (test/fixtures/manifests-test).
pub fn original_fixture(t: &TestDir, base: &str) {
    let w = |p: &str, s: &str| {
        t.write(format!("{base}{p}/Dependencies"), s);
    };
    w("app1", "libs/lib1\nlibs/lib2\n");
    w("app2", "libs/lib2\nlibs/lib3\n");
    w("app3", "libs/lib3\n");
    w("app4", "");
    w("libs/lib1", "libs/lib3\n");
    w("libs/lib2", "libs/lib3\n");
    w("libs/lib3", "");
    w("stack1", "# deploy\n!app1\n!app2\n!app3\n");
}

/// A git repo holding the original fixture, committed on main.
pub fn repo() -> TestDir {
    let t = TestDir::new();
    t.git_init();
    original_fixture(&t, "");
    t.write("README.md", "outside every component\n");
    t.commit_all("init");
    t
}

pub fn mb(t: &TestDir) -> Cmd {
    t.cmd("monobuild")
}

pub fn valid_hash(h: &str) -> bool {
    h.len() == 64
        && h.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}
