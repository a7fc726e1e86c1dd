#!/usr/bin/env python3
"""Merge calibration runs files of one node into one, for `advisor calibrate
--refit --runs MERGED -o PROFILE` (a fit over several calibrations).

usage: scripts/merge_runs.py OUT.jsonl RUNS.jsonl [RUNS.jsonl ...]
The node and image records are kept from the first file that has them (the
images must be the same builds: a calibration image's records name its
digests); every run of the k-th file gets repeat + 10·k and a key to match,
so runs of different files never share a key (a refit keeps one run per key).
Refuses files whose node records name different hosts.
"""
import json
import sys


def main(out, paths):
    seen, host, lines = set(), None, []
    for k, path in enumerate(paths):
        with open(path) as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    d = json.loads(line)
                except json.JSONDecodeError as e:
                    sys.exit(f"{path}:{n}: not JSON ({e})")
                kind = d.get("kind")
                if kind == "run":
                    d["repeat"] += 10 * k
                    d["key"] = f"{d['key'].rsplit('/', 1)[0]}/{d['repeat']}"
                else:
                    if kind == "node":
                        if host is not None and d.get("hostname") != host:
                            sys.exit(f"{path}: node {d.get('hostname')!r}, not {host!r}: one node's runs only")
                        host = d.get("hostname")
                    ident = (kind, d.get("name"))
                    if ident in seen:
                        continue
                    seen.add(ident)
                lines.append(json.dumps(d))
    tmp = out + ".part"
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    import os
    os.replace(tmp, out)
    runs = sum(1 for l in lines if json.loads(l).get("kind") == "run")
    print(f"{out}: {runs} runs from {len(paths)} file(s)")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2:])
