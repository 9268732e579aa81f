//! Atomic outputs: every file and folder a longtail command writes goes through here, so a failed
//! or killed command leaves either the old output or the new one, never a half-written one, and
//! never anything that looks complete.
//!
//! - A file is written to a temporary sibling `.NAME.ltmp-PID-XXXXXX` and renamed over `NAME`
//!   only when the writer succeeded ([`write_file`], [`write_bytes`], [`write_json`], [`Staged`]).
//! - A folder (a run folder, a prepared folder) is built whole under a temporary sibling and
//!   swapped in at the end ([`Staged::dir`]); the old folder is moved aside first and removed
//!   after, so the target is replaced whole or not at all.
//! - A temporary entry left by a killed process (its PID no longer runs) is removed the next time
//!   any command stages an output in that folder ([`sweep`]).
//! - [`guard_output`] is the one rule for what an output may replace: never an input of the
//!   command, never a file or folder that a longtail command of this kind did not write.
//! - [`user_text`] turns temporary names in a message back into the names the user asked for.

use crate::error::{DataError, Result};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The marker between the target's name and the owner's PID in a temporary name.
const MARK: &str = ".ltmp-";
/// Random characters after the PID (tempfile draws them from `[A-Za-z0-9]`).
const RAND: usize = 6;

/// An output being written: a temporary sibling of the target that becomes the target on
/// [`Staged::commit`] and is removed when dropped uncommitted (error, panic, early return).
#[derive(Debug)]
pub struct Staged {
    target: PathBuf,
    tmp: PathBuf,
    dir: bool,
    done: bool,
}

impl Staged {
    /// Reserves a temporary file beside `target` (creating the parent folder).
    pub fn file(target: &Path) -> Result<Staged> {
        Self::new(target, false)
    }

    /// Creates an empty temporary folder beside `target` to build the whole folder in.
    pub fn dir(target: &Path) -> Result<Staged> {
        Self::new(target, true)
    }

    fn new(target: &Path, dir: bool) -> Result<Staged> {
        if target.file_name().is_none() {
            return Err(DataError::Output {
                path: target.to_path_buf(),
                message: "is not a file or folder name".into(),
            });
        }
        let parent = parent_of(target);
        std::fs::create_dir_all(&parent).map_err(|e| DataError::io(&parent, e))?;
        sweep(&parent);
        let prefix = temp_prefix(target);
        let mut b = tempfile::Builder::new();
        b.prefix(&prefix).rand_bytes(RAND);
        // tempfile makes private (0600/0700) entries; an output gets the usual modes instead.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            b.permissions(std::fs::Permissions::from_mode(if dir {
                0o755
            } else {
                0o644
            }));
        }
        // `keep()` hands the entry over to us: removing it is this type's job (Drop), so a
        // commit can rename it without tempfile deleting it again.
        let tmp = if dir {
            b.tempdir_in(&parent)
                .map_err(|e| DataError::io(&parent, e))?
                .keep()
        } else {
            let f = b
                .tempfile_in(&parent)
                .map_err(|e| DataError::io(&parent, e))?;
            f.into_temp_path()
                .keep()
                .map_err(|e| DataError::io(&parent, e.error))?
        };
        Ok(Staged {
            target: target.to_path_buf(),
            tmp,
            dir,
            done: false,
        })
    }

    /// Where to write: the temporary file, or the temporary folder to fill.
    pub fn path(&self) -> &Path {
        &self.tmp
    }

    /// The output's final path.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Moves the output into place. A file is renamed over the target (the writer flushes it); a
    /// folder replaces the target whole (the old one is renamed aside, then removed).
    pub fn commit(mut self) -> Result<()> {
        if self.dir {
            if self.target.exists() {
                // rename(2) replaces an empty folder: move the old output onto a fresh
                // temporary name (swept if we die before removing it).
                let aside = tempfile::Builder::new()
                    .prefix(&temp_prefix(&self.target))
                    .rand_bytes(RAND)
                    .tempdir_in(parent_of(&self.target))
                    .map_err(|e| DataError::io(&self.target, e))?
                    .keep();
                std::fs::rename(&self.target, &aside).map_err(|e| {
                    let _ = std::fs::remove_dir(&aside);
                    DataError::io(&self.target, e)
                })?;
                if let Err(e) = std::fs::rename(&self.tmp, &self.target) {
                    // Put the old folder back so the target is never left missing.
                    let _ = std::fs::rename(&aside, &self.target);
                    return Err(DataError::io(&self.target, e));
                }
                let _ = std::fs::remove_dir_all(&aside);
            } else {
                std::fs::rename(&self.tmp, &self.target)
                    .map_err(|e| DataError::io(&self.target, e))?;
            }
        } else {
            std::fs::rename(&self.tmp, &self.target).map_err(|e| DataError::io(&self.target, e))?;
        }
        self.done = true;
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.done {
            if self.dir {
                let _ = std::fs::remove_dir_all(&self.tmp);
            } else {
                let _ = std::fs::remove_file(&self.tmp);
            }
        }
    }
}

