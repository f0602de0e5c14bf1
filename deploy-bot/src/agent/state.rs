//! What the agent keeps per namespace in its state directory (`applied/NS.json`, `rejected/NS.json`) and reports of it (`GET /namespaces/NS`).

use super::*;

/// What is recorded per namespace after a successful apply.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Applied {
    /// The namespace.
    pub namespace: String,
    /// The commit applied.
    pub commit: String,
    /// The tree of `NS/` at that commit (what decides "changed").
    pub tree: String,
    /// Unix time of the apply.
    pub applied_at: u64,
    /// How many times drift was repaired in this namespace (self-heal).
    #[serde(default)]
    pub drift_repairs: u64,
}

/// Why a namespace's tree was not applied (kept until a new tree comes).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Rejected {
    /// The tree of `NS/` that was refused.
    pub tree: String,
    /// What was wrong with it.
    pub reason: String,
}

/// Where a namespace stands against a commit of the cluster repo (`GET /namespaces/{ns}?commit=SHA`):
/// what `deploy-bot status --wait` polls until `applied`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NamespaceStatus {
    /// Always 1.
    pub schema_version: u32,
    /// The namespace.
    pub namespace: String,
    /// The commit asked about (the watched branch's head when none was given), as the agent resolved it.
    pub commit: Option<String>,
    /// `applied`: the namespace runs `NS/` of that commit; `pending`: not yet (the agent has not fetched the
    /// commit, or has not applied its tree); `rejected`: that tree was refused (see `reason`); `removed`: the
    /// commit has no `NS/` and nothing is applied to it.
    pub state: String,
    /// The tree of `NS/` at that commit, when the agent has the commit and the directory.
    pub tree: Option<String>,
    /// What is applied to the namespace now, if anything.
    pub applied: Option<Applied>,
    /// Why the tree was refused, for `rejected`.
    pub reason: Option<String>,
}

impl Agent {
    pub(super) fn applied_path(&self, ns: &str) -> PathBuf {
        self.cfg
            .state_dir
            .join("applied")
            .join(format!("{ns}.json"))
    }

    /// What was applied to a namespace, if anything.
    pub fn applied(&self, ns: &str) -> Option<Applied> {
        let text = std::fs::read(self.applied_path(ns)).ok()?;
        serde_json::from_slice(&text).ok()
    }

    pub(super) fn all_applied(&self) -> Vec<String> {
        let Ok(rd) = std::fs::read_dir(self.cfg.state_dir.join("applied")) else {
            return Vec::new();
        };
        rd.filter_map(|e| {
            let n = e.ok()?.file_name().to_string_lossy().into_owned();
            let ns = n.strip_suffix(".json")?;
            is_namespace(ns).then(|| ns.to_string())
        })
        .collect()
    }

    /// Where `ns` stands against `commit` (default: the watched branch's head in the clone). Only the local
    /// clone is read: a commit the agent has not fetched yet is `pending`.
    pub async fn namespace_status(
        &self,
        ns: &str,
        commit: Option<&str>,
    ) -> Result<NamespaceStatus> {
        let rev = commit.map_or_else(
            || format!("refs/heads/{}", self.cfg.branch),
            ToString::to_string,
        );
        let resolved = self
            .git(&["rev-parse", "-q", "--verify", &format!("{rev}^{{commit}}")])
            .await
            .ok()
            .filter(|c| !c.is_empty());
        let applied = self.applied(ns);
        let mut status = NamespaceStatus {
            schema_version: 1,
            namespace: ns.to_string(),
            commit: resolved.clone().or_else(|| commit.map(ToString::to_string)),
            state: "pending".into(),
            tree: None,
            applied: applied.clone(),
            reason: None,
        };
        let Some(resolved) = resolved else {
            return Ok(status);
        };
        let tree = self
            .git(&["rev-parse", "-q", "--verify", &format!("{resolved}:{ns}")])
            .await
            .ok()
            .filter(|t| !t.is_empty());
        let Some(tree) = tree else {
            if applied.is_none() {
                status.state = "removed".into();
            }
            return Ok(status);
        };
        let rejected = std::fs::read(
            self.cfg
                .state_dir
                .join("rejected")
                .join(format!("{ns}.json")),
        )
        .ok()
        .and_then(|b| serde_json::from_slice::<Rejected>(&b).ok())
        .filter(|r| r.tree == tree);
        if applied.as_ref().is_some_and(|a| a.tree == tree) {
            status.state = "applied".into();
        } else if let Some(r) = rejected {
            status.state = "rejected".into();
            status.reason = Some(self.scrub(&r.reason));
        }
        status.tree = Some(tree);
        Ok(status)
    }

    /// What was applied, per namespace (for tests and the state dir's readers).
    pub fn applied_all(&self) -> BTreeMap<String, Applied> {
        self.all_applied()
            .into_iter()
            .filter_map(|ns| Some((ns.clone(), self.applied(&ns)?)))
            .collect()
    }
}
