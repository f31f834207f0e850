#!/usr/bin/env bash
# readme_figures.sh: copies the pictures the README shows from a demo run (results/demo/, made
# by `make demo`) into docs/img/, the committed copies. Run it on purpose after a demo whose
# figures the README should show (`make readme-figures`); the demo itself never touches docs/.
set -euo pipefail
cd "$(dirname "$0")/.."
DEMO=${1:-results/demo}
IMG=docs/img
for pair in horizon-plot:horizon recall_heatmap:recall_heatmap recall_accuracy:recall_accuracy \
            decay_halflife_sorted:decay_halflife_sorted state_dynamics:state_dynamics \
            patch_state_num:patch_state_num patch_resid_in:patch_resid_in; do
    src="$DEMO/${pair%%:*}.png" dst="$IMG/${pair##*:}.png"
    [ -s "$src" ] || { echo "readme_figures: $src is missing (run make demo first)" >&2; exit 1; }
    cp "$src" "$dst"
    echo "  $src -> $dst"
done
