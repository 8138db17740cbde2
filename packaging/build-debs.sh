#!/usr/bin/env bash
# Builds the Debian packages redline-agent and redline-collector into target/debian/:
# the binaries (cargo build --profile, release by default), then man pages and bash/zsh/fish
# completions generated from the binaries' own clap definitions (their hidden `man` and
# `completions` commands) into target/packaging/, then `cargo deb --no-build` for each
# package, which reads [package.metadata.deb] in agent/Cargo.toml and collector/Cargo.toml.
#
# Usage: packaging/build-debs.sh [--profile NAME]
# Needs cargo-deb (`cargo install cargo-deb`) and, for $auto dependencies, dpkg-dev's
# dpkg-shlibdeps (cargo-deb falls back to a plain libc6 dependency without it).
# Honours CARGO_TARGET_DIR; the generated files and the .debs always go under ./target/.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD
profile=release
while [ $# -gt 0 ]; do
    case $1 in
        --profile) profile=$2; shift 2 ;;
        --profile=*) profile=${1#--profile=}; shift ;;
        *) echo "usage: $0 [--profile NAME]" >&2; exit 2 ;;
    esac
done
case $profile in
    dev) echo "error: cargo-deb does not package the dev profile" >&2; exit 2 ;;
esac
command -v cargo-deb >/dev/null || { echo "error: cargo-deb not found (cargo install cargo-deb)" >&2; exit 1; }

target_dir=${CARGO_TARGET_DIR:-$root/target}
bin_dir=$target_dir/$profile
gen=$root/target/packaging
out=$root/target/debian

phase() { printf '==> %s\n' "$*"; }
timed() {
    local name=$1 start=$SECONDS
    shift
    "$@"
    printf '    %s: %ds\n' "$name" $((SECONDS - start))
}

phase "cargo build --profile $profile (redline-agent, redline-collector)"
timed "build" cargo build --locked --profile "$profile" -p redline-agent -p redline-collector --bins

phase "man pages and completions -> ${gen#"$root"/}"
rm -rf "$gen"
mkdir -p "$gen"
for bin in redline-agent redline-collector; do
    "$bin_dir/$bin" man --out "$gen/man"
    "$bin_dir/$bin" completions --out "$gen/completions"
done
gzip -9n <README.md >"$gen/README.md.gz"
printf '    %d man pages, %d completion files\n' \
    "$(find "$gen/man" -name '*.1' | wc -l)" "$(find "$gen/completions" -type f | wc -l)"

phase "cargo deb -> ${out#"$root"/}"
mkdir -p "$out"
rm -f "$out"/redline-agent_*.deb "$out"/redline-collector_*.deb
for pkg in redline-agent redline-collector; do
    timed "$pkg.deb" cargo deb --no-build --locked --profile "$profile" -p "$pkg" --output "$out/"
done
ls -l "$out"/*.deb
