#!/usr/bin/env bash
# train_demo_model.sh: the recipe of the shipped demo model, models/demo.safetensors.
# A 2 x 128 byte-level RWKV-4 trained on passkey retrieval whose haystack is Shakespeare:
# every example hides a 3-digit key at a random depth in 112 bytes of tinyshakespeare (the
# first 90% of it), with the question after the text or before and after it. The answer
# tokens carry loss weight 1 and every other token TEXT_WEIGHT, so the model learns both
# to write text and to recall. Seeded, one thread: rerunning it on the same machine
# reproduces the file bit for bit. About 12 minutes on a quiet core.
# Writes models/demo.safetensors, models/demo.loss.csv and models/demo.metrics.txt
# (held-out text loss in nats/byte and passkey accuracy at the training length).
source "$(dirname "$0")/lib_experiment.sh"
STEPS=${STEPS:-4000}
TEXT_WEIGHT=${TEXT_WEIGHT:-0.02}
LEN=112                      # bytes per training example = the training length
KEY=3                        # digits in the key
THREADS=1                    # fixed: the reduction order depends on the thread count
TEXT=tests/fixtures/tinyshakespeare.txt
DIR=${DIR:-models}          # DIR=/tmp/x checks reproducibility without touching models/
mkdir -p "$DIR"
MODEL=$DIR/demo.safetensors
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
n=$(wc -c < "$TEXT")
head -c $((n * 9 / 10)) "$TEXT" > "$work/train.txt"
tail -c +$((n * 9 / 10 + 1)) "$TEXT" > "$work/val.txt"
log "training 2x128 on passkey-in-Shakespeare ($STEPS steps, text weight $TEXT_WEIGHT)"
"$BIN" train --task passkey --task-len $LEN --key-len $KEY --depth random --query-mixed \
    --filler "$work/train.txt" --random-offset --text-weight "$TEXT_WEIGHT" \
    --layers 2 --embd 128 --ctx $((2 * LEN)) --batch 16 --steps "$STEPS" \
    --lr 3e-3 --min-lr 1e-3 --warmup 30 --eval-every 250 --seed 1 --threads $THREADS \
    -o "$MODEL" --log "$DIR/demo.loss.csv" --force
rm -f "$MODEL.optim.h5" "${MODEL%.safetensors}.optim.h5"
log "held-out text loss (last 10% of tinyshakespeare, windows of $((2 * LEN)) bytes)"
text=$("$BIN" eval "$MODEL" --file "$work/val.txt" --ctx $((2 * LEN)) --threads $THREADS)
log "passkey accuracy at the training length (haystack from the held-out text)"
"$BIN" recall "$MODEL" --task passkey --key-len $KEY --lengths $LEN --depths 0,0.25,0.5,0.75,1 \
    --trials 20 --compare-prompt-order --filler "$work/val.txt" --random-offset --seed 7 \
    --no-plots --threads $THREADS -o "$work/recall.csv" --force
acc=$(awk -F, 'NR > 1 { s += $6; n += $5 } END { printf "%.3f", s / n }' "$work/recall.csv")
{
    echo "model: models/demo.safetensors (2 x 128, byte vocab, trained by scripts/train_demo_model.sh)"
    echo "text_val: $text"
    echo "passkey_accuracy_at_$LEN: $acc (both prompt orders, depths 0..1, 200 examples)"
    awk -F, 'NR > 1 { s[$2] += $6; n[$2] += $5 } END { for (o in s) printf "passkey_accuracy_%s: %.3f\n", o, s[o] / n[o] }' "$work/recall.csv"
} | tee "$DIR/demo.metrics.txt"
