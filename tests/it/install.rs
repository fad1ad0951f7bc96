//! The release path end to end: scripts/package.sh packs the real `ollmlx` binary into a release
//! archive, scripts/checksums.sh writes SHA256SUMS, and `sh install.sh` installs it from a local
//! stand-in for the release host into a temporary prefix. Only the host is stood in for: the
//! scripts, tar, curl and the binary are the real ones. Also the linters of the release files
//! (shellcheck, ruby -c, actionlint, plistlib, systemd-analyze) where they are installed.

use crate::support::repo_root;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex, OnceLock};

const VERSION: &str = "9.9.9";

/// A tool the tests need: `None` (and a message) when absent, unless OLLMLX_REQUIRE_TOOLS is set.
fn tool(name: &str, why: &str) -> Option<PathBuf> {
    let found = which(name);
    if found.is_none() {
        if std::env::var_os("OLLMLX_REQUIRE_TOOLS").is_some() {
            panic!(
                "OLLMLX_REQUIRE_TOOLS is set but {name} is missing ({why}; .ci/run installs it)"
            );
        }
        eprintln!("skipping: {name} is not installed ({why})");
    }
    found
}

/// `<os>-<arch>` as install.sh names this machine.
fn platform() -> String {
    let os = match std::env::consts::OS {
        "macos" => "macos",
        _ => "linux",
    };
    let arch = match (os, std::env::consts::ARCH) {
        ("macos", "aarch64") => "arm64",
        (_, arch) => arch,
    };
    format!("{os}-{arch}")
}

fn archive_name() -> String {
    format!("ollmlx-{VERSION}-{}.tar.gz", platform())
}

/// The real release artefacts, packed once per test binary: the archive's bytes and SHA256SUMS.
fn release() -> &'static (Vec<u8>, String) {
    static RELEASE: OnceLock<(Vec<u8>, String)> = OnceLock::new();
    RELEASE.get_or_init(|| {
        let out = tempfile::tempdir().unwrap();
        let packed = run(Command::new("sh")
            .arg(repo_root().join("scripts/package.sh"))
            .args([env!("CARGO_BIN_EXE_ollmlx"), VERSION])
            .args(platform().split('-'))
            .arg(out.path()));
        assert_eq!(
            stdout(&packed).trim(),
            out.path().join(archive_name()).to_str().unwrap()
        );
        stdout(&run(Command::new("sh")
            .arg(repo_root().join("scripts/checksums.sh"))
            .arg(out.path())));
        let archive = std::fs::read(out.path().join(archive_name())).unwrap();
        let sums = std::fs::read_to_string(out.path().join("SHA256SUMS")).unwrap();
        (archive, sums)
    })
}

/// The stand-in for the GitHub release: serves fixed files over HTTP/1.1 and 404s the rest.
struct ReleaseHost {
    url: String,
}

