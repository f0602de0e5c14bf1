//! One pass over git's index file for the common case of `diff`: the manifests' blob ids, the
//! global inputs and the cache-tree's directory ids, without building the full entry list.
//!
//! gix-index ([`crate::snapshot::Snapshot::read_index`]) materialises every entry (stat data,
//! path, flags) of an index of hundreds of thousands of files; an analysis needs only the few
//! entries a glob picks and the tree ids git already keeps in the `TREE` extension. This pass
//! reads the on-disk format (versions 2 to 4, `Documentation/gitformat-index.txt`) as git does
//! and gives up (`None`: the caller reads the index with gix-index) on what it does not model: a
//! split index (`link`), a sparse index (`sdir`), an unknown required extension, or anything
//! malformed.

use gix_index::hash::ObjectId;
use rustc_hash::{FxHashMap, FxHashSet};

use crate::snapshot::ObjectFormat;

/// What one pass over an index found (paths relative to the working directory).
#[derive(Debug, Default)]
pub struct Scan {
    /// Files (stage 0, not intent-to-add, not submodules) for which the `want` filter holds, in
    /// index order, with their blob ids.
    pub wanted: Vec<Found>,
    /// Files (stage 0, not intent-to-add) for which the `global` filter holds: path, mode as git
    /// writes it in trees (octal), id.
    pub global: Vec<(String, u32, ObjectId)>,
    /// Whether some entry below the working directory is unmerged (stage 1 to 3).
    pub conflicts: bool,
    /// The working directory's tree id, when the cache-tree holds it as valid.
    pub root: Option<ObjectId>,
    /// The tree ids of the wanted files' directories (relative, `""` for the working directory)
    /// that the cache-tree holds as valid.
    pub trees: FxHashMap<String, ObjectId>,
}

/// A file found: its path (relative to the working directory) and blob id.
pub type Found = (String, ObjectId);

/// Called with the files the `want` filter picked, `every` of them at a time, as they are found
/// (so that reading them can start before the pass ends).
pub struct Tap<'t> {
    /// How many at a time.
    pub every: usize,
    /// What is called with them.
    pub each: &'t mut dyn FnMut(&[Found]),
}

/// A test on a path's bytes (relative to the working directory).
pub type PathFilter<'f> = &'f dyn Fn(&[u8]) -> bool;

/// Entry flags (`Documentation/gitformat-index.txt`).
const EXTENDED: u16 = 0x4000;
const NAME_MASK: u16 = 0x0fff;
const INTENT_TO_ADD: u16 = 0x2000;
/// The tree mode of a submodule (gitlink).
const GITLINK: u32 = 0o160_000;

/// Scan `bytes` (a whole index file). `prefix` is the working directory's path from the top
/// (`""` or ending in `/`); entries outside it are skipped.
pub fn scan(
    bytes: &[u8],
    prefix: &[u8],
    format: ObjectFormat,
    want: &dyn Fn(&[u8]) -> bool,
    global: Option<PathFilter<'_>>,
) -> Option<Scan> {
    let len = u64::try_from(bytes.len()).ok()?;
    scan_reader(&mut &bytes[..], len, prefix, format, want, global, None)
}

/// [`scan`] the index file at `path`, read in chunks through one small buffer: the file is
/// tens of megabytes for a few hundred thousand files, and fresh memory for all of it costs
/// more than the scan. `None` also when it cannot be read. `tap` gets the wanted files as they
/// are found.
pub fn scan_file(
    path: &std::path::Path,
    prefix: &[u8],
    format: ObjectFormat,
    want: &dyn Fn(&[u8]) -> bool,
    global: Option<PathFilter<'_>>,
    tap: Option<Tap<'_>>,
) -> Option<Scan> {
    let mut file = std::fs::File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    scan_reader(&mut file, len, prefix, format, want, global, tap)
}

