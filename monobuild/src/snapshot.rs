//! One state of the repository's files as git's index holds them (read in-process with gix-index, or parsed from `git ls-files -s -z`), and the git tree id of every directory, computed as `git write-tree` would.

use std::collections::HashMap;
use std::ops::Range;

use rustc_hash::FxHashSet;
use std::path::Path;

use gix_index::entry::{Flags, Mode, Stat};
use gix_index::hash::{Kind, ObjectId, oid};
use sha2::Digest;

use crate::error::{Error, Result};

/// The files of one state (the index, a temporary index of a commit, or of the working tree).
#[derive(Debug)]
pub struct Snapshot {
    state: gix_index::State,
    /// The entries below the working directory.
    range: Range<usize>,
    /// Bytes to strip from entry paths: the working directory's path from the top (`""` or ending in `/`).
    prefix_len: usize,
    /// That path (empty when the paths were listed relative to the working directory).
    prefix: Vec<u8>,
    format: ObjectFormat,
}

/// The directories whose tree ids [`Snapshot::tree_ids`] returns (relative paths, `""` for the
/// working directory).
#[derive(Debug, Clone, Copy)]
pub enum Dirs<'a> {
    /// Every directory.
    All,
    /// Only these.
    Only(&'a FxHashSet<&'a str>),
}

/// One file of a [`Snapshot`] (stage 0, not intent-to-add).
#[derive(Debug, Clone, Copy)]
pub struct File<'a> {
    /// The path relative to the working directory (raw bytes; git paths need not be UTF-8).
    pub path: &'a [u8],
    /// The file mode as git writes it in trees (`0o100644`, `0o100755`, `0o120000`, `0o160000`).
    pub mode: u32,
    /// The blob (or, for a submodule, commit) id.
    pub id: &'a oid,
}

/// The hash algorithm of a repository's objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ObjectFormat {
    /// SHA-1 (git's default).
    #[default]
    Sha1,
    /// SHA-256 (`git init --object-format=sha256`).
    Sha256,
}

impl ObjectFormat {
    /// Parse `git rev-parse --show-object-format` output.
    pub fn parse(name: &str) -> Result<Self> {
        match name.trim() {
            "" | "sha1" => Ok(Self::Sha1),
            "sha256" => Ok(Self::Sha256),
            other => Err(Error::Git {
                command: "rev-parse --show-object-format".into(),
                message: format!("unsupported object format '{other}'"),
            }),
        }
    }

    /// gitoxide's name for it.
    pub fn kind(self) -> Kind {
        match self {
            Self::Sha1 => Kind::Sha1,
            Self::Sha256 => Kind::Sha256,
        }
    }

    /// The id of the empty tree: the content id of a directory that holds no tracked file.
    pub fn empty_tree(self) -> ObjectId {
        ObjectId::empty_tree(self.kind())
    }
}

impl Snapshot {
    /// Read the index file at `index` (as git wrote it) in-process. `prefix` is the working
    /// directory's path from the top of the repository (`""` or ending in `/`). `Ok(None)` when the
    /// index uses a feature read only through git (a sparse index); a missing index is empty.
    pub fn read_index(index: &Path, prefix: &str, format: ObjectFormat) -> Result<Option<Self>> {
        let state = if index.exists() {
            let file = gix_index::File::at(
                index,
                format.kind(),
                true,
                gix_index::decode::Options::default(),
            )
            .map_err(|e| Error::Index {
                path: index.display().to_string(),
                source: e.into(),
            })?;
            let (state, _path) = file.into_parts();
            state
        } else {
            gix_index::State::new(format.kind())
        };
        if state.is_sparse() {
            return Ok(None);
        }
        let range = state
            .prefixed_entries_range(prefix.as_bytes().into())
            .unwrap_or(0..0);
        Ok(Some(Self {
            state,
            range,
            prefix_len: prefix.len(),
            prefix: prefix.as_bytes().to_vec(),
            format,
        }))
    }

