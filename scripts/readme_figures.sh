#!/usr/bin/env bash
# readme_figures.sh: copies the pictures the README shows from a demo run (results/demo/, made
# by `make demo`) into docs/img/, the committed copies, and those of the RWKV-7 state probes
# (results/v7_state_probe/, made by scripts/v7_state_probe.sh) when that script has run. Run
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

copy "$DEMO" "run make demo first" horizon-plot:horizon recall_heatmap:recall_heatmap \
    recall_accuracy:recall_accuracy decay_halflife_sorted:decay_halflife_sorted \
    state_dynamics:state_dynamics patch_state_num:patch_state_num patch_resid_in:patch_resid_in
if [ -d "$V7" ]; then
    copy "$V7" "run scripts/v7_state_probe.sh first" horizon-plot:v7_horizon_layers \
        horizon_heads-plot:v7_horizon_heads horizon_svd-plot:v7_horizon_svd
else
    echo "readme_figures: no $V7: the RWKV-7 pictures stay as they are (scripts/v7_state_probe.sh makes them)" >&2
fi
