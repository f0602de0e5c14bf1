//! The whole computation behind `print`, `diff` and `why`: discover manifests, build and check the graph, find the changed files and components, propagate impact, hash, and select.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use std::collections::HashMap;

use crate::config::{self, Config};
use crate::error::{Error, Result};
use crate::git::{Change, Git, RepoInfo, Status};
use crate::graph::Graph;
use crate::index_scan;
use crate::manifest::{self, Manifest};
use crate::snapshot::{Dirs, ObjectFormat, Snapshot};

/// Default manifest glob, as in the original monobuild.
pub const DEFAULT_DEPENDENCY_FILES: &str = "**/Dependencies";

/// At most this many "changed: FILE" reasons are listed per component.
const MAX_FILE_REASONS: usize = 20;

/// Where the graph comes from and how to read the repository.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// The monobuild root (component names are relative to it); usually the working directory.
    pub root: PathBuf,
    /// Manifest glob (`--dependency-files`); `None` = config or default.
    pub dependency_files: Option<String>,
    /// Full manifest file (`-f`).
    pub file: Option<PathBuf>,
    /// Root config file (`--config`); `None` = `.monobuild.toml` in the root when present.
    pub config: Option<PathBuf>,
    /// Unknown dependencies are warnings, not errors.
    pub allow_unknown: bool,
    /// Include uncommitted changes (and hash the working tree).
    pub uncommitted: bool,
}

/// Where the changed files come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// No changes (`print`).
    Nothing,
    /// Paths given on stdin (`diff -`).
    Paths(Vec<String>),
    /// Feature-branch mode: diff against the merge base with this branch (`None` = default base).
    Feature(Option<String>),
    /// Main-branch mode: diff against this commit.
    Main(String),
}

impl Source {
    /// Changed paths as `diff -` reads them from stdin: one per line (or NUL-separated with
    /// `null`), a trailing `\r` and a leading `./` dropped, blank entries skipped.
    #[must_use]
    pub fn paths_from_list(input: &str, null: bool) -> Self {
        let sep = if null { '\0' } else { '\n' };
        Self::Paths(
            input
                .split(sep)
                .map(|l| l.strip_suffix('\r').unwrap_or(l))
                .map(|l| l.strip_prefix("./").unwrap_or(l))
                .filter(|l| !l.trim().is_empty())
                .map(str::to_string)
                .collect(),
        )
    }
}

/// A changed file and the components it marks.
#[derive(Debug, Clone)]
pub struct FileChange {
    /// The change.
    pub change: Change,
    /// Indices of the components containing the path or its old path.
    pub components: Vec<usize>,
    /// Whether it matches a global input.
    pub global: bool,
    /// Whether it matches an `ignore` glob of the config.
    pub ignored: bool,
}

/// Why a component is changed (for `why`).
#[derive(Debug, Clone)]
pub enum Cause {
    /// A file inside it (index into `changes`).
    File(usize),
    /// A global input (index into `changes`).
    Global(usize),
    /// Everything is affected (no merge base, first commit).
    Everything,
    /// Its edges changed in the `-f` full-manifest file.
    Graph,
}

/// The base of a diff.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Base {
    /// The branch or revision as given or found.
    #[serde(rename = "ref")]
    pub reference: String,
    /// The commit diffed against (the merge base in feature-branch mode).
    pub commit: String,
}

/// The head of a diff.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Head {
    /// `HEAD`'s commit.
    pub commit: String,
    /// Whether uncommitted changes were included.
    pub uncommitted: bool,
}

/// Everything computed.
#[derive(Debug)]
pub struct Analysis {
    /// `print`, `feature-branch`, `main-branch` or `stdin`.
    pub mode: &'static str,
    /// The component graph.
    pub graph: Graph,
    /// Merkle hash per component.
    pub hashes: Vec<String>,
    /// Changed per component.
    pub changed: Vec<bool>,
    /// Affected (changed or depending on a changed one) per component.
    pub affected: Vec<bool>,
    /// Human-readable reasons per component.
    pub reasons: Vec<Vec<String>>,
    /// First cause per changed component.
    pub causes: Vec<Option<Cause>>,
    /// The changed files.
    pub changes: Vec<FileChange>,
    /// Components whose manifest was deleted.
    pub deleted_components: Vec<String>,
    /// The diff base.
    pub base: Option<Base>,
    /// The diff head.
    pub head: Option<Head>,
    /// Set when everything is affected without a diff (no merge base, first commit).
    pub full_rebuild: Option<String>,
    /// Warnings (unknown dependencies with `--allow-unknown`).
    pub warnings: Vec<String>,
    /// The git snapshot that was read (its files), when inside git.
    pub snapshot: Option<Snapshot>,
}

/// The files of the state being analysed: a git snapshot, or a directory walk outside git.
enum State {
    /// Inside git: the files of HEAD or of a working-tree snapshot.
    Git(Box<GitState>),
    /// Outside git: the files below the root.
    Walked(Vec<String>),
}

/// A git snapshot with what was read from it.
struct GitState {
    /// The index as gix-index read it; `None` when the quick pass ([`index_scan`]) sufficed.
    snapshot: Option<Snapshot>,
    /// The repository's hash algorithm.
    format: ObjectFormat,
    /// Whether some path is unmerged (a conflict in progress): the index then cannot equal a commit.
    conflicts: bool,
    /// The global inputs' files: path and `MODE ID`, in path order.
    global: Vec<(String, String)>,
    /// The manifests read, in path order.
    manifests: Vec<Manifest>,
    /// The tree id of the working directory (`None` when it holds no file).
    root: Option<gix_index::hash::ObjectId>,
    /// Tree ids of component directories (all directories with `-f`), `""` for the root.
    trees: HashMap<String, gix_index::hash::ObjectId>,
}

