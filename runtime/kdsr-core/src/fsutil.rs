//! File-system helpers shared by [`crate::io`] and [`crate::spec::checkpoint`].

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::{Error, Result};

/// Distinguishes temporary files of concurrent writes within one process.
static TMP_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Writes `bytes` to `path` atomically, so `path` never holds a partial file: the bytes go to a
/// new temporary file next to `path` (`.NAME.kdsr-tmp.PID.N`, [`temp_prefix`]; created
/// exclusively, so concurrent
/// writers in this or another process never share one), which is synced to disk and then renamed
/// over `path`. On failure the temporary file is removed and `path` is left as it was. A process
/// killed between creating and renaming it (`kill -9`, power loss) leaves the temporary file
/// behind; [`remove_stale_temps`] removes such files.
///
/// Errors: [`Error::Io`] naming `path` when `path` has no file name, the temporary file cannot be
/// created (e.g. a missing directory) or the rename fails; naming the temporary file when writing
/// or syncing it fails.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let io_err = |p: &Path, source| Error::Io {
        path: p.to_path_buf(),
        source,
    };
    let name = path.file_name().ok_or_else(|| {
        io_err(
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "path has no file name"),
        )
    })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut attempt = 0;
    let (tmp, mut file) = loop {
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!("{}{n}", temp_prefix(&name.to_string_lossy())));
        match OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(f) => break (tmp, f),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 100 => {
                attempt += 1;
            }
            Err(e) => return Err(io_err(path, e)),
        }
    };
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| io_err(&tmp, e));
    drop(file);
    let result = written.and_then(|()| fs::rename(&tmp, path).map_err(|e| io_err(path, e)));
    if result.is_err() {
        // Best effort: the temporary file is ours and must not be left behind.
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// What every temporary file name of this project holds after `.NAME`: `.NAME.kdsr-tmp.PID.…`.
pub const TEMP_MARKER: &str = ".kdsr-tmp.";

/// How long a stale-looking temporary file must have been left unmodified before
/// [`remove_stale_temps`] removes it (a writer in another PID namespace, whose process this one
/// cannot see, keeps its file's modification time fresh while it writes).
pub const STALE_TEMP_QUIET: std::time::Duration = std::time::Duration::from_secs(60);

/// The start of the name of a temporary file this process writes for the target file `name`:
/// `.NAME.kdsr-tmp.PID.` (the writer appends a unique part).
pub fn temp_prefix(name: &str) -> String {
    format!(".{name}{TEMP_MARKER}{}.", std::process::id())
}

/// The writer's PID of a temporary file named by [`temp_prefix`], `None` for other names.
pub fn temp_owner(file_name: &str) -> Option<u32> {
    if !file_name.starts_with('.') {
        return None;
    }
    let (_, rest) = file_name.rsplit_once(TEMP_MARKER)?;
    let (pid, unique) = rest.split_once('.')?;
    if unique.is_empty() || pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// Whether process `pid` is running (Linux: `/proc/PID` exists). Elsewhere every other process
/// is taken as gone, and only [`STALE_TEMP_QUIET`] protects a concurrent writer.
fn process_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    if cfg!(target_os = "linux") {
        Path::new("/proc").join(pid.to_string()).exists()
    } else {
        false
    }
}

/// Removes the temporary files that writers killed mid-write left in `dir`: files named
/// `.NAME.kdsr-tmp.PID.…` ([`temp_prefix`]) whose process `PID` is not running and which have not
/// been modified for [`STALE_TEMP_QUIET`]. Returns the files removed; errors (an unreadable
/// folder, a file that cannot be removed) are skipped, this is housekeeping.
pub fn remove_stale_temps(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let now = std::time::SystemTime::now();
    let mut removed = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(temp_owner) else {
            continue;
        };
        if process_alive(pid) {
            continue;
        }
        let Ok(meta) = e.metadata() else { continue };
        let quiet = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .is_some_and(|age| age >= STALE_TEMP_QUIET);
        if meta.is_file() && quiet && fs::remove_file(e.path()).is_ok() {
            removed.push(e.path());
        }
    }
    removed.sort();
    removed
}
