# lib_experiment.sh: shared by the experiment scripts (sourced, not run).
# Sets ROOT (repo root), BIN (the rwkvscope binary, built if missing), OUT (results/<name>),
# and a log function that stamps progress lines on stderr.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BIN=${RWKVSCOPE_BIN:-$ROOT/build/rwkvscope}
if [ ! -x "$BIN" ]; then
    echo "building rwkvscope ..." >&2
    make -j2 >/dev/null
fi
experiment_init() { OUT="$ROOT/results/$1"; mkdir -p "$OUT"; }
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
# rwkvscope has the subcommand $1 (landed on this branch)?
have_cmd() { "$BIN" "$1" --help >/dev/null 2>&1; }