/// The files of a snapshot an analysis needs, from the quick pass over the index or from gix-index.
struct Listed {
    /// The manifests to read: path and blob id.
    wanted: Vec<(String, gix_index::hash::ObjectId)>,
    /// The global inputs' files: path and `MODE ID`.
    global: Vec<(String, String)>,
    /// Whether some path is unmerged.
    conflicts: bool,
}

/// The working directory's tree id and the kept directories' ids, as [`Snapshot::tree_ids`]
/// returns them.
type TreeIds = (
    Option<gix_index::hash::ObjectId>,
    HashMap<String, gix_index::hash::ObjectId>,
);

/// The quick pass ([`index_scan::scan`]) over the index file `path`, with the tree ids of the
/// working directory and of the wanted manifests' directories from its cache-tree. `None` when
/// the index is missing, uses what the pass does not model, or its cache-tree lacks one of those
/// directories (after a `git add`): gix-index reads it then. `found` gets the wanted files
/// as they are found, [`MANIFEST_CHUNK`] at a time.
fn quick_listing(
    path: &Path,
    repo: &RepoInfo,
    want: &dyn Fn(&[u8]) -> bool,
    global: Option<&globset::GlobSet>,
    found: &mut dyn FnMut(&[index_scan::Found]),
) -> Option<(Listed, TreeIds)> {
    use std::os::unix::ffi::OsStrExt as _;
    let matches_global =
        |p: &[u8]| global.is_some_and(|g| g.is_match(std::ffi::OsStr::from_bytes(p)));
    let scan = index_scan::scan_file(
        path,
        repo.prefix.as_bytes(),
        repo.format,
        want,
        global
            .is_some()
            .then_some(&matches_global as &dyn Fn(&[u8]) -> bool),
        Some(index_scan::Tap {
            every: MANIFEST_CHUNK,
            each: found,
        }),
    )?;
    let mut trees = HashMap::with_capacity(scan.trees.len());
    for (p, _) in &scan.wanted {
        let dir = index_scan::parent_dir(p);
        if !trees.contains_key(dir) {
            trees.insert(dir.to_string(), *scan.trees.get(dir)?);
        }
    }
    let root = scan.root?;
    let listed = Listed {
        wanted: scan.wanted,
        global: scan
            .global
            .into_iter()
            .map(|(p, mode, id)| (p, format!("{mode:o} {id}")))
            .collect(),
        conflicts: scan.conflicts,
    };
    Some((listed, (Some(root), trees)))
}

/// The index (or the temporary index `index`) read with gix-index, or parsed from `git ls-files`
/// when gix-index cannot read it.
fn full_listing(
    git: &Git,
    repo: &RepoInfo,
    index: Option<&Path>,
    want: &dyn Fn(&[u8]) -> bool,
    fetch: bool,
    global: Option<&globset::GlobSet>,
) -> Result<(Snapshot, Listed)> {
    let path = index.unwrap_or(&repo.index);
    let snapshot = match Snapshot::read_index(path, &repo.prefix, repo.format) {
        Ok(Some(s)) => s,
        other => {
            if let Err(e) = other {
                tracing::debug!("reading the index in-process failed ({e}); asking git");
            }
            Snapshot::from_ls_files(&git.ls_files_stage(index)?, repo.format)?
        }
    };
    let mut wanted = Vec::new();
    let mut global_files = Vec::new();
    for f in snapshot.files() {
        // Paths that are not UTF-8 cannot name components: left out.
        let Ok(p) = std::str::from_utf8(f.path) else {
            continue;
        };
        if fetch && f.mode != 0o160_000 && want(f.path) {
            wanted.push((p.to_string(), f.id.to_owned()));
        }
        if global.is_some_and(|g| g.is_match(p)) {
            global_files.push((p.to_string(), format!("{:o} {}", f.mode, f.id)));
        }
    }
    let listed = Listed {
        wanted,
        global: global_files,
        conflicts: snapshot.has_conflicts(),
    };
    Ok((snapshot, listed))
}