/// Bytes kept ahead of the entry being read: an entry longer than this (a path of more than
/// 16 KiB) ends the quick pass.
const WINDOW: usize = 16 << 10;

/// A read buffer that keeps at least [`WINDOW`] bytes (or the rest of the input) ahead.
struct Window<'r> {
    reader: &'r mut dyn std::io::Read,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Bytes of the input not read yet.
    left: u64,
}

impl Window<'_> {
    /// The bytes ahead, at least [`WINDOW`] of them unless the input ends first.
    fn ahead(&mut self) -> Option<&[u8]> {
        if self.end - self.start < WINDOW && self.left > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            while self.end < self.buf.len() && self.left > 0 {
                let free = self.buf.len() - self.end;
                let room = usize::try_from(self.left).map_or(free, |l| l.min(free));
                let n = self
                    .reader
                    .read(&mut self.buf[self.end..self.end + room])
                    .ok()?;
                if n == 0 {
                    return None;
                }
                self.end += n;
                self.left -= n as u64;
            }
        }
        Some(&self.buf[self.start..self.end])
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
    }

    /// Everything left (`ahead` and the unread input).
    fn rest(mut self) -> Option<Vec<u8>> {
        use std::io::Read as _;
        let mut rest = self.buf[self.start..self.end].to_vec();
        rest.reserve(usize::try_from(self.left).ok()?);
        std::io::Read::take(&mut self.reader, self.left)
            .read_to_end(&mut rest)
            .ok()?;
        Some(rest)
    }
}

fn scan_reader(
    reader: &mut dyn std::io::Read,
    len: u64,
    prefix: &[u8],
    format: ObjectFormat,
    want: &dyn Fn(&[u8]) -> bool,
    global: Option<PathFilter<'_>>,
    mut tap: Option<Tap<'_>>,
) -> Option<Scan> {
    let hash_len = format.kind().len_in_bytes();
    // The trailing checksum is not read.
    let body_len = len.checked_sub(hash_len as u64)?;
    let mut window = Window {
        reader,
        buf: vec![0; 16 * WINDOW],
        start: 0,
        end: 0,
        left: body_len,
    };
    let head = window.ahead()?;
    if head.get(..4)? != b"DIRC" {
        return None;
    }
    let version = be32(head, 4)?;
    if !(2..=4).contains(&version) {
        return None;
    }
    let count = be32(head, 8)?;
    window.consume(12);
    let mut out = Scan::default();
    // Version 4 names are the previous name minus N bytes, plus a NUL-terminated suffix.
    let mut name = Vec::new();
    let fixed = 40 + hash_len + 2;
    for _ in 0..count {
        let entry = window.ahead()?;
        let mode = be32(entry, 24)?;
        let flags = be16(entry, fixed - 2)?;
        let (ext, extra) = if flags & EXTENDED != 0 {
            (be16(entry, fixed)?, 2)
        } else {
            (0, 0)
        };
        if version == 2 && extra != 0 {
            return None;
        }
        let start = fixed + extra;
        let len = if version == 4 {
            let (strip, used) = varint(entry.get(start..)?)?;
            name.truncate(name.len().checked_sub(strip)?);
            let rest = entry.get(start + used..)?;
            let end = memchr(rest)?;
            name.extend_from_slice(&rest[..end]);
            start + used + end + 1
        } else {
            let n = match flags & NAME_MASK {
                NAME_MASK => memchr(entry.get(start..)?)?,
                n => usize::from(n),
            };
            name.clear();
            name.extend_from_slice(entry.get(start..start + n)?);
            // NUL padding to a multiple of 8, at least one NUL.
            (start + n + 8) & !7
        };
        if entry.len() < len {
            return None;
        }
        let id = ObjectId::from_bytes_or_panic(&entry[40..40 + hash_len]);
        window.consume(len);
        let Some(path) = name.strip_prefix(prefix) else {
            continue;
        };
        if (flags >> 12) & 3 != 0 {
            out.conflicts = true;
            continue;
        }
        if ext & INTENT_TO_ADD != 0 {
            continue;
        }
        // Paths that are not UTF-8 cannot name components: left out.
        if mode != GITLINK
            && want(path)
            && let Ok(path) = std::str::from_utf8(path)
        {
            out.wanted.push((path.to_string(), id));
            if let Some(tap) = &mut tap
                && out.wanted.len() % tap.every == 0
            {
                (tap.each)(&out.wanted[out.wanted.len() - tap.every..]);
            }
        }
        if let Some(global) = global
            && global(path)
            && let Ok(path) = std::str::from_utf8(path)
        {
            out.global.push((path.to_string(), mode, id));
        }
    }
    // Extensions: a 4-byte signature, a 32-bit size, the data.
    let rest = window.rest()?;
    let mut at = 0;
    while at < rest.len() {
        let sig = rest.get(at..at + 4)?;
        let size = usize::try_from(be32(&rest, at + 4)?).ok()?;
        let data = rest.get(at + 8..at + 8 + size)?;
        match sig {
            b"TREE" => {
                let dirs: FxHashSet<&str> = out.wanted.iter().map(|(p, _)| parent_dir(p)).collect();
                let (root, trees) = cache_tree(data, hash_len, prefix, &dirs)?;
                let trees = trees
                    .into_iter()
                    .map(|(d, id)| (d.to_string(), id))
                    .collect();
                (out.root, out.trees) = (root, trees);
            }
            // Split or sparse index: entries live elsewhere or stand for directories.
            b"link" | b"sdir" => return None,
            // Optional extensions start with an uppercase letter; others must be understood.
            [b'A'..=b'Z', ..] => {}
            _ => return None,
        }
        at += 8 + size;
    }
    Some(out)
}

