#!/bin/sh
# Runs every Check runner given, prints each one's summary, and a total line.
pass=0; fail=0; failed=""
for t in "$@"; do
    out=$("$t" 2>&1); rc=$?
    summary=$(echo "$out" | grep -E '^[0-9]+%: Checks' | tail -n 1)
    echo "$(basename "$t"): ${summary:-no summary (exit $rc)}"
    c=0; f=1
    if [ -n "$summary" ]; then
        c=$(echo "$summary" | sed 's/.*Checks: \([0-9]*\).*/\1/')
        f=$(echo "$summary" | sed 's/.*Failures: \([0-9]*\), Errors: \([0-9]*\).*/\1 + \2/')
        f=$(($f))
    fi
    if [ "$rc" -ne 0 ] || [ "$f" -ne 0 ]; then
        echo "$out" | grep -vE '^[0-9]+%: Checks' | head -40 | sed 's/^/    /'
        failed="$failed $(basename "$t")"
        [ "$f" -eq 0 ] && f=1
    fi
    pass=$((pass + (c > f ? c - f : 0))); fail=$((fail + f))
done
echo "tests: $pass passed, $fail failed"
[ -z "$failed" ] || { echo "failing:$failed"; exit 1; }
