# Shared by the check scripts (scripts/check-deploy, scripts/check-image):
# one PASS/FAIL/SKIP line per check, a summary, and the waits they all need.
# Source it after setting WORK (a scratch directory the caller removes).
#
#   check NAME COMMAND...    PASS on exit 0, FAIL with the tail of its output
#   pass NAME | skip NAME | fail NAME [DETAILS-FILE]
#   summary SCRIPT           "SCRIPT: N passed, N failed, N skipped"; status 1 on a failure

PASSED=0
FAILED=0
SKIPPED=0
FAILURES=()

pass() { PASSED=$((PASSED + 1)); echo "PASS: $1"; }
skip() { SKIPPED=$((SKIPPED + 1)); echo "SKIP: $1"; }
fail() { # NAME [DETAILS-FILE]
    FAILED=$((FAILED + 1)); FAILURES+=("$1"); echo "FAIL: $1"
    if [[ -n ${2:-} && -s $2 ]]; then tail -n 40 "$2" | sed 's/^/    /'; fi
}
check() {
    local name=$1; shift
    if "$@" >"$WORK/out" 2>&1; then pass "$name"; else fail "$name" "$WORK/out"; fi
}

summary() { # SCRIPT
    echo
    if ((FAILED)); then
        printf 'failed: %s\n' "${FAILURES[@]}"
    fi
    echo "$1: $PASSED passed, $FAILED failed, $SKIPPED skipped"
    ((FAILED == 0))
}

stop_pid() { # PID: SIGTERM, up to 10 s, then SIGKILL
    local pid=$1 _
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
}

free_ports() { # N: N distinct free TCP ports on 127.0.0.1
    python3 - "$1" <<'PY'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

# wait_for SECONDS COMMAND...: retries COMMAND every 0.5 s until it succeeds;
# gives up at once when COMMAND exits 99 (what it waits for cannot happen).
wait_for() {
    local deadline=$((SECONDS + $1)) rc; shift
    while :; do
        rc=0; "$@" >/dev/null 2>&1 || rc=$?
        ((rc == 0)) && return 0
        ((rc != 99 && SECONDS < deadline)) || return 1
        sleep 0.5
    done
}

tcp_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