/// The directory of a file path (`""` at the top).
pub fn parent_dir(path: &str) -> &str {
    path.rfind('/').map_or("", |i| &path[..i])
}

/// Parse the `TREE` extension: nodes in pre-order, each `path NUL entry_count SP subtrees LF`
/// then the tree id when `entry_count` is not -1 (an invalidated node). Returns the id of the
/// node at `prefix` (the working directory) and those of the valid nodes among `dirs` (paths
/// relative to `prefix`).
fn cache_tree<'d>(
    mut data: &[u8],
    hash_len: usize,
    prefix: &[u8],
    dirs: &FxHashSet<&'d str>,
) -> Option<(Option<ObjectId>, FxHashMap<&'d str, ObjectId>)> {
    let mut root = None;
    let mut trees = FxHashMap::default();
    // The path of the node being read (with a trailing '/' below the top) and, per open
    // directory, the length of its path and its subtrees left.
    let mut path: Vec<u8> = Vec::new();
    let mut stack: Vec<(usize, usize)> = Vec::new();
    while !data.is_empty() {
        let nul = memchr(data)?;
        let component = &data[..nul];
        data = &data[nul + 1..];
        let space = data.iter().position(|&b| b == b' ')?;
        let entries: i64 = std::str::from_utf8(&data[..space]).ok()?.parse().ok()?;
        data = &data[space + 1..];
        let lf = data.iter().position(|&b| b == b'\n')?;
        let subtrees: usize = std::str::from_utf8(&data[..lf]).ok()?.parse().ok()?;
        data = &data[lf + 1..];
        match stack.last_mut() {
            Some((len, left)) => {
                *left = left.checked_sub(1)?;
                path.truncate(*len);
                path.extend_from_slice(component);
            }
            None if component.is_empty() => path.clear(),
            None => return None,
        }
        let id = if entries >= 0 {
            let id = data.get(..hash_len)?;
            data = &data[hash_len..];
            Some(ObjectId::from_bytes_or_panic(id))
        } else {
            None
        };
        if let Some(id) = id {
            // `prefix` ends in '/': the working directory's own node is the prefix without it.
            let at_prefix = if prefix.is_empty() {
                path.is_empty()
            } else {
                path.len() + 1 == prefix.len() && prefix.starts_with(&path)
            };
            if at_prefix {
                root = Some(id);
                if let Some(dir) = dirs.get("") {
                    trees.insert(*dir, id);
                }
            } else if let Some(rel) = path.strip_prefix(prefix)
                && let Ok(rel) = std::str::from_utf8(rel)
                && let Some(dir) = dirs.get(rel)
            {
                trees.insert(*dir, id);
            }
        }
        if !path.is_empty() {
            path.push(b'/');
        }
        stack.push((path.len(), subtrees));
        while stack.last().is_some_and(|&(_, left)| left == 0) {
            stack.pop();
        }
    }
    stack.is_empty().then_some((root, trees))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn memchr(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == 0)
}