    /// Parse `git ls-files -s -z` output (paths relative to the working directory).
    pub fn from_ls_files(out: &[u8], format: ObjectFormat) -> Result<Self> {
        let bad = |rec: &[u8]| Error::Git {
            command: "ls-files -s".into(),
            message: format!(
                "unexpected output record '{}'",
                String::from_utf8_lossy(rec)
            ),
        };
        let mut index = gix_index::State::new(format.kind());
        for rec in out.split(|b| *b == 0).filter(|r| !r.is_empty()) {
            let tab = rec
                .iter()
                .position(|b| *b == b'\t')
                .ok_or_else(|| bad(rec))?;
            let meta = std::str::from_utf8(&rec[..tab]).map_err(|_| bad(rec))?;
            let mut parts = meta.split(' ');
            let (Some(mode), Some(id), Some(stage)) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(bad(rec));
            };
            let mode = u32::from_str_radix(mode, 8).map_err(|_| bad(rec))?;
            let mode = Mode::from_bits(mode).ok_or_else(|| bad(rec))?;
            let id = ObjectId::from_hex(id.as_bytes()).map_err(|_| bad(rec))?;
            let stage: u32 = stage.parse().map_err(|_| bad(rec))?;
            let flags = Flags::from_bits_retain(stage << 12);
            index.dangerously_push_entry(Stat::default(), id, flags, mode, rec[tab + 1..].into());
        }
        let range = 0..index.entries().len();
        Ok(Self {
            state: index,
            range,
            prefix_len: 0,
            prefix: Vec::new(),
            format,
        })
    }

    /// The repository's hash algorithm.
    pub fn format(&self) -> ObjectFormat {
        self.format
    }

    /// The files below the working directory in path order. Unmerged entries (stages 1-3) and
    /// intent-to-add entries are left out, as `git write-tree` would refuse or skip them.
    pub fn files(&self) -> impl Iterator<Item = File<'_>> {
        let backing = self.state.path_backing();
        self.state.entries()[self.range.clone()]
            .iter()
            .filter(|e| e.stage_raw() == 0 && !e.flags.contains(Flags::INTENT_TO_ADD))
            .map(move |e| File {
                path: &e.path_in(backing)[self.prefix_len..],
                mode: e.mode.bits(),
                id: &e.id,
            })
    }

    /// Whether some path is unmerged (a conflict in progress): the index then cannot equal a commit.
    pub fn has_conflicts(&self) -> bool {
        self.state.entries()[self.range.clone()]
            .iter()
            .any(|e| e.stage_raw() != 0)
    }

    /// The git tree id of every directory below the working directory, as `git write-tree` (or the
    /// commit the snapshot was read from) has it. Directories the index's cache-tree extension
    /// holds as valid (all of them after a clone, checkout or commit; all but the changed paths'
    /// ancestors after `git add`) are taken from it, as git itself does; the others are computed
    /// in one pass over their sorted files. Returns the working directory's own tree id (`None`
    /// when it holds no file) and the ids of the directories (relative paths, `""` for the working
    /// directory) in `dirs`.
    pub fn tree_ids(&self, dirs: Dirs<'_>) -> (Option<ObjectId>, HashMap<String, ObjectId>) {
        // Strict ancestors of the wanted directories: where a walk of the cache-tree must go on.
        let ancestors: FxHashSet<&str> = match dirs {
            Dirs::All => FxHashSet::default(),
            Dirs::Only(set) => set
                .iter()
                .flat_map(|d| {
                    d.match_indices('/')
                        .map(|(i, _)| &d[..i])
                        .chain((!d.is_empty()).then_some(""))
                })
                .collect(),
        };
        let backing = self.state.path_backing();
        let entries = &self.state.entries()[self.range.clone()];
        let path_of = |i: usize| -> &[u8] { &entries[i].path_in(backing)[self.prefix_len..] };
        // Unmerged or intent-to-add entries are not in trees; git's cache-tree bookkeeping for
        // them is subtle, so with any of them everything is computed.
        let plain =
            |e: &gix_index::Entry| e.stage_raw() == 0 && !e.flags.contains(Flags::INTENT_TO_ADD);
        let all_plain = entries.iter().all(plain);
        let cache = if all_plain { self.cache_node() } else { None };
        let mut builder = TreeBuilder {
            format: self.format,
            open: Vec::new(),
            spare: Vec::new(),
            kept: HashMap::with_capacity(match dirs {
                Dirs::All => 0,
                Dirs::Only(set) => set.len(),
            }),
            dirs,
            ancestors,
            scratch: String::new(),
        };
        if let Some(node) = cache
            && node
                .num_entries
                .is_some_and(|n| n as usize == entries.len())
            && !entries.is_empty()
        {
            builder.record(b"", node);
            return (Some(node.id), builder.kept);
        }
        let mut any = false;
        let mut i = 0;
        while i < entries.len() {
            if !plain(&entries[i]) {
                i += 1;
                continue;
            }
            any = true;
            let path = path_of(i);
            let (dir, name) = match path.iter().rposition(|b| *b == b'/') {
                Some(k) => (&path[..k], &path[k + 1..]),
                None => (&path[..0], path),
            };
            builder.close_outside(dir);
            if builder.open.is_empty() {
                builder.push(path, 0, cache);
            }
            // Open the missing directories down to `dir`, or skip a whole valid cached one.
            let mut skipped = None;
            loop {
                let top = builder.open.last().expect("the root is open");
                let start = if top.dir_len == 0 { 0 } else { top.dir_len + 1 };
                if start >= dir.len() {
                    break;
                }
                let end = dir[start..]
                    .iter()
                    .position(|b| *b == b'/')
                    .map_or(dir.len(), |k| start + k);
                let child = top.node.and_then(|n| find_child(n, &dir[start..end]));
                if let Some(node) = child
                    && let Some(count) = node.num_entries
                    && covers(entries.len(), i, count as usize, &dir[..end], &path_of)
                {
                    builder.add(0o040_000, &dir[start..end], &node.id);
                    builder.record(&dir[..end], node);
                    skipped = Some(count as usize);
                    break;
                }
                builder.push(path, end, child);
            }
            if let Some(count) = skipped {
                i += count;
                continue;
            }
            builder.add(entries[i].mode.bits(), name, &entries[i].id);
            i += 1;
        }
        if !any {
            return (None, builder.kept);
        }
        let mut root = None;
        while !builder.open.is_empty() {
            root = Some(builder.close());
        }
        (root, builder.kept)
    }

    /// The cache-tree node of the working directory, if the index has the extension.
    fn cache_node(&self) -> Option<&gix_index::extension::Tree> {
        let mut node = self.state.tree()?;
        for name in self.prefix.split(|b| *b == b'/').filter(|n| !n.is_empty()) {
            node = find_child(node, name)?;
        }
        Some(node)
    }
}

