#!/usr/bin/env python3
"""Compare fleet measurements (examples/fleet JSON) with `advisor plan` JSON.

usage: scripts/fleet_compare.py [--whole] PLAN_PREFIX MEASURED_PREFIX [ROUND...]
  PLAN_PREFIX-N.json      `advisor --format json plan … --nodes N` output
  MEASURED_PREFIX R-STRATEGY-N.json   `examples/fleet --out` reports, rounds R
Prints a markdown table: per strategy and fleet size, the median and the last
node's ready and done (medians over rounds, each round's value listed), the
plan's, the errors, and the registry's bytes and requests; with --whole also
when the lazy nodes' images were whole (the registry's last byte), counted in
the errors.
"""
import glob, json, re, statistics, sys

def med(xs):
    return statistics.median(xs)

def main():
    args = sys.argv[1:]
    whole = "--whole" in args
    plan_prefix, meas_prefix, *rounds = [a for a in args if a != "--whole"]
    rows = []
    errs = []
    sizes = sorted({int(m.group(1)) for f in glob.glob(f"{plan_prefix}-*.json")
                    for m in [re.search(r"-(\d+)\.json$", f)] if m})
    print("| strategy | nodes | median node ready: planned / measured (rounds) | median node done: planned / measured | last node done: planned / measured | "
          + ("images whole: planned / measured | " if whole else "")
          + "registry MB: planned / measured | requests (GET, HEAD): planned / measured |")
    print("|---|---|---|---|---|" + ("---|" if whole else "") + "---|---|")
    for s in ["eager", "lazy"]:
        for n in sizes:
            plan = json.load(open(f"{plan_prefix}-{n}.json"))["plan"]
            sp = next(x for x in plan["strategies"] if x["strategy"] == s)
            meas = []
            for r in rounds:
                try:
                    meas.append(json.load(open(f"{meas_prefix}{r}-{s}-{n}.json")))
                except FileNotFoundError:
                    pass
            if not meas:
                continue
            ready = [med([x["ready_s"] for x in m["per_node"]]) for m in meas]
            done = [med([x["done_s"] for x in m["per_node"]]) for m in meas]
            last = [max(x["done_s"] for x in m["per_node"]) for m in meas]
            mb = [m["registry"]["bytes"] / 1e6 for m in meas]
            # GETs and HEADs, as plan counts requests.
            gets = [(m["registry"].get("gets") or 0) + ((m["registry"].get("access_log") or {}).get("heads") or 0)
                    for m in meas]
            def cell(p, xs, track=True):
                m = med(xs)
                e = (p - m) / max(m, 1.0)
                if track:
                    errs.append(abs(e))
                runs = ", ".join(f"{x:.2f}" for x in xs)
                return f"{p:.2f} / {m:.2f} s ({runs}) {e:+.0%}"
            last_byte = [m["registry"]["last_byte_s"] for m in meas]
            whole_cell = ""
            if whole:
                whole_cell = (cell(sp["image_whole"]["value"], last_byte) if sp.get("image_whole") else "—") + " | "
            pb = sp["egress"]["bytes"] / 1e6
            mbm = med(mb)
            print(f"| {s} | {n} | {cell(sp['ready']['p50']['value'], ready)} | {cell(sp['done']['p50']['value'], done)} | "
                  f"{cell(sp['done']['all']['value'], last)} | {whole_cell}{pb:.0f} / {mbm:.0f} ({(pb-mbm)/mbm:+.1%}) | "
                  f"{sp['egress']['requests']} / {med(gets):.0f} |")
    if errs:
        errs.sort()
        print(f"\n{len(errs)} times: median |error| {med(errs):.1%}, worst {errs[-1]:.1%}")

main()
