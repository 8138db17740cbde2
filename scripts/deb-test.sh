#!/usr/bin/env bash
# The Debian packages, end to end: builds them (packaging/build-debs.sh), runs lintian, checks
# that the shipped configuration and rules pass `validate`, `config check` and `rules check`,
# then installs both packages with `dpkg -i` in a minimal chroot of this machine's Debian suite
# (debootstrap) and checks files, conffiles, the redline user and the state directories,
# runs `validate` inside as the redline user, checks that nothing was started without
# systemd (and that it would be with systemd), then removes and purges and checks the chroot
# is back to what it was. Any problem fails the script.
#
# Usage (as root): scripts/deb-test.sh [--profile NAME]   (default: release)
# Needs: cargo-deb, lintian, debootstrap, dpkg-dev (Debian packages), and the Debian mirror the
# first time. The bootstrapped chroot is cached as a tarball in $REDLINE_DEB_CACHE (default
# /var/cache/redline-ci), so later runs need no network and take seconds for that phase.
# REDLINE_DEB_MIRROR overrides the mirror (default: http://deb.debian.org/debian).
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

fail() { echo "deb-test: FAIL: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "must run as root (chroot, dpkg)"
for tool in cargo-deb lintian debootstrap dpkg-deb; do
    command -v "$tool" >/dev/null || fail "$tool not found (see the header of $0)"
done

phase_name=
phase_start=$SECONDS
total_start=$SECONDS
declare -a timings=()
phase() {
    end_phase
    phase_name=$1
    phase_start=$SECONDS
    printf '\n==> %s\n' "$phase_name"
}
end_phase() {
    if [ -n "$phase_name" ]; then
        timings+=("$(printf '%4ds  %s' $((SECONDS - phase_start)) "$phase_name")")
        printf '    (%ds)\n' $((SECONDS - phase_start))
    fi
    phase_name=
}

# shellcheck disable=SC1091
suite=$(. /etc/os-release && echo "${VERSION_CODENAME:?no VERSION_CODENAME in /etc/os-release}")
arch=$(dpkg --print-architecture)
mirror=${REDLINE_DEB_MIRROR:-http://deb.debian.org/debian}
cache=${REDLINE_DEB_CACHE:-/var/cache/redline-ci}
# What the chroot holds beyond minbase: the packages' declared dependency (adduser), so that
# `dpkg -i` needs no network.
include=adduser
base_tar=$cache/chroot-$suite-$arch-minbase-$include.tar

work=$(mktemp -d "$root/target/deb-test.XXXXXX")
chroot_dir=$work/chroot
cleanup() {
    # Nothing is mounted in the chroot (dpkg, adduser and the binaries need no /proc), so
    # there is nothing to unmount; refuse to delete through a mount point all the same.
    if [ -d "$chroot_dir" ] && findmnt -rn -o TARGET | grep -q "^$chroot_dir/"; then
        echo "deb-test: something is mounted under $chroot_dir; leaving $work" >&2
        return
    fi
    rm -rf "$work"
}
trap cleanup EXIT

in_chroot() { chroot "$chroot_dir" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }

# A listing of the chroot for the before/after comparison: path, type and mode, owner. dpkg's
# own database and logs change with every operation and are left out; so are the account
# files, because the redline user is meant to stay after purge (checked separately).
snapshot() {
    (cd "$chroot_dir" && find . -xdev \
        \( -path ./var/lib/dpkg -o -path ./var/log -o -path ./var/cache/debconf -o -path ./tmp \
        -o -path ./proc -o -path ./run \) -prune -o \
        \( -path ./etc/passwd -o -path ./etc/group -o -path ./etc/shadow -o -path ./etc/gshadow \
        -o -path ./etc/passwd- -o -path ./etc/group- -o -path ./etc/shadow- -o -path ./etc/gshadow- \) \
        -prune -o -printf '%p %M %u:%g\n' | sort)
}

################################################################################
phase "build the packages (profile $profile)"
packaging/build-debs.sh --profile "$profile"
agent_deb=$(ls "$root"/target/debian/redline-agent_*.deb)
collector_deb=$(ls "$root"/target/debian/redline-collector_*.deb)

################################################################################
phase "lintian"
lintian --allow-root --fail-on warning --display-info "$agent_deb" "$collector_deb" \
    || fail "lintian reported warnings or errors"
echo "    lintian: no warnings or errors"

################################################################################
phase "shipped configuration and rules (binaries and files from the .debs)"
extract=$work/extract
dpkg-deb -x "$agent_deb" "$extract"
dpkg-deb -x "$collector_deb" "$extract"
# The configurations name absolute paths (/etc/redline/..., /var/lib/...): check copies that
# point into the extracted tree instead.
mkdir -p "$extract/var/lib/redline-collector" "$extract/var/lib/redline-agent"
for f in collector.yaml agent.yaml; do
    sed -e "s#/etc/redline/#$extract/etc/redline/#g" -e "s#/var/lib/#$extract/var/lib/#g" \
        "$extract/etc/redline/$f" >"$work/$f"
done
"$extract/usr/bin/redline-collector" validate --config "$work/collector.yaml" \
    || fail "the shipped collector.yaml does not validate"
"$extract/usr/bin/redline-agent" validate --config "$work/agent.yaml" \
    || fail "the shipped agent.yaml does not validate"
"$extract/usr/bin/redline-collector" config check "$extract/etc/redline/alertmanager.yml" \
    || fail "the shipped alertmanager.yml does not pass config check"
"$extract/usr/bin/redline-collector" rules check "$extract/etc/redline/rules" \
    || fail "the shipped rules do not pass rules check"
for f in "$extract"/etc/redline/rules/*.yml; do
    cmp -s "$f" "rules/$(basename "$f")" || fail "$f differs from rules/$(basename "$f")"
done

################################################################################
phase "chroot ($suite, $arch, minbase + $include)"
mkdir -p "$chroot_dir"
if [ -f "$base_tar" ]; then
    echo "    cached: $base_tar"
else
    echo "    debootstrap from $mirror (cached afterwards in $base_tar)"
    mkdir -p "$cache"
    fresh=$work/fresh
    debootstrap --variant=minbase --include="$include" "$suite" "$fresh" "$mirror" \
        >"$work/debootstrap.log" 2>&1 || { tail -n 30 "$work/debootstrap.log" >&2; fail "debootstrap"; }
    rm -rf "$fresh"/var/cache/apt/archives/*.deb "$fresh"/var/lib/apt/lists/*_Packages
    tar -C "$fresh" --numeric-owner -cf "$base_tar.tmp" .
    mv "$base_tar.tmp" "$base_tar"
    rm -rf "$fresh"
fi
tar -C "$chroot_dir" --numeric-owner -xf "$base_tar"
# Stand-ins that record any attempt to touch services: they come first in PATH, so the
# maintainer scripts reach them instead of the real deb-systemd-invoke and systemctl.
mkdir -p "$chroot_dir/usr/local/sbin"
for tool in systemctl deb-systemd-invoke; do
    printf '#!/bin/sh\necho "%s $*" >>/tmp/service-calls\n' "$tool" >"$chroot_dir/usr/local/sbin/$tool"
    chmod 755 "$chroot_dir/usr/local/sbin/$tool"
done
[ ! -e "$chroot_dir/run/systemd/system" ] || fail "the chroot looks like it runs systemd"
before=$work/before.txt
snapshot >"$before"
cp "$agent_deb" "$collector_deb" "$chroot_dir/tmp/"
agent_in=/tmp/$(basename "$agent_deb")
collector_in=/tmp/$(basename "$collector_deb")

################################################################################
phase "install with dpkg -i"
in_chroot dpkg -i "$agent_in" "$collector_in" || fail "dpkg -i"
for pkg in redline-agent redline-collector; do
    status=$(in_chroot dpkg-query -W -f='${db:Status-Abbrev}' "$pkg")
    [ "$status" = "ii " ] || fail "$pkg: status '$status' after install, expected 'ii '"
done

# Files where they should be.
expect_files() {
    local pkg=$1
    shift
    local listing
    listing=$(in_chroot dpkg -L "$pkg")
    for f in "$@"; do
        grep -qx "$f" <<<"$listing" || fail "$pkg: $f is not in dpkg -L"
        [ -e "$chroot_dir$f" ] || fail "$pkg: $f is missing"
    done
}
for p in agent collector; do
    expect_files "redline-$p" "/usr/bin/redline-$p" "/etc/redline/$p.yaml" \
        "/usr/lib/systemd/system/redline-$p.service" \
        "/usr/share/man/man1/redline-$p.1.gz" "/usr/share/man/man1/redline-$p-validate.1.gz" \
        "/usr/share/bash-completion/completions/redline-$p" \
        "/usr/share/zsh/vendor-completions/_redline-$p" \
        "/usr/share/fish/vendor_completions.d/redline-$p.fish" \
        "/usr/share/doc/redline-$p/copyright" "/usr/share/doc/redline-$p/changelog.Debian.gz"
    [ -x "$chroot_dir/usr/bin/redline-$p" ] || fail "/usr/bin/redline-$p is not executable"
done
expect_files redline-collector /etc/redline/alertmanager.yml /etc/redline/rules/host.yml \
    /etc/redline/rules/anomaly.yml

# Conffiles.
expect_conffiles() {
    local pkg=$1
    shift
    local conffiles
    conffiles=$(in_chroot dpkg-query -W -f='${Conffiles}\n' "$pkg" | awk 'NF { print $1 }')
    for f in "$@"; do
        grep -qx "$f" <<<"$conffiles" || fail "$pkg: $f is not a conffile (conffiles: $conffiles)"
    done
    local n
    n=$(grep -c . <<<"$conffiles")
    [ "$n" = $# ] || fail "$pkg: $n conffiles, expected $# ($conffiles)"
}
expect_conffiles redline-agent /etc/redline/agent.yaml
expect_conffiles redline-collector /etc/redline/collector.yaml /etc/redline/alertmanager.yml \
    /etc/redline/rules/host.yml /etc/redline/rules/anomaly.yml

# The system user and the state directories.
passwd_line=$(in_chroot getent passwd redline) || fail "no redline user after install"
IFS=: read -r _ _ uid _ _ home shell <<<"$passwd_line"
[ "$uid" -lt 1000 ] || fail "redline is not a system user (uid $uid)"
[ "$home" = /nonexistent ] || fail "redline's home is $home, expected /nonexistent"
[ "$shell" = /usr/sbin/nologin ] || fail "redline's shell is $shell, expected /usr/sbin/nologin"
in_chroot getent group redline >/dev/null || fail "no redline group after install"
for p in agent collector; do
    owner=$(in_chroot stat -c '%U:%G %a' "/var/lib/redline-$p") || fail "/var/lib/redline-$p missing"
    [ "$owner" = "redline:redline 750" ] || fail "/var/lib/redline-$p is '$owner', expected 'redline:redline 750'"
done
echo "    files, conffiles, user redline (uid $uid), /var/lib/redline-{agent,collector}: ok"

################################################################################
phase "validate inside the chroot (as the redline user)"
in_chroot setpriv --reuid=redline --regid=redline --clear-groups \
    /usr/bin/redline-collector validate --config /etc/redline/collector.yaml \
    || fail "redline-collector validate in the chroot"
in_chroot setpriv --reuid=redline --regid=redline --clear-groups \
    /usr/bin/redline-agent validate --config /etc/redline/agent.yaml \
    || fail "redline-agent validate in the chroot"
in_chroot /usr/bin/redline-collector rules check /etc/redline/rules >/dev/null \
    || fail "redline-collector rules check in the chroot"
in_chroot man -w redline-collector >/dev/null 2>&1 || [ ! -x "$chroot_dir/usr/bin/man" ] \
    || fail "man cannot find redline-collector(1)"

################################################################################
phase "services: enabled, not started without systemd; started with it"
for p in agent collector; do
    link=$chroot_dir/etc/systemd/system/multi-user.target.wants/redline-$p.service
    [ -L "$link" ] || fail "redline-$p.service was not enabled (no $link)"
done
if [ -e "$chroot_dir/tmp/service-calls" ]; then
    cat "$chroot_dir/tmp/service-calls" >&2
    fail "the maintainer scripts touched services in a chroot without systemd"
fi
echo "    enabled; no systemctl or deb-systemd-invoke call without systemd"
# The same packages again (an upgrade to the same version) on a "system running systemd":
# the postinst must now (re)start both services.
mkdir -p "$chroot_dir/run/systemd/system"
in_chroot dpkg -i "$agent_in" "$collector_in" >/dev/null || fail "dpkg -i (reinstall)"
for p in agent collector; do
    grep -Eq "^deb-systemd-invoke (start|restart) .*redline-$p\.service" "$chroot_dir/tmp/service-calls" \
        || { cat "$chroot_dir/tmp/service-calls" >&2; fail "redline-$p was not (re)started with systemd running"; }
done
echo "    with /run/systemd/system: $(tr '\n' ';' <"$chroot_dir/tmp/service-calls")"
rm -rf "$chroot_dir/run/systemd" "$chroot_dir/tmp/service-calls"

################################################################################
phase "remove (dpkg -r): binaries gone, conffiles and state kept"
# Something the daemons would have written, to see purge remove it.
in_chroot setpriv --reuid=redline --regid=redline --clear-groups \
    touch /var/lib/redline-collector/redline.db /var/lib/redline-agent/queue-marker
in_chroot dpkg -r redline-agent redline-collector || fail "dpkg -r"
for p in agent collector; do
    status=$(in_chroot dpkg-query -W -f='${db:Status-Abbrev}' "redline-$p")
    [ "$status" = "rc " ] || fail "redline-$p: status '$status' after remove, expected 'rc '"
    [ ! -e "$chroot_dir/usr/bin/redline-$p" ] || fail "/usr/bin/redline-$p left after remove"
    [ ! -e "$chroot_dir/usr/lib/systemd/system/redline-$p.service" ] || fail "unit left after remove"
    [ -f "$chroot_dir/etc/redline/$p.yaml" ] || fail "/etc/redline/$p.yaml removed by dpkg -r"
    [ -d "$chroot_dir/var/lib/redline-$p" ] || fail "/var/lib/redline-$p removed by dpkg -r"
done
[ -f "$chroot_dir/etc/redline/rules/host.yml" ] || fail "/etc/redline/rules/host.yml removed by dpkg -r"

################################################################################
phase "purge (dpkg -P): conffiles and state gone, the redline user stays"
in_chroot dpkg -P redline-agent redline-collector || fail "dpkg -P"
for p in agent collector; do
    if in_chroot dpkg-query -W "redline-$p" >/dev/null 2>&1; then
        fail "redline-$p still known to dpkg after purge"
    fi
done
[ ! -e "$chroot_dir/etc/redline" ] || fail "/etc/redline left after purge: $(find "$chroot_dir/etc/redline")"
for p in agent collector; do
    [ ! -e "$chroot_dir/var/lib/redline-$p" ] || fail "/var/lib/redline-$p left after purge"
done
in_chroot getent passwd redline >/dev/null || fail "the redline user was removed (it should stay)"
after=$work/after.txt
snapshot >"$after"
if ! diff -u "$before" "$after" >"$work/diff.txt"; then
    cat "$work/diff.txt" >&2
    fail "the chroot differs after purge from before install (above)"
fi
echo "    the chroot is as before install (apart from dpkg's database and logs and the redline user)"

end_phase
printf '\n==> deb-test: ok (%ds)\n' $((SECONDS - total_start))
printf '%s\n' "${timings[@]}"
