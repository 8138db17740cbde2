//! The hidden `man` and `completions` commands of `redline-agent`: man pages and shell completions
//! generated from the clap definitions in `main.rs`, so they never drift from `--help`.
//! Only `packaging/build-debs.sh` calls them, when it builds the Debian packages; they are
//! hidden from `--help` and from the pages themselves.

use std::path::Path;

use clap::CommandFactory;
use clap_complete::Shell;

/// Writes `redline-agent.1` and one page per visible subcommand (`redline-agent-<sub>.1`) into
/// `out`, creating it if needed.
pub fn man<C: CommandFactory>(out: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(out)?;
    clap_mangen::generate_to(C::command(), out)
}

/// Writes bash (`redline-agent.bash`), zsh (`_redline-agent`) and fish (`redline-agent.fish`) completions into
/// `out`, creating it if needed.
pub fn completions<C: CommandFactory>(out: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(out)?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        clap_complete::generate_to(shell, &mut C::command(), "redline-agent", out)?;
    }
    Ok(())
}
