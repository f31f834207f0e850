#!/usr/bin/env bash
# mqar_vs_state_size.sh: multi-query associative recall accuracy against the model width,
# i.e. against the size of the recurrent state (5 * n_layer * n_embd numbers). Trains one
# small model per width on MQAR (vocab 32, 4 pairs, length 32), scores 200 fresh examples,
# and plots per-query (token) and whole-example accuracy vs state size. About 5 minutes on 2
# cores. Writes results/mqar_vs_state_size/ (accuracy.csv, accuracy.png, models, recall CSVs).
source "$(dirname "$0")/lib_experiment.sh"
experiment_init mqar_vs_state_size
WIDTHS=${WIDTHS:-"16 32 64 128"}
LAYERS=${LAYERS:-2}
STEPS=${STEPS:-1500}
LEN=${LEN:-32}
PAIRS=${PAIRS:-4}
VOCAB=${VOCAB:-32}
THREADS=${THREADS:-1}
if ! "$BIN" train --help 2>&1 | grep -q -- '--task'; then
    echo "mqar_vs_state_size.sh: this build's 'rwkvscope train' has no --task option yet" >&2
    exit 1
fi
echo "n_embd,state_size,accuracy,token_accuracy,token_logprob" > "$OUT/accuracy.csv"
for C in $WIDTHS; do
    log "n_embd $C: training"
    "$BIN" train --task mqar --task-len "$LEN" --vocab "$VOCAB" --pairs "$PAIRS" \
        --layers "$LAYERS" --embd "$C" --ctx $((2 * LEN)) --batch 16 --steps "$STEPS" \
        --lr 3e-3 --min-lr 1e-3 --warmup 30 --seed 1 --threads "$THREADS" \
        -o "$OUT/model_c$C.safetensors" --force
    "$BIN" recall "$OUT/model_c$C.safetensors" --task mqar --vocab "$VOCAB" --pairs "$PAIRS" \
        --lengths "$LEN" --trials 200 --seed 7 --threads "$THREADS" --no-plots \
        -o "$OUT/recall_c$C.csv" --force
    awk -F, -v C="$C" -v L="$LAYERS" 'NR == 2 { printf "%d,%d,%s,%s,%s\n", C, 5 * L * C, $7, $10, $9 }' \
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
set ylabel 'accuracy'
set key top left
set logscale x 2
set yrange [0:1]
set grid
plot '$OUT/accuracy.csv' every ::1 using 2:4 with linespoints lw 2 title 'per query (token)', \\
     '' every ::1 using 2:3 with linespoints lw 2 title 'all queries of an example', \\
     1.0 / ($VOCAB / 2) with lines dt 2 title 'chance per query'
GP
fi
log "wrote $OUT"