/// Read a snapshot (the index, or the temporary index `index`), read and parse the manifests for
/// which `want` holds from the object store on two threads, and the directories' tree ids. With
/// `fetch` false (`-f`), no manifest is read and every directory's tree id is kept. `global`
/// picks the global inputs' files.
///
/// The index is first read by the quick pass of [`index_scan`] (the manifests' entries and the
/// cache-tree only), a second thread reading the manifests it finds meanwhile; gix-index reads it
/// whole when that pass does not suffice.
fn load_git(
    git: &Git,
    repo: &RepoInfo,
    index: Option<&Path>,
    want: &dyn Fn(&[u8]) -> bool,
    fetch: bool,
    global: Option<&globset::GlobSet>,
) -> Result<GitState> {
    let t = std::time::Instant::now();
    if fetch {
        let queue = ChunkQueue::default();
        let path = index.unwrap_or(&repo.index);
        let quick = std::thread::scope(|scope| {
            let reader = scope.spawn(|| read_manifest_chunks(git, repo, &queue));
            let listed = quick_listing(path, repo, want, global, &mut |chunk| {
                queue.push(chunk.to_vec());
            });
            let Some((listed, tree_ids)) = listed else {
                // What was read is dropped; the full listing reads it again.
                queue.close();
                drop(reader.join());
                return None;
            };
            let pushed = queue.pushed() * MANIFEST_CHUNK;
            for chunk in listed.wanted[pushed..].chunks(MANIFEST_CHUNK) {
                queue.push(chunk.to_vec());
            }
            queue.close();
            tracing::debug!(
                "index read in {:?} (quick pass): {} manifests",
                t.elapsed(),
                listed.wanted.len()
            );
            let mine = read_manifest_chunks(git, repo, &queue);
            let theirs = reader.join().expect("manifest reader panicked");
            Some((listed, tree_ids, in_order(mine, theirs)))
        });
        if let Some((listed, (root, trees), manifests)) = quick {
            tracing::debug!("manifests read in {:?}", t.elapsed());
            return Ok(GitState {
                snapshot: None,
                format: repo.format,
                conflicts: listed.conflicts,
                global: listed.global,
                manifests: manifests?,
                root,
                trees,
            });
        }
    }
    let queue = ChunkQueue::default();
    let (
        snapshot,
        Listed {
            wanted,
            global,
            conflicts,
        },
    ) = full_listing(git, repo, index, want, fetch, global)?;
    tracing::debug!(
        "index read in {:?} (gix-index): {} manifests",
        t.elapsed(),
        wanted.len()
    );
    for chunk in wanted.chunks(MANIFEST_CHUNK) {
        queue.push(chunk.to_vec());
    }
    queue.close();
    let dirs: rustc_hash::FxHashSet<&str> = wanted
        .iter()
        .map(|(p, _)| index_scan::parent_dir(p))
        .collect();
    let keep = if fetch { Dirs::Only(&dirs) } else { Dirs::All };
    // Read and parsed by two threads taking chunks in turn; this one first computes the tree ids
    // (mostly taken from the index's cache-tree, so quick).
    let (manifests, (root, trees)) = std::thread::scope(|scope| {
        let reader = scope.spawn(|| read_manifest_chunks(git, repo, &queue));
        let trees = snapshot.tree_ids(keep);
        tracing::debug!("tree ids computed in {:?}", t.elapsed());
        let mine = read_manifest_chunks(git, repo, &queue);
        let theirs = reader.join().expect("manifest reader panicked");
        (in_order(mine, theirs), trees)
    });
    tracing::debug!("manifests read in {:?}", t.elapsed());
    drop(dirs);
    Ok(GitState {
        snapshot: Some(snapshot),
        format: repo.format,
        conflicts,
        global,
        manifests: manifests?,
        root,
        trees,
    })
}

/// The manifests read by two threads, in path order; the first error in path order wins.
fn in_order(mine: Result<ReadChunks>, theirs: Result<ReadChunks>) -> Result<Vec<Manifest>> {
    let mut all = mine?;
    all.extend(theirs?);
    all.sort_unstable_by_key(|(chunk, _)| *chunk);
    all.into_iter()
        .flat_map(|(_, parsed)| parsed)
        .collect::<Result<Vec<_>>>()
}

/// Manifests are read in chunks of this many, taken in turn by the reading threads.
const MANIFEST_CHUNK: usize = 256;

/// A chunk of manifests to read: path and blob id.
type Chunk = Vec<(String, gix_index::hash::ObjectId)>;

/// Chunks read: `(chunk number, its manifests in order)`.
type ReadChunks = Vec<(usize, Vec<Result<Manifest>>)>;

/// Chunks of manifests to read, numbered in path order as they are pushed, taken in turn by the
/// reading threads; [`ChunkQueue::pop`] waits for the next until the queue is closed.
#[derive(Default)]
struct ChunkQueue {
    state: std::sync::Mutex<QueueState>,
    ready: std::sync::Condvar,
}

#[derive(Default)]
struct QueueState {
    chunks: std::collections::VecDeque<(usize, Chunk)>,
    pushed: usize,
    closed: bool,
}

impl ChunkQueue {
    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn push(&self, chunk: Chunk) {
        let mut s = self.lock();
        let n = s.pushed;
        s.pushed += 1;
        s.chunks.push_back((n, chunk));
        self.ready.notify_one();
    }

    /// How many chunks were pushed.
    fn pushed(&self) -> usize {
        self.lock().pushed
    }

    /// No more chunks: the readers stop once the queue is empty.
    fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }

    /// The next chunk, waiting for one; `None` once the queue is closed and empty.
    fn pop(&self) -> Option<(usize, Chunk)> {
        let mut s = self.lock();
        loop {
            if let Some(c) = s.chunks.pop_front() {
                return Some(c);
            }
            if s.closed {
                return None;
            }
            s = self
                .ready
                .wait(s)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }
}

/// Read and parse the chunks of `queue` until it is closed and empty. A manifest that does not
/// parse is returned as its error, so that the first error in path order wins.
fn read_manifest_chunks(git: &Git, repo: &RepoInfo, queue: &ChunkQueue) -> Result<ReadChunks> {
    let odb = open_odb(repo);
    let mut out = Vec::new();
    while let Some((chunk, part)) = queue.pop() {
        let mut parsed: Vec<Option<Result<Manifest>>> = Vec::new();
        parsed.resize_with(part.len(), || None);
        read_blobs(git, odb.as_ref(), &part, &mut |i, bytes| {
            let path = &part[i].0;
            parsed[i] = Some(manifest::parse_dependencies(
                &manifest::component_of_manifest(path),
                path,
                bytes,
            ));
        })?;
        out.push((
            chunk,
            parsed
                .into_iter()
                .map(|m| m.expect("every manifest was read"))
                .collect(),
        ));
    }
    Ok(out)
}

/// The repository's object store, read in-process; `None` (git is asked instead) when it cannot be opened.
fn open_odb(repo: &RepoInfo) -> Option<gix_odb::Handle> {
    gix_odb::at(&repo.objects, repo.format.kind())
        .inspect_err(|e| {
            tracing::debug!("cannot open {}: {e}; asking git", repo.objects.display());
        })
        .ok()
}

