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
# (sed, not head: head would close the pipe early and pipefail would stop the script)
tr '\n' ' ' < "$OUT/heldout.txt" | fold -w 128 | sed -n '1,100p' > "$OUT/passages.txt"
"$BIN" dump "$MODEL" --input "$OUT/passages.txt" --taps 'blocks.*.state_*,blocks.0.resid_in' \
    --force -o "$OUT/states.h5" 2> "$OUT/dump.log"

step 4 "memory horizon: probe token@-d from each layer's state"
"$BIN" probe horizon "$OUT/states.h5" --max-d 12 -o "$OUT/horizon.csv" > "$OUT/horizon.txt"
cp "$OUT/horizon-plot.png" "$IMG/horizon.png"

step 5 "passkey sweep: length x depth, question last vs first"
"$BIN" recall "$MODEL" --task passkey --key-len 3 --lengths 112,224,448,896 \
    --depths 0,0.25,0.5,0.75,1 --trials 16 --compare-prompt-order \
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
hay=$(sed -n '1p' "$OUT/passages.txt")
clean="${hay:0:20}The pass key is 817. Remember it. ${hay:20:18}What is the pass key? The pass key is 81"
corrupt="${hay:0:20}The pass key is 813. Remember it. ${hay:20:18}What is the pass key? The pass key is 81"
"$BIN" patch "$MODEL" --clean "$clean" --corrupt "$corrupt" --taps 'resid_in,state_num' \
    --metric logit-diff:55,51 -o "$OUT/patch.csv" --plot "$OUT/patch" > "$OUT/patch.txt"
cp "$OUT/patch_state_num.png" "$IMG/patch_state_num.png"
cp "$OUT/patch_resid_in.png" "$IMG/patch_resid_in.png"

log "figures: held-out text loss and passkey accuracy at the training length (112)"
"$BIN" eval "$MODEL" --file "$OUT/heldout.txt" --ctx 224 > "$OUT/text_loss.txt"
awk -F, 'NR > 1 && $3 == 112 { c += $6; n += $5 } END { printf "passkey accuracy at length 112: %.3f (%d examples, both prompt orders)\n", c / n, n }' \
    "$OUT/recall.csv" > "$OUT/passkey_accuracy.txt"
bash scripts/check_demo.sh "$OUT"

secs=$(( $(date +%s) - start ))
echo
echo "demo finished in ${secs}s. Artefacts in $OUT:"
for f in info.txt text_loss.txt passkey_accuracy.txt compare.csv compare_worst.txt states.h5 horizon.csv horizon-plot.png recall.csv \
         recall_heatmap.png recall_heatmap_query_first.png recall_accuracy.png decay.csv \
         decay_halflife_sorted.png state_dynamics.png patch.csv patch_state_num.png patch_resid_in.png; do
    printf '  %s\n' "$OUT/$f"
done
echo "figures of this run:"
echo "  held-out text loss: $(cat "$OUT/text_loss.txt")   (target <= 2.2 nats/byte)"
echo "  $(cat "$OUT/passkey_accuracy.txt")   (target >= 0.9)"
echo "$secs" > "$OUT/wall_seconds.txt"
