#!/usr/bin/env bash
# state_dynamics.sh [MODEL] [TEXT]: how the recurrent state evolves over a text.
# Dumps every layer's state and att_k/att_v/att_wkv over the first 256 bytes of
# tinyshakespeare (sequential mode), then draws: channels x time heatmaps of state_num and of
# the normalised state num/den, line plots of a few channels, per-layer norms of num, den and
# num/den, and the effective attention of each layer. Writes results/state_dynamics/.
source "$(dirname "$0")/lib_experiment.sh"
experiment_init state_dynamics
MODEL=${1:-tests/fixtures/tiny-rwkv-4v0-660K-FP32.bin}
TEXT=${2:-$(head -c 256 tests/fixtures/tinyshakespeare.txt)}
if ! have_cmd dump; then echo "state_dynamics.sh: this build has no 'rwkvscope dump' yet" >&2; exit 1; fi
L=$("$BIN" info "$MODEL" | sed -n 's/^n_layer: *\([0-9][0-9]*\).*/\1/p' | head -n 1)
log "dumping $MODEL ($L layers) over ${#TEXT} bytes"
"$BIN" dump "$MODEL" --bytes "$TEXT" --taps 'blocks.*.state_*,blocks.*.att_k,blocks.*.att_v,blocks.*.att_wkv' \
    --mode seq -o "$OUT/dump.h5" --force
for tap in state_num state_den state_num/den; do # one line per layer
    f=${tap//\//_over_}
    "$BIN" plot "$OUT/dump.h5" --tap "blocks.0.$tap" --kind norm --force -o "$OUT/norm_$f.png"
done
for ((l = 0; l < L; l++)); do
    log "layer $l"
    "$BIN" plot "$OUT/dump.h5" --tap "blocks.$l.state_num" --kind heatmap --force -o "$OUT/heatmap_l${l}_state_num.png"
    "$BIN" plot "$OUT/dump.h5" --tap "blocks.$l.state_num/den" --kind heatmap --force -o "$OUT/heatmap_l${l}_num_over_den.png"
    "$BIN" plot "$OUT/dump.h5" --tap "blocks.$l.state_num/den" --kind lines --channels 0,1,2,3 --force -o "$OUT/lines_l${l}_num_over_den.png"
    "$BIN" analyze attention "$MODEL" --bytes "$TEXT" --layer "$l" -o "$OUT/attention_l$l.h5" --force
done
log "wrote $OUT"