/// Git's offset varint (`varint.c`): 7 bits per byte, most significant first, each continuation
/// adding one. Returns the value and the bytes used.
fn varint(b: &[u8]) -> Option<(usize, usize)> {
    let mut value: usize = 0;
    for (i, &byte) in b.iter().enumerate().take(10) {
        if i > 0 {
            value = value.checked_add(1)?.checked_mul(128)?;
        }
        value |= usize::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_is_gits_offset_encoding() {
        assert_eq!(varint(&[0x00]), Some((0, 1)));
        assert_eq!(varint(&[0x7f]), Some((127, 1)));
        // 128 is written as 0x80 0x00 (one continuation adds one before shifting).
        assert_eq!(varint(&[0x80, 0x00]), Some((128, 2)));
        assert_eq!(varint(&[0x80, 0x7f]), Some((255, 2)));
        assert_eq!(varint(&[0x81, 0x00]), Some((256, 2)));
        assert_eq!(varint(&[0x80]), None);
    }

    #[test]
    fn cache_tree_gives_the_valid_nodes_asked_for() {
        let id = |b: u8| [b; 20];
        let mut data = Vec::new();
        data.extend_from_slice(b"\x004 3\n");
        data.extend_from_slice(&id(1));
        data.extend_from_slice(b"a\0-1 1\n");
        data.extend_from_slice(b"b\x001 0\n");
        data.extend_from_slice(&id(2));
        data.extend_from_slice(b"c\x001 0\n");
        data.extend_from_slice(&id(3));
        data.extend_from_slice(b"d\x001 0\n");
        data.extend_from_slice(&id(4));
        let dirs: FxHashSet<&str> = ["", "a", "a/b", "c", "x"].into_iter().collect();
        let (root, trees) = cache_tree(&data, 20, b"", &dirs).unwrap();
        let get = |p: &str| trees.get(p).map(|i| i.as_bytes()[0]);
        assert_eq!(root.map(|i| i.as_bytes()[0]), Some(1));
        assert_eq!(get(""), Some(1));
        assert_eq!(get("a"), None, "invalidated");
        assert_eq!(get("a/b"), Some(2));
        assert_eq!(get("c"), Some(3));
        assert_eq!(trees.len(), 3, "d was not asked for, x is not there");
        // Below a working directory `a/`: its node is the root (invalid here), `b` its child.
        let dirs: FxHashSet<&str> = ["b", ""].into_iter().collect();
        let (root, trees) = cache_tree(&data, 20, b"a/", &dirs).unwrap();
        assert_eq!(root, None);
        assert_eq!(trees.get(""), None);
        assert_eq!(trees.get("b").map(|i| i.as_bytes()[0]), Some(2));
        let (root, _) = cache_tree(&data, 20, b"c/", &dirs).unwrap();
        assert_eq!(root.map(|i| i.as_bytes()[0]), Some(3));
        // A subtree count the data does not hold is malformed.
        let mut short = data.clone();
        short.truncate(short.len() - 25);
        assert!(cache_tree(&short, 20, b"", &dirs).is_none());
    }
}