impl ReleaseHost {
    fn start(files: HashMap<String, Vec<u8>>) -> ReleaseHost {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v{VERSION}", listener.local_addr().unwrap());
        let files = Arc::new(Mutex::new(files));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut request = String::new();
                if BufReader::new(&stream).read_line(&mut request).is_err() {
                    continue;
                }
                // `GET /v9.9.9/<file> HTTP/1.1`
                let path = request.split_whitespace().nth(1).unwrap_or("");
                let file = path.strip_prefix(&format!("/v{VERSION}/")).unwrap_or("");
                let body = files.lock().unwrap().get(file).cloned();
                let _ = match body {
                    Some(body) => stream
                        .write_all(
                            format!(
                                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                                body.len()
                            )
                            .as_bytes(),
                        )
                        .and_then(|_| stream.write_all(&body)),
                    None => stream.write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nNot Found",
                    ),
                };
            }
        });
        ReleaseHost { url }
    }
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap()
}

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Runs `sh install.sh` against `host` into `prefix`, never touching the machine's services.
fn install(host: &ReleaseHost, prefix: &Path, env: &[(&str, &str)]) -> Output {
    let home = prefix.parent().unwrap().join("home");
    std::fs::create_dir_all(&home).unwrap();
    Command::new("sh")
        .arg(repo_root().join("install.sh"))
        .env("OLLMLX_BASE_URL", &host.url)
        .env("OLLMLX_PREFIX", prefix)
        .env("OLLMLX_SERVICE", "no")
        .env("HOME", &home)
        .env_remove("OLLMLX_VERSION")
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

fn curl_and_tar() -> bool {
    tool("curl", "install.sh downloads with it").is_some()
        && tool("tar", "the archives are tarballs").is_some()
}

#[test]
fn installs_a_verified_release_with_completions_and_man_pages() {
    if !curl_and_tar() {
        return;
    }
    let (archive, sums) = release();
    let host = ReleaseHost::start(HashMap::from([
        ("SHA256SUMS".to_string(), sums.clone().into_bytes()),
        (archive_name(), archive.clone()),
    ]));
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("prefix");

    // The latest release (no version asked for): the name comes from SHA256SUMS.
    let out = install(&host, &prefix, &[]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("Checksum verified"), "{log}");

    // The installed binary is the one we built, and it runs.
    let bin = prefix.join("bin/ollmlx");
    assert_eq!(
        std::fs::read(&bin).unwrap(),
        std::fs::read(env!("CARGO_BIN_EXE_ollmlx")).unwrap()
    );
    let help = stdout(&run(Command::new(&bin).arg("--help")));
    for command in ["serve", "run", "pull", "list"] {
        assert!(help.contains(command), "{help}");
    }

    // Man pages and completions where man, bash-completion, zsh and fish look for them.
    let share = prefix.join("share");
    let man = std::fs::read_to_string(share.join("man/man1/ollmlx.1")).unwrap();
    assert!(man.contains(".TH ollmlx 1"), "{man}");
    assert!(share.join("man/man1/ollmlx-serve.1").is_file());
    let bash = std::fs::read_to_string(share.join("bash-completion/completions/ollmlx")).unwrap();
    assert!(bash.contains("complete -F _ollmlx"), "{bash}");
    assert!(share.join("zsh/site-functions/_ollmlx").is_file());
    assert!(share
        .join("fish/vendor_completions.d/ollmlx.fish")
        .is_file());
    assert!(share.join("ollmlx/ollmlx.service").is_file());
    assert!(share.join("ollmlx/com.ollmlx.serve.plist").is_file());

    // A pinned version (with or without the v) installs that archive; one not released is refused.
    let pinned = dir.path().join("pinned");
    let out = install(
        &host,
        &pinned,
        &[("OLLMLX_VERSION", &format!("v{VERSION}"))],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(pinned.join("bin/ollmlx").is_file());
    let missing = dir.path().join("missing");
    let out = install(&host, &missing, &[("OLLMLX_VERSION", "0.0.1")]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        log.contains(&format!("lists no ollmlx-0.0.1-{}.tar.gz", platform())),
        "{log}"
    );
    assert!(!missing.exists(), "nothing installed");
}

#[test]
fn refuses_a_corrupted_archive_and_installs_nothing() {
    if !curl_and_tar() {
        return;
    }
    let (archive, sums) = release();
    let mut corrupted = archive.clone();
    let middle = corrupted.len() / 2;
    corrupted[middle] ^= 0x55;
    let host = ReleaseHost::start(HashMap::from([
        ("SHA256SUMS".to_string(), sums.clone().into_bytes()),
        (archive_name(), corrupted),
    ]));
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("prefix");
    // An earlier install stays exactly as it was.
    std::fs::create_dir_all(prefix.join("bin")).unwrap();
    std::fs::write(prefix.join("bin/ollmlx"), "old").unwrap();

    let out = install(&host, &prefix, &[]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{log}");
    assert!(
        log.contains(&format!("checksum mismatch for {}", archive_name())),
        "{log}"
    );
    assert!(log.contains("nothing was installed"), "{log}");
    assert_eq!(
        std::fs::read_to_string(prefix.join("bin/ollmlx")).unwrap(),
        "old"
    );
    assert_eq!(std::fs::read_dir(prefix.join("bin")).unwrap().count(), 1);
    assert!(!prefix.join("share").exists());
}

#[test]
fn a_missing_archive_or_checksum_file_is_a_clear_error() {
    if !curl_and_tar() {
        return;
    }
    let (_, sums) = release();
    let dir = tempfile::tempdir().unwrap();

    // SHA256SUMS names the archive, but the host does not have it.
    let host = ReleaseHost::start(HashMap::from([(
        "SHA256SUMS".to_string(),
        sums.clone().into_bytes(),
    )]));
    let prefix = dir.path().join("no-archive");
    let out = install(&host, &prefix, &[]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        log.contains(&format!(
            "could not download {}/{}",
            host.url,
            archive_name()
        )),
        "{log}"
    );
    assert!(!prefix.exists(), "nothing installed");

    // No SHA256SUMS at all: nothing can be checked, so nothing is downloaded.
    let host = ReleaseHost::start(HashMap::new());
    let prefix = dir.path().join("no-sums");
    let out = install(&host, &prefix, &[]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        log.contains(&format!("could not download {}/SHA256SUMS", host.url)),
        "{log}"
    );
    assert!(!prefix.exists(), "nothing installed");
}

/// The release files that nothing here executes still pass their own checkers.
#[test]
fn release_files_pass_their_linters() {
    let root = repo_root();
    if let Some(shellcheck) = tool("shellcheck", "lints install.sh and the release scripts") {
        stdout(&run(Command::new(shellcheck).current_dir(&root).args([
            "install.sh",
            "scripts/package.sh",
            "scripts/checksums.sh",
        ])));
    }
    if let Some(ruby) = tool("ruby", "checks the Homebrew formula's syntax") {
        let ruby = &ruby;
        let ok = stdout(&run(Command::new(ruby)
            .current_dir(&root)
            .args(["-wc", "packaging/homebrew/ollmlx.rb"])));
        assert!(ok.contains("Syntax OK"), "{ok}");
        // The formula the release workflow renders for a tag is valid Ruby too, and names it.
        let sha = "ab".repeat(32);
        let rendered = stdout(&run(Command::new("sh")
            .arg(root.join("scripts/homebrew-formula.sh"))
            .args(["v1.2.3", &sha, "someone/ollmlx"])));
        assert!(
            rendered.contains(
                "url \"https://github.com/someone/ollmlx/archive/refs/tags/v1.2.3.tar.gz\""
            ) && rendered.contains(&format!("sha256 \"{sha}\"")),
            "{rendered}"
        );
        let formula = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(formula.path(), &rendered).unwrap();
        let ok = stdout(&run(Command::new(ruby).arg("-wc").arg(formula.path())));
        assert!(ok.contains("Syntax OK"), "{ok}");
    }
    // actionlint comes from the Go proxy, not apt: optional everywhere.
    let actionlint = which("actionlint").or_else(|| {
        let home = std::env::var_os("HOME")?;
        Some(PathBuf::from(home).join("go/bin/actionlint")).filter(|p| p.is_file())
    });
    match actionlint {
        Some(actionlint) => {
            stdout(&run(Command::new(actionlint).current_dir(&root).args([
                ".github/workflows/release.yml",
                ".github/workflows/ci.yml",
            ])));
        }
        None => eprintln!(
            "skipping actionlint: not installed \
             (go install github.com/rhysd/actionlint/cmd/actionlint@latest)"
        ),
    }
    if let Some(python) = tool("python3", "parses the launchd plist") {
        let plist = stdout(&run(Command::new(python).current_dir(&root).args([
            "-c",
            "import plistlib, sys; p = plistlib.load(open(sys.argv[1], 'rb')); \
             print(p['Label'], *p['ProgramArguments'], p['KeepAlive'])",
            "packaging/launchd/com.ollmlx.serve.plist",
        ])));
        assert_eq!(
            plist.trim(),
            "com.ollmlx.serve /usr/local/bin/ollmlx serve True"
        );
    }
    // systemd-analyze checks the unit's syntax; point ExecStart at a binary that exists.
    if let Some(analyze) = which("systemd-analyze") {
        let dir = tempfile::tempdir().unwrap();
        let unit = std::fs::read_to_string(root.join("packaging/systemd/ollmlx.service"))
            .unwrap()
            .replace("/usr/local/bin/ollmlx", env!("CARGO_BIN_EXE_ollmlx"));
        assert!(unit.contains("User=ollmlx") && unit.contains("OLLAMA_HOST="));
        std::fs::write(dir.path().join("ollmlx.service"), unit).unwrap();
        let out = run(Command::new(analyze)
            .arg("verify")
            .arg(dir.path().join("ollmlx.service")));
        let log = String::from_utf8_lossy(&out.stderr);
        // `man:` links cannot be resolved before the page is installed; nothing else may warn.
        let problems: Vec<&str> = log
            .lines()
            .filter(|l| !l.contains("man ollmlx(1)") && !l.trim().is_empty())
            .collect();
        assert!(problems.is_empty(), "{log}");
    }
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

/// Without root and without OLLMLX_PREFIX, everything goes under ~/.local. As root the test drops
/// to `nobody` (setpriv) to be an ordinary user.
#[test]
fn an_ordinary_user_gets_home_local() {
    if !curl_and_tar() {
        return;
    }
    let root_user = stdout(&run(Command::new("id").arg("-u"))).trim() == "0";
    let setpriv = if root_user {
        match tool("setpriv", "runs install.sh as an ordinary user") {
            Some(s) => Some(s),
            None => return,
        }
    } else {
        None
    };
    let (archive, sums) = release();
    let host = ReleaseHost::start(HashMap::from([
        ("SHA256SUMS".to_string(), sums.clone().into_bytes()),
        (archive_name(), archive.clone()),
    ]));
    let home = tempfile::tempdir().unwrap();
    let mut cmd = match &setpriv {
        Some(setpriv) => {
            std::os::unix::fs::chown(home.path(), Some(65534), Some(65534)).unwrap();
            let mut c = Command::new(setpriv);
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "sh"]);
            c
        }
        None => Command::new("sh"),
    };
    let out = cmd
        .arg(repo_root().join("install.sh"))
        .env("OLLMLX_BASE_URL", &host.url)
        .env("HOME", home.path())
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env_remove("OLLMLX_PREFIX")
        .env_remove("OLLMLX_VERSION")
        .env_remove("OLLMLX_SERVICE")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    let bin = home.path().join(".local/bin/ollmlx");
    assert!(bin.is_file(), "{log}");
    assert!(
        log.contains(&format!(
            "Installing ollmlx to {}",
            bin.parent().unwrap().display()
        )),
        "{log}"
    );
    // ~/.local/bin is not on that PATH: the installer says so.
    assert!(log.contains("to your PATH"), "{log}");
    assert!(home.path().join(".local/share/man/man1/ollmlx.1").is_file());
    // No root, so no service: only the hint.
    assert!(
        log.contains("To run ollmlx as a service") || cfg!(target_os = "macos"),
        "{log}"
    );
}
