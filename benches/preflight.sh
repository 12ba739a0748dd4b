# The checks every load script runs before its driver starts. Sourced (from the repository
# root), not run.

# bench_args USAGE_FN [ARG]: --help prints the usage and exits 0; no argument goes on; anything
# else exits 2.
bench_args() {
  local usage=$1
  shift
  case "${1:-}" in
    -h|--help) "$usage"; exit 0 ;;
    "") ;;
    *) echo "unknown argument: $1 (try --help)" >&2; exit 2 ;;
  esac
}

# need_sbcd [CODE]: SBCD_BIN (default target/release/sbcd) must be executable, or exit CODE (1).
need_sbcd() {
  local bin=${SBCD_BIN:-target/release/sbcd}
  if [[ ! -x "$bin" ]]; then
    echo "$bin not found: cargo build --release -p sbcd (or set SBCD_BIN)" >&2
    exit "${1:-1}"
  fi
}

# need_sipp [CODE]: SIPP_BIN (default sipp) must be on PATH, or exit CODE (1).
need_sipp() {
  if ! command -v "${SIPP_BIN:-sipp}" >/dev/null; then
    echo "sipp not found (apt-get install sip-tester)" >&2
    exit "${1:-1}"
  fi
}

# Every load script opens many sockets (SIPp calls, media ports): the soft descriptor limit goes
# up to the hard one, best effort.
raise_nofile() {
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
}
