//! Local paths in `FROM` and `ADAPTER` lines: Ollama's `expandPath` (with `~` and `~user`) and
//! the files a path stands for.

use super::LocalFile;
use anyhow::{anyhow, bail, Context};
use std::path::{Component, Path, PathBuf};

/// Ollama's `expandPath`: absolute paths as they are, `~` and `~/x` under the home folder, `~user/x`
/// under that user's, anything else relative to the Modelfile's folder. The result is cleaned
/// (`.` and `..` resolved lexically) and absolute.
pub(super) fn expand_path(
    path: &str,
    relative_dir: &Path,
    home: Option<&Path>,
) -> anyhow::Result<PathBuf> {
    let joined = if Path::new(path).is_absolute() || path.starts_with('\\') {
        PathBuf::from(path)
    } else if let Some(rest) = path.strip_prefix('~') {
        if rest.is_empty() || rest.starts_with('/') {
            let home =
                home.ok_or_else(|| anyhow!("failed to get current user: $HOME is not set"))?;
            home.join(rest.trim_start_matches('/'))
        } else {
            let (user, rest) = rest.split_once('/').unwrap_or((rest, ""));
            user_home(user)
                .ok_or_else(|| anyhow!("failed to find user '{user}'"))?
                .join(rest)
        }
    } else {
        relative_dir.join(path)
    };
    let absolute = if joined.is_absolute() {
        joined
    } else {
        std::env::current_dir()?.join(joined)
    };
    Ok(clean(&absolute))
}

/// Go's `filepath.Clean` for an absolute path.
fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                // `/..` is `/`.
                if out.parent().is_some() {
                    out.pop();
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// The home folder of a named user, from the password database.
#[cfg(unix)]
pub(super) fn user_home(user: &str) -> Option<PathBuf> {
    use std::ffi::{CStr, CString, OsStr};
    use std::os::unix::ffi::OsStrExt;
    let name = CString::new(user).ok()?;
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: getpwnam_r writes into `pwd` and `buf` (of the length given) only, and sets
    // `result` to `&pwd` on success; `pw_dir` then points into `buf`, which outlives its use.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwnam_r(
            name.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        );
        if rc != 0 || result.is_null() || pwd.pw_dir.is_null() {
            return None;
        }
        let dir = CStr::from_ptr(pwd.pw_dir).to_bytes();
        Some(PathBuf::from(OsStr::from_bytes(dir)))
    }
}

#[cfg(not(unix))]
pub(super) fn user_home(_user: &str) -> Option<PathBuf> {
    None
}

/// The files to upload for a `FROM` or `ADAPTER` path: the file itself, or the one `.gguf` file of
/// a folder.
pub(super) fn local_files(path: &Path, is_dir: bool) -> anyhow::Result<Vec<LocalFile>> {
    if !is_dir {
        let name = path
            .file_name()
            .ok_or_else(|| anyhow!("{}: not a file", path.display()))?
            .to_string_lossy()
            .into_owned();
        return Ok(vec![LocalFile {
            path: path.to_owned(),
            name,
        }]);
    }
    let mut ggufs = Vec::new();
    for entry in std::fs::read_dir(path).with_context(|| path.display().to_string())? {
        let entry = entry.with_context(|| path.display().to_string())?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // Symbolic links are followed, as Ollama's glob does.
        if name.ends_with(".gguf") && std::fs::metadata(entry.path()).is_ok_and(|m| m.is_file()) {
            ggufs.push(LocalFile {
                path: entry.path(),
                name,
            });
        }
    }
    ggufs.sort_by(|a, b| a.name.cmp(&b.name));
    match ggufs.len() {
        1 => Ok(ggufs),
        0 => bail!(
            "no .gguf file found in {} (importing safetensors folders is not supported yet)",
            path.display()
        ),
        n => bail!(
            "{} holds {n} .gguf files ({}); name the one to use",
            path.display(),
            ggufs
                .iter()
                .map(|f| f.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}
