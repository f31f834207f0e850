#!/usr/bin/env bash
# mqar_vs_state_size.sh: multi-query associative recall accuracy against the model width,
# i.e. against the size of the recurrent state (5 * n_layer * n_embd numbers). Trains one
# small model per width on MQAR (vocab 64, 8 pairs, length 64), scores held-out examples,
# and plots accuracy vs state size. Writes results/mqar_vs_state_size/.
source "$(dirname "$0")/lib_experiment.sh"
experiment_init mqar_vs_state_size
WIDTHS=${WIDTHS:-"16 32 64 128"}
LAYERS=${LAYERS:-2}
STEPS=${STEPS:-800}
LEN=${LEN:-64}
PAIRS=${PAIRS:-8}
VOCAB=${VOCAB:-64}
if ! "$BIN" train --help 2>&1 | grep -q -- '--task'; then
    echo "mqar_vs_state_size.sh: this build's 'rwkvscope train' has no --task option yet" >&2
    exit 1
fi
echo "n_embd,state_size,accuracy,logprob" > "$OUT/accuracy.csv"
for C in $WIDTHS; do
    log "n_embd $C: training"
    "$BIN" train --task mqar --task-len "$LEN" --vocab "$VOCAB" --pairs "$PAIRS" \
        --layers "$LAYERS" --embd "$C" --ctx $((2 * LEN)) --batch 16 --steps "$STEPS" \
        --lr 3e-3 --seed 1 -o "$OUT/model_c$C.safetensors" --force
    "$BIN" recall "$OUT/model_c$C.safetensors" --task mqar --vocab "$VOCAB" --pairs "$PAIRS" \
        --lengths "$LEN" --trials 100 --seed 7 --no-plots -o "$OUT/recall_c$C.csv" --force
    awk -F, -v C="$C" -v L="$LAYERS" 'NR == 2 { printf "%d,%d,%s,%s\n", C, 5 * L * C, $7, $8 }' \
        "$OUT/recall_c$C.csv" >> "$OUT/accuracy.csv"
done
cat "$OUT/accuracy.csv"
if command -v gnuplot >/dev/null; then
    gnuplot <<GP
set terminal pngcairo size 800,600 noenhanced
set output '$OUT/accuracy.png'
set datafile separator ','
set title 'MQAR accuracy vs state size ($PAIRS pairs, length $LEN, $LAYERS layers)'
set xlabel 'state size (5 x n_layer x n_embd numbers)'
set ylabel 'exact-match accuracy'
set logscale x 2
set yrange [0:1]
set grid
plot '$OUT/accuracy.csv' every ::1 using 2:3 with linespoints lw 2 title 'accuracy'
GP
fi
log "wrote $OUT"
