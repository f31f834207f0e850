#!/usr/bin/env bash
# demo.sh: the main job in miniature, on the shipped model (models/demo.safetensors, trained by
# scripts/train_demo_model.sh). Needs no download and no ../shared. Writes results/demo/ and
# copies the pictures the README shows into docs/img/. About 5 minutes on 2 cores.
source "$(dirname "$0")/lib_experiment.sh"
experiment_init demo
MODEL=${MODEL:-models/demo.safetensors}
TEXT=tests/fixtures/tinyshakespeare.txt
IMG=docs/img
mkdir -p "$IMG"
start=$(date +%s)
step() { log "step $1/8: $2"; }
[ -f "$MODEL" ] || { echo "demo.sh: $MODEL is missing (run scripts/train_demo_model.sh)" >&2; exit 1; }

# The held-out tenth of tinyshakespeare: the demo reads only text the model never trained on.
n=$(wc -c < "$TEXT")
tail -c +$((n * 9 / 10 + 1)) "$TEXT" > "$OUT/heldout.txt"

step 1 "model info"
"$BIN" info "$MODEL" | tee "$OUT/info.txt"

step 2 "parallel vs RNN mode on 2048 tokens, every tap"
head -c 2048 "$OUT/heldout.txt" > "$OUT/compare_input.txt"
"$BIN" compare "$MODEL" --file "$OUT/compare_input.txt" --csv "$OUT/compare.csv" > "$OUT/compare.txt"
awk -F, 'NR > 1 { tap = $1; if (!(tap in w) || $7 + 0 > w[tap]) w[tap] = $7 + 0 }
    END { for (t in w) printf "  %-16s worst scaled error %.2e\n", t, w[t] }' "$OUT/compare.csv" | sort | tee "$OUT/compare_worst.txt"

step 3 "dump the states of 100 passages"
tr '\n' ' ' < "$OUT/heldout.txt" | fold -w 128 | head -n 100 > "$OUT/passages.txt"
"$BIN" dump "$MODEL" --input "$OUT/passages.txt" --taps 'blocks.*.state_*,blocks.0.resid_in' \
    --force -o "$OUT/states.h5" 2> "$OUT/dump.log"

step 4 "memory horizon: probe token@-d from each layer's state"
"$BIN" probe horizon "$OUT/states.h5" --max-d 12 --png "$OUT/horizon.png" -o "$OUT/horizon.csv" > "$OUT/horizon.txt"
cp "$OUT/horizon.png" "$IMG/horizon.png"

step 5 "passkey sweep: length x depth, question last vs first"
"$BIN" recall "$MODEL" --task passkey --key-len 4 --lengths 128,256,512,1024 \
    --depths 0,0.25,0.5,0.75,1 --trials 8 --compare-prompt-order \
    --filler "$OUT/heldout.txt" --random-offset --seed 3 -o "$OUT/recall.csv" --force > "$OUT/recall.txt"
cp "$OUT/recall_heatmap.png" "$IMG/recall_heatmap.png"
cp "$OUT/recall_accuracy.png" "$IMG/recall_accuracy.png"

step 6 "decay spectra"
"$BIN" analyze decay "$MODEL" -o "$OUT/decay.csv" --force > "$OUT/decay.txt"
cp "$OUT/decay_halflife_sorted.png" "$IMG/decay_halflife_sorted.png"

step 7 "state dynamics of one layer"
"$BIN" plot "$OUT/states.h5" --tap blocks.1.state_num/den --kind heatmap --seq 0 \
    --title "layer 1 normalised WKV state num/den, passage 0" -o "$OUT/state_dynamics.png"
cp "$OUT/state_dynamics.png" "$IMG/state_dynamics.png"

step 8 "activation patching on one passkey example"
hay=$(tr '\n' ' ' < "$OUT/heldout.txt" | head -c 120)
clean="${hay:0:60}The pass key is 4817. Remember it. ${hay:60}What is the pass key? The pass key is 481"
corrupt="${hay:0:60}The pass key is 4813. Remember it. ${hay:60}What is the pass key? The pass key is 481"
"$BIN" patch "$MODEL" --clean "$clean" --corrupt "$corrupt" --taps 'resid_in,state_num' \
    --metric logit-diff:7,3 -o "$OUT/patch.csv" --plot "$OUT/patch" > "$OUT/patch.txt"
cp "$OUT/patch_state_num.png" "$IMG/patch_state_num.png"
cp "$OUT/patch_resid_in.png" "$IMG/patch_resid_in.png"

secs=$(( $(date +%s) - start ))
echo
echo "demo finished in ${secs}s. Artefacts in $OUT:"
for f in info.txt compare.csv compare_worst.txt states.h5 horizon.csv horizon.png recall.csv \
         recall_heatmap.png recall_heatmap_query_first.png recall_accuracy.png decay.csv \
         decay_halflife_sorted.png state_dynamics.png patch.csv patch_state_num.png patch_resid_in.png; do
    printf '  %s\n' "$OUT/$f"
done
[ -f models/demo.metrics.txt ] && { echo "model metrics (models/demo.metrics.txt):"; sed 's/^/  /' models/demo.metrics.txt; }
echo "$secs" > "$OUT/wall_seconds.txt"