/// The child directory `name` of a cache-tree node. git keeps children sorted by name length,
/// then bytes; a linear scan covers any other order.
fn find_child<'t>(
    node: &'t gix_index::extension::Tree,
    name: &[u8],
) -> Option<&'t gix_index::extension::Tree> {
    match node
        .children
        .binary_search_by(|t| (t.name.len(), t.name.as_slice()).cmp(&(name.len(), name)))
    {
        Ok(k) => Some(&node.children[k]),
        Err(_) => node.children.iter().find(|t| t.name.as_slice() == name),
    }
}

/// Whether the `count` entries from `i` are exactly those below `dir` (a cache-tree count is
/// trusted only when the sorted entries agree with it).
fn covers<'p>(
    len: usize,
    i: usize,
    count: usize,
    dir: &[u8],
    path_of: &dyn Fn(usize) -> &'p [u8],
) -> bool {
    let below = |k: usize| {
        let p = path_of(k);
        p.len() > dir.len() && p.starts_with(dir) && p[dir.len()] == b'/'
    };
    count > 0 && i + count <= len && below(i + count - 1) && (i + count == len || !below(i + count))
}

/// A directory being written: its path and its tree object's body so far.
struct OpenTree<'t> {
    /// Where the directory's path ends in `path_of`.
    dir_len: usize,
    /// The path of any file below it (the directory is its first `dir_len` bytes).
    path_of: Vec<u8>,
    body: Vec<u8>,
    /// Its (invalid) cache-tree node, whose children may still be valid.
    node: Option<&'t gix_index::extension::Tree>,
}

struct TreeBuilder<'k, 't> {
    format: ObjectFormat,
    dirs: Dirs<'k>,
    ancestors: FxHashSet<&'k str>,
    /// The open directories from the root down; the root has `dir_len` 0.
    open: Vec<OpenTree<'t>>,
    /// Buffers of closed directories, reused.
    spare: Vec<OpenTree<'t>>,
    kept: HashMap<String, ObjectId>,
    scratch: String,
}

