#!/usr/bin/env bash
# readme_figures.sh: copies the pictures the README shows from a demo run (results/demo/, made
# by `make demo`) into docs/img/, the committed copies, and those of the RWKV-7 state probes
# (results/v7_state_probe/, made by scripts/v7_state_probe.sh); each when its run exists. Run
# it on purpose after a run whose figures the README should show (`make readme-figures`); the
# runs themselves never touch docs/.
#   usage: scripts/readme_figures.sh [DEMO_DIR] [V7_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
DEMO=${1:-results/demo}
V7=${2:-results/v7_state_probe}
IMG=docs/img

# copy DIR HINT SRC:DST...: DIR/SRC.png -> docs/img/DST.png, each of them required.
copy() {
    local dir=$1 hint=$2 pair src dst
    shift 2
    for pair in "$@"; do
        src="$dir/${pair%%:*}.png" dst="$IMG/${pair##*:}.png"
        [ -s "$src" ] || { echo "readme_figures: $src is missing ($hint)" >&2; exit 1; }
        cp "$src" "$dst"
        echo "  $src -> $dst"
    done
}

# from DIR MAKER SRC:DST...: the pictures of one run, when it has run (MAKER makes them).
copied=0
from() {
    local dir=$1 maker=$2
    shift 2
    if [ -d "$dir" ]; then
        copy "$dir" "run $maker first" "$@"
        copied=1
    else
        echo "readme_figures: no $dir: its pictures in $IMG stay as they are ($maker makes them)" >&2
    fi
}

from "$DEMO" "make demo" horizon-plot:horizon recall_heatmap:recall_heatmap \
    recall_accuracy:recall_accuracy decay_halflife_sorted:decay_halflife_sorted \
    state_dynamics:state_dynamics patch_state_num:patch_state_num patch_resid_in:patch_resid_in
from "$V7" "scripts/v7_state_probe.sh" horizon-plot:v7_horizon_layers horizon_heads-plot:v7_horizon_heads \
    horizon_svd-plot:v7_horizon_svd
[ "$copied" = 1 ] || { echo "readme_figures: no run to copy from (make demo, scripts/v7_state_probe.sh)" >&2; exit 1; }