/// Hand the contents of each blob of `wanted` to `each` with its position: from the object store
/// in-process (packs and loose objects), and what it lacks (a partial clone, alternates given by
/// environment) from `git cat-file --batch`.
fn read_blobs(
    git: &Git,
    odb: Option<&gix_odb::Handle>,
    wanted: &[(String, gix_index::hash::ObjectId)],
    each: &mut dyn FnMut(usize, &[u8]),
) -> Result<()> {
    use gix_object::Find;
    if wanted.is_empty() {
        return Ok(());
    }
    let mut missing = Vec::new();
    match odb {
        Some(odb) => {
            let mut buf = Vec::new();
            for (i, (path, id)) in wanted.iter().enumerate() {
                match odb.try_find(id, &mut buf) {
                    Ok(Some(data)) if data.kind == gix_object::Kind::Blob => each(i, data.data),
                    Ok(Some(data)) => {
                        return Err(Error::Git {
                            command: "read object".into(),
                            message: format!("{path}: {id} is a {}, not a blob", data.kind),
                        });
                    }
                    Ok(None) | Err(_) => missing.push(i),
                }
            }
        }
        None => missing.extend(0..wanted.len()),
    }
    if !missing.is_empty() {
        tracing::debug!("{} manifests through git cat-file", missing.len());
        let ids = missing.iter().map(|&i| wanted[i].1.to_string()).collect();
        let fetched = git.cat_file()?.request(ids).wait()?;
        for (i, bytes) in missing.into_iter().zip(fetched) {
            each(i, &bytes);
        }
    }
    Ok(())
}

fn walk(root: &Path) -> Result<Vec<String>> {
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(root)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.file_name() != ".git")
    {
        let entry = entry.map_err(|e| Error::Read {
            path: e
                .path()
                .map_or_else(|| root.display().to_string(), |p| p.display().to_string()),
            source: e
                .into_io_error()
                .unwrap_or_else(|| std::io::Error::other("walk failed")),
        })?;
        if (entry.file_type().is_file() || entry.file_type().is_symlink())
            && let Ok(rel) = entry.path().strip_prefix(root)
            && let Some(s) = rel.to_str()
        {
            files.push(s.replace(std::path::MAIN_SEPARATOR, "/"));
        }
    }
    Ok(files)
}

fn read_manifests(inputs: &Inputs, state: &mut State, glob: &str) -> Result<Vec<Manifest>> {
    if let Some(file) = &inputs.file {
        let shown = file.display().to_string();
        let text =
            std::fs::read_to_string(inputs.root.join(file)).map_err(|source| Error::Read {
                path: shown.clone(),
                source,
            })?;
        return manifest::parse_full(&shown, &text);
    }
    // A GlobSet picks a fast strategy (e.g. a basename literal for `**/Dependencies`).
    let matcher = config::globset(&[glob.to_string()])?;
    let mut manifests = Vec::new();
    match state {
        State::Git(state) => manifests = std::mem::take(&mut state.manifests),
        State::Walked(files) => {
            for rel in files.iter().filter(|p| matcher.is_match(p.as_str())) {
                let bytes = std::fs::read(inputs.root.join(rel)).map_err(|source| Error::Read {
                    path: rel.clone(),
                    source,
                })?;
                manifests.push(manifest::parse_dependencies(
                    &manifest::component_of_manifest(rel),
                    rel,
                    &bytes,
                )?);
            }
        }
    }
    // Two manifests in one directory (a glob matching several names) define the component once.
    manifests.sort_by(|a, b| a.component.cmp(&b.component));
    manifests.dedup_by(|b, a| {
        if a.component == b.component {
            a.deps.append(&mut b.deps);
            true
        } else {
            false
        }
    });
    Ok(manifests)
}

/// Content ids per component: the git tree id of its directory (`git rev-parse HEAD:DIR`, the
/// empty tree when it holds no file), or outside git a sha256 over relative path and content of
/// every file below it; plus the id of the global inputs.
fn content_ids(
    root: &Path,
    graph: &Graph,
    state: &State,
    config: &Config,
) -> (Vec<String>, String) {
    match state {
        State::Git(git) => {
            let empty = git.format.empty_tree();
            let ids = graph
                .names
                .iter()
                .map(|name| {
                    let dir = if name == "." { "" } else { name.as_str() };
                    format!("git:{}", git.trees.get(dir).unwrap_or(&empty))
                })
                .collect();
            (ids, global_id(&git.global))
        }
        State::Walked(files) => {
            let mut hashers: Vec<Sha256> = vec![Sha256::new(); graph.len()];
            let mut global = Vec::new();
            for f in files {
                let owners = graph.owners(f);
                let is_global = config.global.is_match(f.as_str());
                if owners.is_empty() && !is_global {
                    continue;
                }
                let Ok(bytes) = std::fs::read(root.join(f)) else {
                    continue;
                };
                let digest = Sha256::digest(&bytes);
                if is_global {
                    global.push((f.clone(), hex::encode(digest)));
                }
                for o in owners {
                    let name = &graph.names[o];
                    let rel = if name == "." {
                        f.as_str()
                    } else {
                        &f[name.len() + 1..]
                    };
                    hashers[o].update(rel.as_bytes());
                    hashers[o].update(b"\0");
                    hashers[o].update(digest);
                }
            }
            let ids = hashers
                .into_iter()
                .map(|h| format!("fs:{}", hex::encode(h.finalize())))
                .collect();
            (ids, global_id(&global))
        }
    }
}

