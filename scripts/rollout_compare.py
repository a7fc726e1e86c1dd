#!/usr/bin/env python3
"""Compare fleet rounds with a rollout shape against `advisor plan`.

usage: scripts/rollout_compare.py LABEL PLAN.json ROUND.json [ROUND.json ...]
  PLAN.json    `advisor --format json plan … --nodes N --waves K` (or --max-surge)
  ROUND.json   `examples/fleet --out` reports of the same shape, any strategies
Prints markdown rows: per strategy, the moment the k-th pod was ready and done
(k = ceil(N x share): plan's nearest-rank p50, p95, all), planned / measured
(the median over rounds, each round listed), and the registry's bytes.
"""
import json, math, statistics, sys


def kth(values, share):
    v = sorted(values)
    return v[max(1, min(len(v), math.ceil(len(v) * share))) - 1]


def cell(planned, measured, errs):
    m = statistics.median(measured)
    e = (planned - m) / max(m, 1.0)
    errs.append(abs(e))
    runs = ", ".join(f"{x:.2f}" for x in measured)
    return f"{planned:.2f} / {m:.2f} s ({runs}) {e:+.0%}"


def main():
    label, plan_file, *round_files = sys.argv[1:]
    plan = json.load(open(plan_file))["plan"]
    rounds = [json.load(open(f)) for f in round_files]
    errs = []
    for sp in plan["strategies"]:
        s = sp["strategy"]
        mine = [r for r in rounds if r["strategy"] == s]
        if not mine:
            continue
        cells = []
        for what, key in [("ready", "ready_s"), ("done", "done_s")]:
            for share, p in [(0.5, "p50"), (1.0, "all")]:
                measured = [kth([x[key] for x in r["per_node"]], share) for r in mine]
                cells.append(cell(sp[what][p]["value"], measured, errs))
        pb = sp["egress"]["bytes"] / 1e6
        mb = statistics.median(r["registry"]["bytes"] / 1e6 for r in mine)
        starts = "; ".join(
            ", ".join(f"{x['start_s']:.1f}" for x in r["per_node"]) for r in mine
        )
        print(f"| {s} | {label} | " + " | ".join(cells)
              + f" | {pb:.0f} / {mb:.0f} ({(pb - mb) / mb:+.1%}) | {starts} |")
    if errs:
        errs.sort()
        print(f"\n{len(errs)} times: median |error| {statistics.median(errs):.1%}, worst {errs[-1]:.1%}")


main()