impl<'t> TreeBuilder<'_, 't> {
    fn keep(&self, dir: &str) -> bool {
        match self.dirs {
            Dirs::All => true,
            Dirs::Only(set) => set.contains(dir),
        }
    }

    /// Close the open directories that do not contain `dir`. Paths come sorted, so a closed
    /// directory never reopens.
    fn close_outside(&mut self, dir: &[u8]) {
        while let Some(top) = self.open.last() {
            let top_dir = &top.path_of[..top.dir_len];
            let inside = top.dir_len == 0
                || (dir.starts_with(top_dir)
                    && (dir.len() == top.dir_len || dir[top.dir_len] == b'/'));
            if inside {
                break;
            }
            self.close();
        }
    }

    fn push(&mut self, path: &[u8], dir_len: usize, node: Option<&'t gix_index::extension::Tree>) {
        let mut t = self.spare.pop().unwrap_or(OpenTree {
            dir_len: 0,
            path_of: Vec::new(),
            body: Vec::new(),
            node: None,
        });
        t.dir_len = dir_len;
        t.path_of.clear();
        t.path_of.extend_from_slice(&path[..dir_len]);
        t.body.clear();
        t.node = node;
        self.open.push(t);
    }

    fn add(&mut self, mode: u32, name: &[u8], id: &oid) {
        let body = &mut self.open.last_mut().expect("a directory is open").body;
        body.extend_from_slice(mode_bytes(mode));
        body.push(b' ');
        body.extend_from_slice(name);
        body.push(0);
        body.extend_from_slice(id.as_bytes());
    }

    /// Keep the ids of a valid cache-tree node at `dir` and of every directory below it.
    fn record(&mut self, dir: &[u8], node: &gix_index::extension::Tree) {
        let Ok(dir) = std::str::from_utf8(dir) else {
            return;
        };
        self.scratch.clear();
        self.scratch.push_str(dir);
        let mut scratch = std::mem::take(&mut self.scratch);
        self.record_below(&mut scratch, node);
        self.scratch = scratch;
    }

    fn record_below(&mut self, path: &mut String, node: &gix_index::extension::Tree) {
        if self.keep(path) {
            self.kept.insert(path.clone(), node.id);
        }
        if matches!(self.dirs, Dirs::Only(_)) && !self.ancestors.contains(path.as_str()) {
            return;
        }
        for child in &node.children {
            let Ok(name) = std::str::from_utf8(&child.name) else {
                continue;
            };
            let len = path.len();
            if len > 0 {
                path.push('/');
            }
            path.push_str(name);
            self.record_below(path, child);
            path.truncate(len);
        }
    }

    /// Close the innermost directory: hash its tree object and enter it into its parent.
    fn close(&mut self) -> ObjectId {
        let t = self.open.pop().expect("a directory is open");
        let id = hash_tree(self.format, &t.body);
        let dir = &t.path_of[..t.dir_len];
        if let Ok(name) = std::str::from_utf8(dir)
            && self.keep(name)
        {
            self.kept.insert(name.to_string(), id);
        }
        if !self.open.is_empty() {
            let base = dir.iter().rposition(|b| *b == b'/').map_or(0, |i| i + 1);
            let name = dir[base..].to_vec();
            self.add(0o040_000, &name, &id);
        }
        self.spare.push(t);
        id
    }
}

/// Mode as git writes it in a tree object (no leading zero for directories).
fn mode_bytes(mode: u32) -> &'static [u8] {
    match mode {
        0o040_000 => b"40000",
        0o100_755 => b"100755",
        0o120_000 => b"120000",
        0o160_000 => b"160000",
        _ => b"100644",
    }
}

/// The object id of a tree object with this body: the hash of `tree <len>\0<body>`.
fn hash_tree(format: ObjectFormat, body: &[u8]) -> ObjectId {
    let header = format!("tree {}\0", body.len());
    match format {
        ObjectFormat::Sha1 => {
            let mut h = sha1::Sha1::new();
            h.update(header.as_bytes());
            h.update(body);
            ObjectId::from_bytes_or_panic(&h.finalize())
        }
        ObjectFormat::Sha256 => {
            let mut h = sha2::Sha256::new();
            h.update(header.as_bytes());
            h.update(body);
            ObjectId::from_bytes_or_panic(&h.finalize())
        }
    }
}
