//! `ollmlx login`: stores a Hugging Face token where `huggingface_hub` keeps it (`HF_TOKEN_PATH`,
//! else `$HF_HOME/token`), readable by the owner only. The token is read from stdin (or a
//! prompt), never from the command line, where other users could see it in `ps`.

use std::io::{BufRead, IsTerminal, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Clone, clap::Args)]
pub struct LoginArgs {
    /// The token file (default `$HF_HOME/token`, as huggingface_hub).
    #[arg(long, env = crate::env::HF_TOKEN_PATH)]
    pub token_path: Option<PathBuf>,
    #[arg(long, env = crate::env::HF_HOME, hide = true)]
    pub hf_home: Option<PathBuf>,
}

pub fn run(args: LoginArgs) -> anyhow::Result<ExitCode> {
    let path = match (&args.token_path, &args.hf_home) {
        (Some(p), _) => p.clone(),
        (None, Some(h)) => h.join("token"),
        (None, None) => {
            let home =
                std::env::var_os("HOME").ok_or_else(|| anyhow::anyhow!("HOME is not set"))?;
            PathBuf::from(home).join(".cache/huggingface/token")
        }
    };
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("Hugging Face token (from https://huggingface.co/settings/tokens): ");
        std::io::stderr().flush()?;
    }
    let mut token = String::new();
    stdin.lock().read_line(&mut token)?;
    let token = token.trim();
    if token.is_empty() || token.chars().any(char::is_whitespace) {
        anyhow::bail!("no valid token was given");
    }
    save(&path, token)?;
    eprintln!("Token saved to {}", path.display());
    Ok(ExitCode::SUCCESS)
}

/// Writes the token owner-only, through a temporary file and a rename.
pub fn save(path: &std::path::Path, token: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(token.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn token_file_is_owner_only() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("hf/token");
        super::save(&p, "hf_secret").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "hf_secret");
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        super::save(&p, "hf_other").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "hf_other");
    }
}
