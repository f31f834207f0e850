#!/usr/bin/env bash
# passkey_sweep.sh: train a small byte-level RWKV-4 on passkey retrieval, then sweep recall
# over context length x needle depth, with the question after the context and before it too.
# Defaults finish in minutes on 2 cores; override with env vars (LEN, STEPS, LAYERS, EMBD,
# TRIALS). Writes results/passkey_sweep/: model.safetensors, loss.csv, recall.csv,
# recall_heatmap.png, recall_heatmap_query_first.png, recall_accuracy.png, summary.txt.
source "$(dirname "$0")/lib_experiment.sh"
experiment_init passkey_sweep
LEN=${LEN:-128}       # tokens per training example; windows of 2*LEN hold a whole example
STEPS=${STEPS:-1500}
LAYERS=${LAYERS:-2}
EMBD=${EMBD:-96}
TRIALS=${TRIALS:-20}
KEY=${KEY:-3}         # digits in the key
if ! "$BIN" train --help 2>&1 | grep -q -- '--task'; then
    echo "passkey_sweep.sh: this build's 'rwkvscope train' has no --task option yet" >&2
    exit 1
fi
if [ ! -f "$OUT/model.safetensors" ] || [ -n "${RETRAIN:-}" ]; then
    log "training ${LAYERS}x${EMBD} on passkey (len $LEN, $STEPS steps)"
    "$BIN" train --task passkey --task-len "$LEN" --key-len "$KEY" --depth random \
        --layers "$LAYERS" --embd "$EMBD" --ctx $((2 * LEN)) --batch 16 --steps "$STEPS" \
        --lr 2e-3 --seed 1 -o "$OUT/model.safetensors" --force
fi
log "recall sweep (both prompt orders)"
"$BIN" recall "$OUT/model.safetensors" --task passkey --key-len "$KEY" \
    --lengths $((LEN / 2 + 48)),"$LEN",$((2 * LEN)),$((4 * LEN)) --depths 0,0.25,0.5,0.75,1 \
    --trials "$TRIALS" --compare-prompt-order -o "$OUT/recall.csv" --force
# Accuracy at the training length, per prompt order (mean over depths).
awk -F, -v L="$LEN" 'NR > 1 && $3 == L { s[$2] += $7; n[$2]++ }
    END { for (o in s) printf "accuracy at training length %d, %s: %.3f\n", L, o, s[o] / n[o] }' \
    "$OUT/recall.csv" | tee "$OUT/summary.txt"
log "wrote $OUT"