/// Commits several staged outputs of one command together, after all of them were written (so
/// a failure while writing any leaves none of them changed).
pub fn commit_all(staged: Vec<Staged>) -> Result<()> {
    for s in staged {
        s.commit()?;
    }
    Ok(())
}

/// Writes `path` atomically: `write` fills the temporary file (errors should name `path`).
pub fn write_file(path: &Path, write: impl FnOnce(&mut File) -> Result<()>) -> Result<()> {
    let s = Staged::file(path)?;
    let mut f = File::create(s.path()).map_err(|e| DataError::io(path, e))?;
    write(&mut f)?;
    f.flush()
        .and_then(|()| f.sync_all())
        .map_err(|e| DataError::io(path, e))?;
    drop(f);
    s.commit()
}

/// Writes `path` atomically through a writer that needs a real path with the target's own name
/// (a library that picks its format by extension): `write` gets `TMPDIR/NAME` inside a staged
/// temporary folder beside `path`, which is then renamed over `path`.
pub fn write_with_path(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let name = path.file_name().ok_or_else(|| DataError::Output {
        path: path.to_path_buf(),
        message: "is not a file name".into(),
    })?;
    let dir = Staged::dir(path)?;
    let inner = dir.path().join(name);
    write(&inner)?;
    std::fs::rename(&inner, path).map_err(|e| DataError::io(path, e))?;
    // `dir` is dropped uncommitted: its (now empty) temporary folder is removed.
    Ok(())
}

/// Writes `bytes` to `path` atomically.
pub fn write_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    write_file(path, |f| {
        f.write_all(bytes).map_err(|e| DataError::io(path, e))
    })
}

/// Writes `value` as JSON (and a final newline) to `path` atomically.
pub fn write_json<T: serde::Serialize + ?Sized>(
    path: &Path,
    value: &T,
    pretty: bool,
) -> Result<()> {
    let mut bytes = if pretty {
        serde_json::to_vec_pretty(value)
    } else {
        serde_json::to_vec(value)
    }
    .map_err(|e| DataError::Schema {
        path: path.to_path_buf(),
        message: format!("cannot write JSON: {e}"),
    })?;
    bytes.push(b'\n');
    write_bytes(path, &bytes)
}

/// Removes the temporary entries in `dir` whose owning process no longer runs (left by a
/// killed command). Entries of running processes, and anything else, are left alone.
pub fn sweep(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = temp_owner(&name) else {
            continue;
        };
        if pid == std::process::id() || process_alive(pid) {
            continue;
        }
        let p = e.path();
        if p.is_dir() && !p.is_symlink() {
            let _ = std::fs::remove_dir_all(&p);
        } else {
            let _ = std::fs::remove_file(&p);
        }
    }
}

/// The PID in a temporary name `.NAME.ltmp-PID-XXXXXX`, or `None` for any other name.
fn temp_owner(name: &str) -> Option<u32> {
    let (head, tail) = name.rsplit_once(MARK)?;
    if !head.starts_with('.') || head.len() < 2 {
        return None;
    }
    let (pid, rand) = tail.split_once('-')?;
    if rand.len() != RAND || !rand.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    pid.parse().ok()
}

