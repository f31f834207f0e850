#!/usr/bin/env bash
# check_demo.sh DIR: every artefact of scripts/demo.sh exists, each PNG is a real non-empty
# PNG, and each CSV has the expected header. Exits non-zero naming what is wrong.
set -euo pipefail
dir=${1:-results/demo}
fail=0
bad() { echo "check_demo: $*" >&2; fail=1; }
for png in horizon-plot recall_heatmap recall_heatmap_query_first recall_accuracy \
           decay_halflife_sorted state_dynamics patch_state_num patch_resid_in; do
    f="$dir/$png.png"
    if [ ! -s "$f" ]; then bad "$f is missing or empty"; continue; fi
    [ "$(head -c 8 "$f" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] || bad "$f is not a PNG"
    [ "$(stat -c %s "$f")" -gt 1000 ] || bad "$f is suspiciously small"
done
expect() { # file, header
    [ -s "$dir/$1" ] || { bad "$dir/$1 is missing"; return; }
    [ "$(head -n 1 "$dir/$1")" = "$2" ] || bad "$dir/$1: header is '$(head -n 1 "$dir/$1")', expected '$2'"
    [ "$(wc -l < "$dir/$1")" -gt 1 ] || bad "$dir/$1 has no rows"
}
expect compare.csv "tap,layer,name,width,max_abs,max_rel,max_scaled,first_row,first_seq,first_pos,first_channel,form"
expect recall.csv "task,order,length,depth,trials,correct,accuracy,logprob,token_logprob,token_accuracy,acc_ci_lo,acc_ci_hi"
expect recall_examples.csv "task,order,length,depth,trial,correct,logprob,answer_tokens,tokens_correct"
expect decay.csv "layer,channel,time_decay,w,retention,half_life,time_first"
expect patch.csv "tap,layer,position,pairs,recovery,ci_lo,ci_hi,sd"
expect horizon.csv "d,layer,tap,label,probe,rows,sequences,classes,metric,score,ci_lo,ci_hi,macro_f1,f1_ci_lo,f1_ci_hi,chance,control,selectivity,baseline,lambda,max_iters,converged,control_chance"
h5ls "$dir/states.h5/sequences/offsets" >/dev/null 2>&1 || bad "$dir/states.h5 has no /sequences/offsets"
[ $fail -eq 0 ] && echo "check_demo: all artefacts present and well-formed"
exit $fail
