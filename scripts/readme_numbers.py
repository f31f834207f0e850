#!/usr/bin/env python3
"""readme_numbers.py [DIR]: recomputes, from a demo run's CSVs (results/demo/), every figure the
README's demo section quotes, so that each sentence can be checked against its data. Standard
library only; prints one line per claim."""
import csv, math, statistics, sys

d = sys.argv[1] if len(sys.argv) > 1 else "results/demo"
rows = lambda f: list(csv.DictReader(open(f"{d}/{f}")))

cmp_ = rows("compare.csv")
w = sorted(cmp_, key=lambda r: -float(r["max_scaled"]))
print("compare: %d taps, %d over tol; worst %s (%s) %.2e, then %s %.2e; logits %.2e" % (
    len(cmp_), sum(int(r["first_row"]) >= 0 for r in cmp_), w[0]["name"], w[0]["form"], float(w[0]["max_scaled"]),
    w[1]["name"], float(w[1]["max_scaled"]), max(float(r["max_scaled"]) for r in cmp_ if r["tap"] == "logits")))

h = rows("horizon.csv")
print("horizon: all converged %s, max iterations %d" % (all(r["converged"] == "1" for r in h), max(int(r["max_iters"]) for r in h)))
for r in h:
    if r["d"] in ("1", "5", "10", "12"):
        print("  d=%s layer %s: accuracy %.3f [%.3f, %.3f], chance %.3f, baseline %.3f, control %.3f" % (
            r["d"], r["layer"], float(r["score"]), float(r["ci_lo"]), float(r["ci_hi"]), float(r["chance"]),
            float(r["baseline"]), float(r["control"])))
sel = [float(r["selectivity"]) for r in h if int(r["d"]) <= 6]
print("  selectivity for d <= 6: %.3f .. %.3f" % (min(sel), max(sel)))

rc = rows("recall.csv")
for r in rc:
    print("recall %s %s depth %s: %s/%s = %.3f [%.3f, %.3f]" % (r["order"], r["length"], r["depth"], r["correct"], r["trials"],
                                                             float(r["accuracy"]), float(r["acc_ci_lo"]), float(r["acc_ci_hi"])))
print(open(f"{d}/recall_paired.txt").read().rstrip())

dec = rows("decay.csv")
for l in sorted({r["layer"] for r in dec}):
    hl = sorted(float(r["half_life"]) for r in dec if r["layer"] == l)
    print("decay layer %s: %.3g .. %.3g tokens (%.2f orders), median %.3g, >10: %d, >30: %d" % (
        l, hl[0], hl[-1], math.log10(hl[-1] / hl[0]), statistics.median(hl), sum(x > 10 for x in hl), sum(x > 30 for x in hl)))

grid = {}
for line in open(f"{d}/state_dynamics.csv"):
    if line.startswith("#") or not line.strip():
        continue
    c, r, _, _, z = line.strip().split(",")
    grid.setdefault(int(r), {})[int(c)] = float(z)
series = [[grid[r][c] for c in sorted(grid[r])] for r in sorted(grid)]  # one per channel, over positions
def steady(s, tol=0.05):
    rng, best, cur = (max(s) - min(s)) or 1, 1, 1
    for a, b in zip(s, s[1:]):
        cur = cur + 1 if abs(b - a) < tol * rng else 1
        best = max(best, cur)
    return best
flicker = sum(statistics.mean(abs(b - a) for a, b in zip(s, s[1:])) / ((max(s) - min(s)) or 1) > 0.1 for s in series)
print("state dynamics: %d channels; flicker (mean step > range/10): %d; steady (< 5%% of range per step) >= 20 positions: %d" % (
    len(series), flicker, sum(steady(s) >= 20 for s in series)))

p = rows("patch.csv")
def cells(tap, layer, lo, hi):
    return [r for r in p if r["tap"] == tap and int(r["layer"]) == layer and lo <= int(r["position"]) <= hi]
T = max(int(r["position"]) for r in p) + 1
run = cells("state_num", 0, 39, T - 3)
print("patch: %s pairs, T=%d; state_num layer 0 positions 39..%d: mean %.3f, intervals within [%.4f, %.4f]" % (
    p[0]["pairs"], T, T - 3, statistics.mean(float(r["recovery"]) for r in run), min(float(r["ci_lo"]) for r in run),
    max(float(r["ci_hi"]) for r in run)))
for pos in (38, T - 2, T - 1):
    r = cells("state_num", 0, pos, pos)[0]
    print("  state_num layer 0 position %d: %.4f [%.4f, %.4f]" % (pos, float(r["recovery"]), float(r["ci_lo"]), float(r["ci_hi"])))
print("  state_num layer 1: max |mean| %.4f" % max(abs(float(r["recovery"])) for r in cells("state_num", 1, 0, T)))
big = [r for r in p if r["tap"] == "resid_in" and abs(float(r["recovery"])) > 0.1]
for r in big:
    print("  resid_in layer %s position %s: %.4f [%.4f, %.4f]" % (r["layer"], r["position"], float(r["recovery"]), float(r["ci_lo"]), float(r["ci_hi"])))
print("  resid_in elsewhere: max |mean| %.4f" % max(abs(float(r["recovery"])) for r in p if r["tap"] == "resid_in" and r not in big))
print(open(f"{d}/passkey_accuracy.txt").read().rstrip(), "|", open(f"{d}/text_loss.txt").read().rstrip())
