#!/usr/bin/env bash
# demo.sh: the main job in miniature, on the shipped model (models/demo.safetensors, trained by
# scripts/train_demo_model.sh). Needs no download and no ../shared. Writes results/demo/ only
# (no tracked file changes; scripts/readme_figures.sh copies the README's pictures into
# docs/img/). About 2 minutes of CPU; 2-5 minutes wall on 2 cores, with the load (results/demo/
# wall_seconds.txt has each run's).
source "$(dirname "$0")/lib_experiment.sh"
experiment_init demo
MODEL=${MODEL:-models/demo.safetensors}
TEXT=tests/fixtures/tinyshakespeare.txt
COMPARE_TOKENS=20000 # long enough that a drift between the modes would show
RECALL_TRIALS=80     # x 5 depths = 400 examples per (length, prompt order): tells 50% from 60%
PATCH_PAIRS=32
start=$(date +%s)
# The demo changes no tracked file: the git status before and after must be the same.
tracked() { { git -C "$ROOT" status --porcelain --untracked-files=no; git -C "$ROOT" diff HEAD | md5sum; } 2>/dev/null || true; }
before=$(tracked)
step() { log "step $1/8: $2"; }
[ -f "$MODEL" ] || { echo "demo.sh: $MODEL is missing (run scripts/train_demo_model.sh)" >&2; exit 1; }

# The held-out tenth of tinyshakespeare: the demo reads only text the model never trained on.
n=$(wc -c < "$TEXT")
tail -c +$((n * 9 / 10 + 1)) "$TEXT" > "$OUT/heldout.txt"

step 1 "model info"
"$BIN" info "$MODEL" | tee "$OUT/info.txt"

step 2 "parallel vs RNN mode on $COMPARE_TOKENS tokens, every tap"
head -c "$COMPARE_TOKENS" "$OUT/heldout.txt" > "$OUT/compare_input.txt"
"$BIN" compare "$MODEL" --file "$OUT/compare_input.txt" --csv "$OUT/compare.csv" --force > "$OUT/compare.txt"
awk -F, 'NR > 1 { tap = $1; if (!(tap in w) || $7 + 0 > w[tap]) w[tap] = $7 + 0 }
    END { for (t in w) printf "  %-16s worst scaled error %.2e\n", t, w[t] }' "$OUT/compare.csv" | sort | tee "$OUT/compare_worst.txt"

step 3 "dump the states of 100 passages"
# (sed, not head: head would close the pipe early and pipefail would stop the script)
tr '\n' ' ' < "$OUT/heldout.txt" | fold -w 128 | sed -n '1,100p' > "$OUT/passages.txt"
"$BIN" dump "$MODEL" --input "$OUT/passages.txt" --taps 'blocks.*.state_*,blocks.0.resid_in' \
    --force -o "$OUT/states.h5" 2> "$OUT/dump.log"

step 4 "memory horizon: probe token@-d from each layer's state"
"$BIN" probe horizon "$OUT/states.h5" --max-d 12 --force -o "$OUT/horizon.csv" 2> "$OUT/horizon.log"

step 5 "passkey sweep: length x depth, question last vs first"
"$BIN" recall "$MODEL" --task passkey --key-len 3 --lengths 112,224,448,896 \
    --depths 0,0.25,0.5,0.75,1 --trials "$RECALL_TRIALS" --compare-prompt-order \
    --filler "$OUT/heldout.txt" --random-offset --seed 3 -o "$OUT/recall.csv" --force 2> "$OUT/recall.log"
grep 'McNemar' "$OUT/recall.log" | sed 's/^recall: //' | tee "$OUT/recall_paired.txt"

step 6 "decay spectra"
"$BIN" analyze decay "$MODEL" -o "$OUT/decay.csv" --force > "$OUT/decay.txt"

step 7 "state dynamics of one layer"
"$BIN" plot "$OUT/states.h5" --tap blocks.1.state_num/den --kind heatmap --seq 0 \
    --title "layer 1 normalised WKV state num/den, passage 0" --force -o "$OUT/state_dynamics.png"

step 8 "activation patching over $PATCH_PAIRS passkey prompt pairs"
# Pair i: passage i as haystack, a seeded random 3-digit key; the corrupt prompt changes the
# key's last digit. Metric: logit(clean digit) - logit(corrupt digit) after "...is <2 digits>".
RANDOM=8
for i in $(seq 1 "$PATCH_PAIRS"); do
    hay=$(sed -n "${i}p" "$OUT/passages.txt")
    key=$((RANDOM % 10))$((RANDOM % 10))$((RANDOM % 10))
    d=${key:2:1} x=$(( (${key:2:1} + 1 + RANDOM % 9) % 10 ))
    pre="${hay:0:20}The pass key is " post=". Remember it. ${hay:20:18}What is the pass key? The pass key is ${key:0:2}"
    printf '%s\t%s\tlogit-diff:%d,%d\n' "$pre$key$post" "$pre${key:0:2}$x$post" $((48 + d)) $((48 + x))
done > "$OUT/patch_pairs.tsv"
"$BIN" patch "$MODEL" --pairs "$OUT/patch_pairs.tsv" --taps 'resid_in,state_num' \
    --force -o "$OUT/patch.csv" --plot "$OUT/patch" 2> "$OUT/patch.log"

log "figures: held-out text loss and passkey accuracy at the training length (112)"
"$BIN" eval "$MODEL" --file "$OUT/heldout.txt" --ctx 224 > "$OUT/text_loss.txt"
awk -F, 'NR > 1 && $3 == 112 { c += $6; n += $5 } END { printf "passkey accuracy at length 112: %.3f (%d examples, both prompt orders)\n", c / n, n }' \
    "$OUT/recall.csv" > "$OUT/passkey_accuracy.txt"
bash scripts/check_demo.sh "$OUT"
if [ "$(tracked)" != "$before" ]; then
    echo "demo.sh: the demo changed tracked files:" >&2; tracked >&2; exit 1
fi

secs=$(( $(date +%s) - start ))
echo
echo "demo finished in ${secs}s. Artefacts in $OUT:"
for f in info.txt text_loss.txt passkey_accuracy.txt compare.csv compare_worst.txt states.h5 horizon.csv horizon-plot.png recall.csv \
         recall_examples.csv recall_paired.txt recall_heatmap.png recall_heatmap_query_first.png recall_accuracy.png decay.csv \
         decay_halflife_sorted.png state_dynamics.png patch_pairs.tsv patch.csv patch_state_num.png patch_resid_in.png; do
    printf '  %s\n' "$OUT/$f"
done
echo "figures of this run:"
echo "  held-out text loss: $(cat "$OUT/text_loss.txt")   (target <= 2.2 nats/byte)"
echo "  $(cat "$OUT/passkey_accuracy.txt")   (target >= 0.9)"
echo "$secs" > "$OUT/wall_seconds.txt"
echo "(the README's pictures in docs/img/ are the committed copies; scripts/readme_figures.sh refreshes them)"