fn global_id(entries: &[(String, String)]) -> String {
    if entries.is_empty() {
        return String::new();
    }
    let mut h = Sha256::new();
    for (p, id) in entries {
        h.update(p.as_bytes());
        h.update(b"\0");
        h.update(id.as_bytes());
        h.update(b"\n");
    }
    hex::encode(h.finalize())
}

fn is_parent_of_head(rev: &str) -> bool {
    matches!(
        rev.trim(),
        "HEAD^" | "HEAD^1" | "HEAD~" | "HEAD~1" | "@^" | "@^1" | "@~" | "@~1"
    )
}

struct DiffResult {
    changes: Vec<Change>,
    base: Option<Base>,
    head: Option<Head>,
    full_rebuild: Option<String>,
}

fn git_changes(
    inputs: &Inputs,
    repo: &RepoInfo,
    git: &Git,
    source: &Source,
    config: &Config,
) -> Result<DiffResult> {
    // The base branch, `None` when none is given and no default exists (an error once HEAD is
    // known to exist, so that an empty repository says so first).
    let branch = match source {
        Source::Feature(branch) => match branch.clone().or_else(|| config.file.base_branch.clone())
        {
            Some(b) => Some(b),
            None => git.default_base()?,
        },
        _ => None,
    };
    // The common case in one git call: HEAD and the single merge base with the branch.
    if let Some(branch) = &branch
        && let Some((head, base)) = git.head_and_merge_base(branch)?
    {
        return diff_from(inputs, git, head, branch.clone(), base);
    }
    let head_commit = git.commit_of("HEAD")?.ok_or(Error::NoCommits)?;
    let head = Some(Head {
        commit: head_commit.clone(),
        uncommitted: inputs.uncommitted,
    });
    let (reference, base_commit) = match source {
        Source::Feature(_) => {
            let branch = branch.ok_or_else(|| Error::BaseNotFound {
                kind: "branch",
                rev: "main".into(),
                hint: " (no --base-branch given, and none of origin/HEAD, main, master exists)"
                    .into(),
            })?;
            let Some(tip) = git.commit_of(&branch)? else {
                return Err(Error::BaseNotFound {
                    kind: "branch",
                    rev: branch,
                    hint: if repo.shallow {
                        " (shallow clone: fetch it, e.g. git fetch --depth=50 origin BRANCH)".into()
                    } else {
                        String::new()
                    },
                });
            };
            match git.merge_base(&tip, &head_commit)? {
                Some(mb) => (branch, mb),
                None if repo.shallow => {
                    return Err(Error::Shallow {
                        what: format!("the merge base of {branch} and HEAD"),
                    });
                }
                None => {
                    return Ok(DiffResult {
                        changes: Vec::new(),
                        base: Some(Base {
                            reference: branch.clone(),
                            commit: tip,
                        }),
                        head,
                        full_rebuild: Some(format!(
                            "no merge base between {branch} and HEAD: everything is affected"
                        )),
                    });
                }
            }
        }
        Source::Main(rev) => match git.commit_of(rev)? {
            Some(c) => (rev.clone(), c),
            None if repo.shallow => {
                return Err(Error::Shallow {
                    what: format!("base commit '{rev}'"),
                });
            }
            None if is_parent_of_head(rev) && git.is_root_commit(&head_commit)? => {
                return Ok(DiffResult {
                    changes: Vec::new(),
                    base: None,
                    head,
                    full_rebuild: Some(
                        "first commit (HEAD has no parent): everything is affected".into(),
                    ),
                });
            }
            None => {
                return Err(Error::BaseNotFound {
                    kind: "commit",
                    rev: rev.clone(),
                    hint: String::new(),
                });
            }
        },
        Source::Nothing | Source::Paths(_) => unreachable!("not a git source"),
    };
    diff_from(inputs, git, head_commit, reference, base_commit)
}

/// The changes from `base` (found from `reference`) to `head`, or to the working tree with
/// `--uncommitted`.
fn diff_from(
    inputs: &Inputs,
    git: &Git,
    head: String,
    reference: String,
    base: String,
) -> Result<DiffResult> {
    let mut changes = git.diff(&base, (!inputs.uncommitted).then_some(head.as_str()))?;
    if inputs.uncommitted {
        for path in git.untracked()? {
            changes.push(Change {
                path,
                status: Status::Added,
                old_path: None,
            });
        }
    }
    Ok(DiffResult {
        changes,
        base: Some(Base {
            reference,
            commit: base,
        }),
        head: Some(Head {
            commit: head,
            uncommitted: inputs.uncommitted,
        }),
        full_rebuild: None,
    })
}