fn process_alive(pid: u32) -> bool {
    let proc = Path::new("/proc");
    if proc.is_dir() {
        proc.join(pid.to_string()).exists()
    } else {
        // Without /proc we cannot tell: keep the entry.
        true
    }
}

/// `.NAME.ltmp-PID-`: what a temporary for `target` starts with.
fn temp_prefix(target: &Path) -> String {
    let name = target.file_name().unwrap_or_default().to_string_lossy();
    format!(".{name}{MARK}{}-", std::process::id())
}

fn parent_of(p: &Path) -> PathBuf {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// `text` with every temporary name `.NAME.ltmp-PID-XXXXXX` replaced by `NAME`, so messages
/// show the paths the user asked for.
pub fn user_text(text: &str) -> String {
    // A temporary written inside another one's name nests: undo one level per pass.
    let mut s = text.to_string();
    loop {
        let next = user_text_once(&s);
        if next == s {
            return s;
        }
        s = next;
    }
}

fn user_text_once(text: &str) -> String {
    let is_sep =
        |c: char| matches!(c, '/' | '\\' | '\'' | '"' | '`' | '(' | '[') || c.is_whitespace();
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(MARK) {
        let (before, after) = rest.split_at(i);
        let after = &after[MARK.len()..];
        // The name runs from the last separator before the mark and must begin with '.'.
        let start = before
            .char_indices()
            .rev()
            .find(|&(_, c)| is_sep(c))
            .map_or(0, |(j, c)| j + c.len_utf8());
        let name = &before[start..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        let tail = &after.as_bytes()[digits..];
        let is_temp = name.len() > 1
            && name.starts_with('.')
            && digits > 0
            && tail.len() > RAND
            && tail[0] == b'-'
            && tail[1..=RAND].iter().all(u8::is_ascii_alphanumeric)
            && !tail.get(RAND + 1).is_some_and(u8::is_ascii_alphanumeric);
        if is_temp {
            out.push_str(&before[..start]);
            out.push_str(&name[1..]);
            // tail[..=RAND] is ASCII, so this is a char boundary.
            rest = &after[digits + RAND + 1..];
        } else {
            out.push_str(before);
            out.push_str(MARK);
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// What kind of existing output a command may replace.
pub enum Replaceable<'a> {
    /// Only outputs this predicate recognises as written by the same kind of command.
    If(&'a dyn Fn(&Path) -> bool),
    /// Never: an existing target is an error.
    Never,
}

/// The one rule for outputs. Fails, naming `target`, when it is (or, for a folder, holds) one of
/// `inputs`, when it exists and is not something `replaceable` accepts, or when it is a folder
/// where a file is expected (or the other way round). `what` names the kind of output in the
/// message, e.g. "interaction table" or "run folder". Missing targets and empty folders pass.
pub fn guard_output(
    target: &Path,
    inputs: &[&Path],
    dir: bool,
    replaceable: Replaceable<'_>,
    what: &str,
) -> Result<()> {
    let err = |message: String| {
        Err(DataError::Output {
            path: target.to_path_buf(),
            message,
        })
    };
    for input in inputs {
        if same_file(target, input) {
            return err(format!(
                "is the input {}: refusing to overwrite it with the {what}; choose another output path",
                input.display()
            ));
        }
        if dir && inside(input, target) {
            return err(format!(
                "holds the input {}: replacing it with the {what} would delete it; choose another \
                 output path",
                input.display()
            ));
        }
    }
    let meta = match std::fs::symlink_metadata(target) {
        Ok(m) => m,
        Err(_) => return Ok(()),
    };
    if dir && !meta.is_dir() {
        return err(format!(
            "exists and is not a folder; cannot write the {what} there"
        ));
    }
    if !dir && meta.is_dir() {
        return err(format!("is a folder; cannot write the {what} there"));
    }
    if dir
        && std::fs::read_dir(target)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false)
    {
        return Ok(());
    }
    match replaceable {
        Replaceable::If(ours) if ours(target) => Ok(()),
        _ => {
            let a = if what.starts_with(['a', 'e', 'i', 'o', 'u']) {
                "an"
            } else {
                "a"
            };
            err(format!(
                "exists and is not {a} {what} written by longtail; refusing to replace it (remove \
                 it or choose another path)"
            ))
        }
    }
}

/// Whether `a` and `b` name the same file (same device and inode when both exist, else the same
/// absolute path).
pub fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(x), Ok(y)) = (std::fs::metadata(a), std::fs::metadata(b)) {
            return x.dev() == y.dev() && x.ino() == y.ino();
        }
    }
    match (absolute(a), absolute(b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// Whether `path` lies inside the folder `dir` (or is it).
fn inside(path: &Path, dir: &Path) -> bool {
    match (absolute(path), absolute(dir)) {
        (Some(p), Some(d)) => p.starts_with(&d),
        _ => false,
    }
}

/// An absolute path with symlinks resolved as far as the path exists; the rest (which does not
/// exist yet) is applied lexically, `..` included, so `x/../f` and `f` compare equal even before
/// `x` exists.
fn absolute(p: &Path) -> Option<PathBuf> {
    use std::path::Component;
    if let Ok(c) = p.canonicalize() {
        return Some(c);
    }
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().ok()?.join(p)
    };
    // The longest existing prefix, canonical; then the remaining components one by one.
    let comps: Vec<Component> = abs.components().collect();
    let mut base = PathBuf::new();
    let mut i = 0;
    for (k, _) in comps.iter().enumerate().rev() {
        let prefix: PathBuf = comps[..=k].iter().collect();
        if let Ok(c) = prefix.canonicalize() {
            base = c;
            i = k + 1;
            break;
        }
    }
    for c in &comps[i..] {
        match c {
            Component::ParentDir => {
                base.pop();
            }
            Component::CurDir => {}
            other => base.push(other.as_os_str()),
        }
    }
    Some(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn failed_write_leaves_old_file_and_no_temporary() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.json");
        write_bytes(&p, b"old").unwrap();
        let r = write_file(&p, |f| {
            f.write_all(b"half").unwrap();
            Err(DataError::Invalid("boom".into()))
        });
        assert!(r.is_err());
        assert_eq!(std::fs::read(&p).unwrap(), b"old");
        assert_eq!(names(d.path()), vec!["a.json"]);
        write_json(&p, &[1, 2], false).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "[1,2]\n");
        // Outputs are readable by others, as files a program creates usually are.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o644);
        }
    }

    #[test]
    fn write_with_path_keeps_the_name_and_leaves_nothing_behind() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("m.safetensors");
        write_with_path(&p, |inner| {
            assert_eq!(inner.file_name(), p.file_name());
            std::fs::write(inner, "x").map_err(|e| DataError::io(inner, e))
        })
        .unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"x");
        let r = write_with_path(&p, |_| Err(DataError::Invalid("no".into())));
        assert!(r.is_err());
        assert_eq!(std::fs::read(&p).unwrap(), b"x");
        assert_eq!(names(d.path()), vec!["m.safetensors"]);
    }

    #[test]
    fn folder_is_replaced_whole() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("run");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("old.txt"), "x").unwrap();
        let s = Staged::dir(&target).unwrap();
        std::fs::write(s.path().join("new.txt"), "y").unwrap();
        // Nothing visible changes before the commit.
        assert_eq!(names(&target), vec!["old.txt"]);
        s.commit().unwrap();
        assert_eq!(names(&target), vec!["new.txt"]);
        assert_eq!(names(d.path()), vec!["run"]);
        // Dropped uncommitted: the target stays, the temporary folder goes.
        let s = Staged::dir(&target).unwrap();
        std::fs::write(s.path().join("other.txt"), "z").unwrap();
        drop(s);
        assert_eq!(names(&target), vec!["new.txt"]);
        assert_eq!(names(d.path()), vec!["run"]);
    }

    #[test]
    fn stale_temporaries_of_dead_processes_are_swept() {
        let d = tempfile::tempdir().unwrap();
        // PID 0x7fffffff cannot run; the entry looks like a killed command's temporary.
        let stale = d.path().join(format!(".run{MARK}2147483646-abc123"));
        std::fs::create_dir(&stale).unwrap();
        std::fs::write(stale.join("x"), "1").unwrap();
        let stale_file = d.path().join(format!(".t.parquet{MARK}2147483646-Zz9aaa"));
        std::fs::write(&stale_file, "1").unwrap();
        let mine = d
            .path()
            .join(format!(".m{MARK}{}-abcdef", std::process::id()));
        std::fs::write(&mine, "1").unwrap();
        std::fs::write(d.path().join(".hidden.ltmp-notapid"), "1").unwrap();
        write_bytes(&d.path().join("out"), b"1").unwrap();
        let left = names(d.path());
        assert!(
            !left
                .iter()
                .any(|n| n.starts_with(".run") || n.starts_with(".t.parquet")),
            "{left:?}"
        );
        assert!(left.contains(&mine.file_name().unwrap().to_string_lossy().into_owned()));
        assert!(left.contains(&".hidden.ltmp-notapid".to_string()));
    }

    #[test]
    fn user_text_restores_target_names() {
        let pid = std::process::id();
        let msg = format!(
            "/a/b/.t.parquet{MARK}{pid}-AbC123: parquet: bad; also '.run{MARK}7-zzzzzz/x.json'"
        );
        assert_eq!(
            user_text(&msg),
            "/a/b/t.parquet: parquet: bad; also 'run/x.json'"
        );
        assert_eq!(user_text(&format!(".x{MARK}12-abcdef")), "x");
        assert_eq!(
            user_text(&format!("d/..x{MARK}12-abcdef{MARK}13-ghijkl: e")),
            "d/x: e"
        );
        // Look-alikes are left as they are.
        for s in [
            "plain .ltmp- text",
            "a.ltmp-12-abcdef",
            ".x.ltmp-12-abc",
            ".x.ltmp--abcdef",
        ] {
            assert_eq!(user_text(s), s);
        }
    }

    #[test]
    fn guard_refuses_inputs_and_foreign_outputs() {
        let d = tempfile::tempdir().unwrap();
        let input = d.path().join("log.csv");
        std::fs::write(&input, "u,i\n").unwrap();
        let yes = |_: &Path| true;
        let no = |_: &Path| false;
        let e = guard_output(&input, &[&input], false, Replaceable::If(&yes), "--output")
            .unwrap_err()
            .to_string();
        assert!(e.contains("is the input") && e.contains("log.csv"), "{e}");
        // The same file under another spelling, through a folder that does not exist yet.
        let alias = d.path().join(".").join("log.csv");
        assert!(guard_output(&alias, &[&input], false, Replaceable::If(&yes), "o").is_err());
        let alias = d.path().join("nope/../log.csv");
        assert!(guard_output(&alias, &[&input], false, Replaceable::If(&yes), "o").is_err());
        // A folder that holds an input.
        assert!(guard_output(d.path(), &[&input], true, Replaceable::If(&yes), "o").is_err());
        // Foreign file, folder-for-file, never.
        let other = d.path().join("mine.txt");
        std::fs::write(&other, "x").unwrap();
        assert!(guard_output(&other, &[], false, Replaceable::If(&no), "o").is_err());
        assert!(guard_output(&other, &[], false, Replaceable::Never, "o").is_err());
        assert!(guard_output(&other, &[], false, Replaceable::If(&yes), "o").is_ok());
        assert!(guard_output(d.path(), &[], false, Replaceable::If(&yes), "o").is_err());
        // Missing targets and empty folders are always fine.
        assert!(guard_output(
            &d.path().join("new"),
            &[&input],
            false,
            Replaceable::Never,
            "o"
        )
        .is_ok());
        let empty = d.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        assert!(guard_output(&empty, &[], true, Replaceable::Never, "o").is_ok());
    }
}
