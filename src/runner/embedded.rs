//! The MLX runner's Python package, embedded at build time (see `build.rs`) and unpacked on first
//! use into `$OLLMLX_HOME/runner/<content hash>/ollmlx_mlx/`. The hash in the path means a new
//! build never runs stale runner code and two builds can run side by side.

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

include!(concat!(env!("OUT_DIR"), "/runner_files.rs"));

/// Unpacks the runner package (once per content hash) and returns the directory to put on
/// `PYTHONPATH`.
pub fn unpack(home: &Path) -> std::io::Result<PathBuf> {
    if RUNNER_FILES.is_empty() {
        return Err(std::io::Error::other(
            "this build of ollmlx has no MLX runner embedded",
        ));
    }
    let mut h = Sha256::new();
    for (name, body) in RUNNER_FILES {
        h.update(name.as_bytes());
        h.update([0]);
        h.update(body.as_bytes());
    }
    let hash = &hex::encode(h.finalize())[..16];
    let root = home.join("runner").join(hash);
    if root.join("ollmlx_mlx").join("__init__.py").is_file() {
        return Ok(root);
    }
    // Write into a private temporary directory, then rename: a crash or a concurrent daemon
    // never sees a half-written package.
    std::fs::create_dir_all(home.join("runner"))?;
    let tmp = tempdir_in(&home.join("runner"))?;
    let pkg = tmp.join("ollmlx_mlx");
    std::fs::create_dir_all(&pkg)?;
    for (name, body) in RUNNER_FILES {
        std::fs::write(pkg.join(name), body)?;
    }
    match std::fs::rename(&tmp, &root) {
        Ok(()) => Ok(root),
        // Another process won the race: its copy is identical.
        Err(_) if root.join("ollmlx_mlx").join("__init__.py").is_file() => {
            let _ = std::fs::remove_dir_all(&tmp);
            Ok(root)
        }
        Err(e) => Err(e),
    }
}

fn tempdir_in(parent: &Path) -> std::io::Result<PathBuf> {
    let p = parent.join(format!(
        ".tmp-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir(&p)?;
    Ok(p)
}

#[cfg(test)]
mod tests {
    #[test]
    fn unpacks_once() {
        assert!(
            !super::RUNNER_FILES.is_empty(),
            "build.rs embedded no runner sources"
        );
        let d = tempfile::tempdir().unwrap();
        let a = super::unpack(d.path()).unwrap();
        let b = super::unpack(d.path()).unwrap();
        assert_eq!(a, b);
        assert!(a.join("ollmlx_mlx/__main__.py").is_file());
    }
}