/// Run the analysis.
///
/// Inside git, `diff` and `why` read the committed state (HEAD), or with `--uncommitted` a snapshot
/// of the working tree; `print` and stdin mode always read the working tree (like the original).
/// The git diff runs in a second thread while the tree is listed and the manifests are parsed.
pub fn analyze(inputs: &Inputs, source: &Source) -> Result<Analysis> {
    let started = std::time::Instant::now();
    let git = Git::new(&inputs.root);
    let repo = git.repo_info()?;
    let git_source = matches!(source, Source::Feature(_) | Source::Main(_));
    if git_source && repo.is_none() {
        return Err(Error::NotARepository(inputs.root.display().to_string()));
    }
    let config = Config::load(&inputs.root, inputs.config.as_deref())?;
    let glob = inputs
        .dependency_files
        .clone()
        .or_else(|| config.file.dependency_files.clone())
        .unwrap_or_else(|| DEFAULT_DEPENDENCY_FILES.to_string());
    let worktree = inputs.uncommitted || !git_source;
    let mode = match source {
        Source::Nothing => "print",
        Source::Paths(_) => "stdin",
        Source::Feature(_) => "feature-branch",
        Source::Main(_) => "main-branch",
    };

    // Manifests to fetch from git (none with -f); a GlobSet picks a fast strategy
    // (a basename literal for `**/Dependencies`).
    let manifest_glob = config::globset(std::slice::from_ref(&glob))?;
    let fetch_manifests = inputs.file.is_none();
    // `**/NAME` (the default) is a plain basename test: no glob machinery per listed file.
    let basename = glob
        .strip_prefix("**/")
        .filter(|b| !b.is_empty() && !b.contains(['/', '*', '?', '[', ']', '{', '}', '\\']));
    let suffix = basename.map(|b| format!("/{b}"));
    let want = |path: &[u8]| {
        use std::os::unix::ffi::OsStrExt as _;
        fetch_manifests
            && match (basename, &suffix) {
                (Some(b), Some(s)) => path == b.as_bytes() || path.ends_with(s.as_bytes()),
                _ => manifest_glob.is_match(std::ffi::OsStr::from_bytes(path)),
            }
    };
    let loaded = Load {
        inputs,
        source,
        repo: repo.as_ref(),
        git: &git,
        config: &config,
        glob: &glob,
        want: &want,
        fetch_manifests,
        git_source,
        worktree,
        started,
    };
    let (graph, warnings, state, diff) = loaded.run()?;
    // The component hashes need only the graph and the content ids: computed on a second thread
    // while the changes are mapped to components and propagated.
    let (hashes, propagated) = std::thread::scope(|scope| {
        let hashing = scope.spawn(|| {
            let (tree_ids, global) = content_ids(&inputs.root, &graph, &state, &config);
            graph.hashes(&tree_ids, &global)
        });
        let propagated = propagate(
            inputs,
            &config,
            &git,
            &graph,
            &manifest_glob,
            diff.changes,
            diff.base.as_ref(),
            diff.full_rebuild.as_deref(),
        );
        tracing::debug!("impact computed after {:?}", started.elapsed());
        (hashing.join().expect("hashing thread panicked"), propagated)
    });
    tracing::debug!("hashes after {:?}", started.elapsed());
    let Propagated {
        changed,
        affected,
        reasons,
        causes,
        file_changes,
        deleted_components,
    } = propagated?;
    Ok(Analysis {
        mode,
        graph,
        hashes,
        changed,
        affected,
        reasons,
        causes,
        changes: file_changes,
        deleted_components,
        base: diff.base,
        head: diff.head,
        full_rebuild: diff.full_rebuild,
        warnings,
        snapshot: match state {
            State::Git(git) => git.snapshot,
            State::Walked(_) => None,
        },
    })
}

/// What the changes do to the components once propagated through the graph.
struct Propagated {
    changed: Vec<bool>,
    affected: Vec<bool>,
    reasons: Vec<Vec<String>>,
    causes: Vec<Option<Cause>>,
    file_changes: Vec<FileChange>,
    deleted_components: Vec<String>,
}

/// The changed files mapped to components (with `-f`, also the manifest's own changes), global
/// inputs and a full rebuild applied to every component, and the impact propagated to dependents,
/// with reasons.
#[allow(clippy::too_many_arguments)]
fn propagate(
    inputs: &Inputs,
    config: &Config,
    git: &Git,
    graph: &Graph,
    manifest_glob: &globset::GlobSet,
    changes: Vec<Change>,
    base: Option<&Base>,
    full_rebuild: Option<&str>,
) -> Result<Propagated> {
    let mut impact = map_changes(inputs, config, graph, manifest_glob, changes);
    if let (Some(file), Some(base)) = (&inputs.file, base) {
        graph_file_changes(git, file, &base.commit, graph, &mut impact)?;
    }
    let Impact {
        mut changed,
        mut reasons,
        file_reasons,
        mut causes,
        file_changes,
        mut deleted_components,
        global_changes,
    } = impact;
    let n = graph.len();
    for (c, &count) in file_reasons.iter().enumerate() {
        if count > MAX_FILE_REASONS {
            reasons[c].push(format!(
                "... and {} more changed files",
                count - MAX_FILE_REASONS
            ));
        }
    }
    deleted_components.sort();
    deleted_components.dedup();
    for &gi in &global_changes {
        let reason = format!("global input changed: {}", file_changes[gi].change.path);
        for c in 0..n {
            changed[c] = true;
            causes[c].get_or_insert(Cause::Global(gi));
            if reasons[c].len() < MAX_FILE_REASONS + 1 {
                reasons[c].push(reason.clone());
            }
        }
    }
    if let Some(why) = full_rebuild {
        for c in 0..n {
            changed[c] = true;
            causes[c] = Some(Cause::Everything);
            reasons[c].push(why.to_string());
        }
    }
    let affected = graph.affected(&changed);
    for c in 0..n {
        if affected[c] {
            for e in &graph.deps[c] {
                if affected[e.to] && e.to != c {
                    // Tens of thousands of these on large graphs: no format machinery.
                    let (name, kind) = (
                        &graph.names[e.to],
                        if e.strong { " (strong)" } else { " (weak)" },
                    );
                    let mut r = String::with_capacity(11 + name.len() + kind.len());
                    r.push_str("depends on ");
                    r.push_str(name);
                    r.push_str(kind);
                    reasons[c].push(r);
                }
            }
        }
    }
    Ok(Propagated {
        changed,
        affected,
        reasons,
        causes,
        file_changes,
        deleted_components,
    })
}

