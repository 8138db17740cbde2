# Helpers shared by the bench/ scripts and scripts/quickstart.sh. Source it; do not run it.
# Everything here binds or talks to 127.0.0.1 only.

# apt_install PKG...: installs the Debian packages that are missing, without starting their
# services (a policy-rc.d that refuses starts is in place for the install). Quiet and quick
# when everything is already installed.
apt_install() {
    local missing=() pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "error: missing Debian packages: ${missing[*]} (run as root or install them)" >&2
        return 1
    fi
    echo "==> apt-get install ${missing[*]}" >&2
    local policy=/usr/sbin/policy-rc.d made_policy=0 rc=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\n# installed by redline for the duration of an apt-get install\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        made_policy=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get update -qq || rc=$?
    if [ "$rc" -eq 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" || rc=$?
    fi
    [ "$made_policy" -eq 1 ] && rm -f "$policy"
    return "$rc"
}

# port_free PORT: true when nothing accepts connections on 127.0.0.1:PORT.
port_free() {
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# free_port START: prints the first free port at or above START.
free_port() {
    local p=$1
    while ! port_free "$p"; do p=$((p + 1)); done
    echo "$p"
}

# wait_http URL SECONDS: polls URL until it answers 2xx; fails after SECONDS.
wait_http() {
    local url=$1 deadline=$((SECONDS + $2))
    until curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "error: $url did not answer within $2 s" >&2
            return 1
        fi
        sleep 0.2
    done
}

# cpu_ticks PID: utime + stime of PID in clock ticks (fields 14 and 15 of /proc/PID/stat,
# counted after the parenthesised command name, which may contain spaces).
cpu_ticks() {
    local stat
    stat=$(cat "/proc/$1/stat") || return 1
    stat=${stat##*) }
    # shellcheck disable=SC2086 # split on purpose
    set -- $stat
    echo $(( ${12} + ${13} ))
}

# vmhwm_kb PID: peak resident set size of PID in KiB.
vmhwm_kb() {
    awk '/^VmHWM:/ {print $2}' "/proc/$1/status"
}

# stop_pid PID SECONDS: SIGTERM, wait up to SECONDS, then SIGKILL. Only our own children.
stop_pid() {
    local pid=$1 deadline=$((SECONDS + ${2:-10}))
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.1
    done
    wait "$pid" 2>/dev/null || true
}

# ratio A B: A / B with 3 decimals ("n/a" when B is 0).
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.3f\n", a / b }'
}
