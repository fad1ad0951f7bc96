//! `ollmlx completions <shell>` and `ollmlx man [DIR]`: shell completions and man pages generated
//! from the clap definition itself, so they can never drift from the real command line. Both are
//! hidden (packagers run them, users don't need to see them) and need no daemon. The release
//! archives, the Homebrew formula and `install.sh` all install what these two write
//! (scripts/package.sh).

use clap::CommandFactory;
use std::path::PathBuf;
use std::process::ExitCode;

use super::{Cli, Printer};

/// The name completions are registered for and man pages are titled with: the installed binary.
const BIN: &str = "ollmlx";

#[derive(Debug, Clone, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to write completions for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ManArgs {
    /// Write `ollmlx.1` and one `ollmlx-<command>.1` per subcommand into this directory, instead
    /// of printing `ollmlx(1)` to stdout.
    pub dir: Option<PathBuf>,
}

/// Writes the completion script for one shell to stdout.
pub fn completions(args: CompletionsArgs, p: &Printer) -> anyhow::Result<ExitCode> {
    p.out(completion_script(args.shell))?;
    Ok(ExitCode::SUCCESS)
}

/// Writes `ollmlx(1)` to stdout, or every page into a directory.
pub fn man(args: ManArgs, p: &Printer) -> anyhow::Result<ExitCode> {
    match args.dir {
        Some(dir) => {
            std::fs::create_dir_all(&dir)?;
            clap_mangen::generate_to(Cli::command(), &dir)?;
        }
        None => p.out(man_page()?)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn completion_script(shell: clap_complete::Shell) -> String {
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), BIN, &mut buf);
    // clap_complete writes only UTF-8: our own names and help texts.
    String::from_utf8_lossy(&buf).into_owned()
}

fn man_page() -> std::io::Result<String> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap_complete::Shell;

    /// The commands users type; every generated artefact must know each of them.
    const COMMANDS: [&str; 12] = [
        "serve",
        "run",
        "pull",
        "list",
        "ps",
        "show",
        "stop",
        "rm",
        "cp",
        "create",
        "login",
        "rpc-server",
    ];

    #[test]
    fn completions_know_every_command() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let script = completion_script(shell);
            for command in COMMANDS {
                assert!(script.contains(command), "{shell}: no {command}");
            }
            // A flag of a subcommand, not only the names: `run --keepalive`.
            assert!(script.contains("keepalive"), "{shell}: no run --keepalive");
        }
        assert!(completion_script(Shell::Bash).contains("complete -F _ollmlx"));
        assert!(completion_script(Shell::Zsh).starts_with("#compdef ollmlx"));
        assert!(completion_script(Shell::Fish).contains("complete -c ollmlx"));
    }

    #[test]
    fn man_page_lists_every_command() {
        let page = man_page().unwrap();
        assert!(page.contains(".TH ollmlx 1"), "{page}");
        assert!(
            page.contains(env!("CARGO_PKG_VERSION")),
            "version in the title"
        );
        for command in COMMANDS {
            assert!(
                page.contains(&format!("ollmlx\\-{}(1)", command.replace('-', "\\-"))),
                "no {command}"
            );
        }
        assert!(!page.contains("completions"), "hidden commands stay hidden");
    }

    #[test]
    fn man_dir_gets_a_page_per_command() {
        let dir = tempfile::tempdir().unwrap();
        let (p, _) = Printer::capture();
        man(
            ManArgs {
                dir: Some(dir.path().join("man1")),
            },
            &p,
        )
        .unwrap();
        for command in COMMANDS {
            let page = std::fs::read_to_string(dir.path().join(format!("man1/ollmlx-{command}.1")))
                .unwrap();
            assert!(page.contains(&format!(".TH ollmlx-{command} 1")), "{page}");
        }
        let serve = std::fs::read_to_string(dir.path().join("man1/ollmlx-serve.1")).unwrap();
        assert!(
            serve.contains("\\-\\-keep\\-alive"),
            "serve's flags documented: {serve}"
        );
    }
}