/// The first stage of an analysis: the files (of git's index, a snapshot of the working tree, or a walk), the
/// manifests and the checked graph, with the git diff computed on a second thread meanwhile.
struct Load<'a> {
    inputs: &'a Inputs,
    source: &'a Source,
    repo: Option<&'a RepoInfo>,
    git: &'a Git,
    config: &'a Config,
    glob: &'a str,
    want: &'a (dyn Fn(&[u8]) -> bool + Sync),
    fetch_manifests: bool,
    git_source: bool,
    worktree: bool,
    started: std::time::Instant,
}

impl Load<'_> {
    fn run(&self) -> Result<(Graph, Vec<String>, State, DiffResult)> {
        let Load {
            inputs,
            source,
            repo,
            git,
            config,
            glob,
            want,
            fetch_manifests,
            git_source,
            worktree,
            started,
        } = *self;
        // The global inputs' files are listed with the snapshot's (none without global inputs).
        let global = (!config.file.global_inputs.is_empty()).then_some(&config.global);
        std::thread::scope(|scope| -> Result<_> {
            let diff_thread = match (&repo, git_source) {
                (Some(info), true) => {
                    Some(scope.spawn(|| git_changes(inputs, info, git, source, config)))
                }
                _ => None,
            };
            let mut state = match &repo {
                Some(info) if worktree => {
                    let index = git.worktree_index(&info.index)?;
                    State::Git(Box::new(load_git(
                        git,
                        info,
                        Some(&index),
                        &want,
                        fetch_manifests,
                        global,
                    )?))
                }
                Some(info) => {
                    // The committed state: the index, when it holds exactly HEAD's tree (the tree id
                    // computed from it equals HEAD's, checked in parallel), else a temporary index
                    // read from HEAD.
                    let loaded = load_git(git, info, None, &want, fetch_manifests, global)?;
                    let computed = loaded.root.map(|id| id.to_string());
                    if computed == info.head_tree && !loaded.conflicts {
                        State::Git(Box::new(loaded))
                    } else {
                        drop(loaded);
                        tracing::debug!(
                            "the index differs from HEAD: reading HEAD through a temporary index"
                        );
                        let head = git.commit_of("HEAD")?.ok_or(Error::NoCommits)?;
                        let index = git.commit_index(&head)?;
                        State::Git(Box::new(load_git(
                            git,
                            info,
                            Some(&index),
                            &want,
                            fetch_manifests,
                            global,
                        )?))
                    }
                }
                None => State::Walked(walk(&inputs.root)?),
            };
            tracing::debug!("files listed after {:?}", started.elapsed());
            let manifests = read_manifests(inputs, &mut state, glob)?;
            tracing::debug!(
                "{} manifests read after {:?}",
                manifests.len(),
                started.elapsed()
            );
            let (graph, warnings) = Graph::build(manifests, inputs.allow_unknown)?;
            graph.check_strong_cycles()?;
            tracing::debug!(
                "graph of {} edges checked after {:?}",
                graph.edge_count(),
                started.elapsed()
            );
            let diff = match diff_thread {
                Some(handle) => handle.join().expect("git diff thread panicked")?,
                None => DiffResult {
                    changes: match source {
                        Source::Paths(paths) => paths
                            .iter()
                            .map(|p| Change {
                                path: p.clone(),
                                status: Status::Modified,
                                old_path: None,
                            })
                            .collect(),
                        _ => Vec::new(),
                    },
                    base: None,
                    head: None,
                    full_rebuild: None,
                },
            };
            tracing::debug!(
                "{} changes after {:?}",
                diff.changes.len(),
                started.elapsed()
            );
            Ok((graph, warnings, state, diff))
        })
    }
}

/// What the changed files do to the components: which changed and why.
struct Impact {
    changed: Vec<bool>,
    reasons: Vec<Vec<String>>,
    file_reasons: Vec<usize>,
    causes: Vec<Option<Cause>>,
    file_changes: Vec<FileChange>,
    deleted_components: Vec<String>,
    global_changes: Vec<usize>,
}

/// Changed files to components: each file's owners (and its old path's), ignored and global inputs, the
/// components whose manifest went away, and one reason line per file (at most [`MAX_FILE_REASONS`]).
fn map_changes(
    inputs: &Inputs,
    config: &Config,
    graph: &Graph,
    manifest_glob: &globset::GlobSet,
    diff_changes: Vec<Change>,
) -> Impact {
    let n = graph.len();
    let mut changed = vec![false; n];
    let mut reasons: Vec<Vec<String>> = vec![Vec::new(); n];
    let mut file_reasons = vec![0usize; n];
    let mut causes: Vec<Option<Cause>> = vec![None; n];
    let mut file_changes = Vec::with_capacity(diff_changes.len());
    let mut deleted_components = Vec::new();
    let mut global_changes = Vec::new();
    for (ci, change) in diff_changes.into_iter().enumerate() {
        let ignored = config.ignore.is_match(&change.path)
            && change
                .old_path
                .as_deref()
                .is_none_or(|o| config.ignore.is_match(o));
        let global = !ignored
            && (config.global.is_match(&change.path)
                || change
                    .old_path
                    .as_deref()
                    .is_some_and(|o| config.global.is_match(o)));
        let mut components = Vec::new();
        if !ignored {
            components = graph.owners(&change.path);
            if let Some(old) = &change.old_path {
                components.extend(graph.owners(old));
                components.sort_unstable();
                components.dedup();
            }
        }
        // A manifest that went away (deleted, or renamed from) is a deleted component.
        if inputs.file.is_none() {
            let gone = match change.status {
                Status::Deleted => Some(change.path.as_str()),
                Status::Renamed => change.old_path.as_deref(),
                _ => None,
            };
            if let Some(p) = gone
                && manifest_glob.is_match(p)
            {
                let c = manifest::component_of_manifest(p);
                if !graph.index.contains_key(&c) {
                    deleted_components.push(c);
                }
            }
        }
        let reason = match (&change.status, &change.old_path) {
            (Status::Renamed, Some(old)) => format!("renamed: {old} -> {}", change.path),
            (Status::Copied, Some(old)) => format!("copied: {old} -> {}", change.path),
            (Status::Added, _) => format!("added: {}", change.path),
            (Status::Deleted, _) => format!("deleted: {}", change.path),
            _ => format!("changed: {}", change.path),
        };
        for &c in &components {
            changed[c] = true;
            causes[c].get_or_insert(Cause::File(ci));
            file_reasons[c] += 1;
            if file_reasons[c] <= MAX_FILE_REASONS {
                reasons[c].push(reason.clone());
            }
        }
        if global {
            global_changes.push(ci);
        }
        file_changes.push(FileChange {
            change,
            components,
            global,
            ignored,
        });
    }
    Impact {
        changed,
        reasons,
        file_reasons,
        causes,
        file_changes,
        deleted_components,
        global_changes,
    }
}

