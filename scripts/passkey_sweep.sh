#!/usr/bin/env bash
# passkey_sweep.sh: train a small byte-level RWKV-4 on passkey retrieval (both prompt orders
# mixed, random depths, 3-digit keys), then sweep recall over context length x needle depth,
# with the question after the context and before it too. Defaults take about 10-15 minutes on
# 2 busy cores (the 2 x 64 model reaches ~99% at the training length after ~4000 steps);
# override with env vars (LEN, STEPS, LAYERS, EMBD, KEY, TRIALS, THREADS; RETRAIN=1). Writes results/passkey_sweep/: model.safetensors, loss.csv, recall.csv,
# recall_heatmap.png, recall_heatmap_query_first.png, recall_accuracy.png, summary.txt.
source "$(dirname "$0")/lib_experiment.sh"
experiment_init passkey_sweep
LEN=${LEN:-112}       # tokens per training example; windows of 2*LEN hold a whole example
STEPS=${STEPS:-4000}
LAYERS=${LAYERS:-2}
EMBD=${EMBD:-64}
TRIALS=${TRIALS:-20}
KEY=${KEY:-3}         # digits in the key
THREADS=${THREADS:-1} # a 2 x 64 model's products are too small to share between threads
if ! "$BIN" train --help 2>&1 | grep -q -- '--task'; then
    echo "passkey_sweep.sh: this build's 'rwkvscope train' has no --task option yet" >&2
    exit 1
fi
if [ ! -f "$OUT/model.safetensors" ] || [ -n "${RETRAIN:-}" ]; then
    log "training ${LAYERS}x${EMBD} on passkey (len $LEN, $STEPS steps)"
    "$BIN" train --task passkey --task-len "$LEN" --key-len "$KEY" --depth random --query-mixed \
        --layers "$LAYERS" --embd "$EMBD" --ctx $((2 * LEN)) --batch 16 --steps "$STEPS" \
        --lr 3e-3 --min-lr 1e-3 --warmup 30 --eval-every 200 --seed 1 --threads "$THREADS" \
        -o "$OUT/model.safetensors" --force
fi
log "recall sweep (both prompt orders)"
"$BIN" recall "$OUT/model.safetensors" --task passkey --key-len "$KEY" \
    --lengths "$LEN",$((LEN * 3 / 2)),$((2 * LEN)),$((4 * LEN)) --depths 0,0.25,0.5,0.75,1 \
    --trials "$TRIALS" --compare-prompt-order --threads "$THREADS" -o "$OUT/recall.csv" --force
# Accuracy at the training length, per prompt order (mean over depths).
awk -F, -v L="$LEN" 'NR > 1 && $3 == L { s[$2] += $7; n[$2]++ }
    END { for (o in s) printf "accuracy at training length %d, %s: %.3f\n", L, o, s[o] / n[o] }' \
    "$OUT/recall.csv" | tee "$OUT/summary.txt"
log "wrote $OUT"