/// With `-f`, the graph lives in one file: when it changed, mark the components whose edges changed.
fn graph_file_changes(
    git: &Git,
    file: &Path,
    base_commit: &str,
    graph: &Graph,
    impact: &mut Impact,
) -> Result<()> {
    let n = graph.len();
    let rel = file.to_string_lossy();
    let rel = rel.strip_prefix("./").unwrap_or(&rel);
    if impact
        .file_changes
        .iter()
        .any(|f| f.change.path == rel || f.change.old_path.as_deref() == Some(rel))
    {
        let old = git
            .show(base_commit, rel)?
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .and_then(|text| manifest::parse_full(rel, &text).ok())
            .unwrap_or_default();
        let old: std::collections::HashMap<&str, Vec<(&str, bool)>> = old
            .iter()
            .map(|m| {
                let mut deps: Vec<(&str, bool)> =
                    m.deps.iter().map(|d| (d.name.as_str(), d.strong)).collect();
                deps.sort_unstable();
                deps.dedup();
                (m.component.as_str(), deps)
            })
            .collect();
        for c in 0..n {
            let now: Vec<(&str, bool)> = graph.deps[c]
                .iter()
                .map(|e| (graph.names[e.to].as_str(), e.strong))
                .collect();
            if old.get(graph.names[c].as_str()) != Some(&now) {
                impact.changed[c] = true;
                impact.causes[c].get_or_insert(Cause::Graph);
                impact.reasons[c].push(format!("dependencies changed in {rel}"));
            }
        }
    }
    Ok(())
}

/// Selection filters, applied in the original's order: scope, top-level, then rebuild-strong.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Only this component and its dependencies.
    pub scope: Option<String>,
    /// Only components nothing depends on.
    pub top_level: bool,
    /// Add the strong dependencies of the selection (diff only).
    pub rebuild_strong: bool,
}

impl Analysis {
    /// The selected components: everything (print) or the affected ones (diff), filtered.
    /// Components added by `--rebuild-strong` get a reason.
    pub fn select(&mut self, sel: &Selection) -> Result<Vec<bool>> {
        let g = &self.graph;
        let mut selected = if self.mode == "print" {
            vec![true; g.len()]
        } else {
            self.affected.clone()
        };
        if let Some(scope) = &sel.scope {
            let i = g.find(scope)?;
            let mut start = vec![false; g.len()];
            start[i] = true;
            let mut within = g.descendants(&start, false);
            within[i] = true;
            for (s, w) in selected.iter_mut().zip(within) {
                *s &= w;
            }
        }
        if sel.top_level {
            for (s, t) in selected.iter_mut().zip(g.top_level()) {
                *s &= t;
            }
        }
        if sel.rebuild_strong && self.mode != "print" {
            let strong = g.descendants(&selected, true);
            for i in 0..g.len() {
                if strong[i] && !selected[i] {
                    let by = g.rdeps[i]
                        .iter()
                        .find(|&&d| {
                            (selected[d] || strong[d])
                                && g.deps[d].iter().any(|e| e.to == i && e.strong)
                        })
                        .map_or_else(String::new, |&d| format!(" of {}", g.names[d]));
                    self.reasons[i]
                        .push(format!("strong dependency{by}, rebuilt (--rebuild-strong)"));
                }
            }
            for (s, t) in selected.iter_mut().zip(strong) {
                *s |= t;
            }
        }
        Ok(selected)
    }
}

#[cfg(test)]
mod tests {
    use super::Source;

    fn paths(source: Source) -> Vec<String> {
        match source {
            Source::Paths(p) => p,
            other => panic!("expected paths, got {other:?}"),
        }
    }

    #[test]
    fn path_list_drops_dot_slash_carriage_returns_and_blank_lines() {
        let list = "./a/x.rs\r\nb/y.rs\n\n  \nc/./z.rs\n";
        assert_eq!(
            paths(Source::paths_from_list(list, false)),
            ["a/x.rs", "b/y.rs", "c/./z.rs"]
        );
    }

    #[test]
    fn nul_separated_path_list_keeps_newlines_inside_names() {
        let list = "a/with\nnewline\0./b\0\0";
        assert_eq!(
            paths(Source::paths_from_list(list, true)),
            ["a/with\nnewline", "b"]
        );
    }
}
