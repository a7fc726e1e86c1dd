#!/usr/bin/env python3
"""Merge calibration runs files of one node into one, for `advisor calibrate
--refit --runs MERGED -o PROFILE` (a fit over several calibrations).

usage: scripts/merge_runs.py OUT.jsonl RUNS.jsonl [RUNS.jsonl ...]
The node record is kept from the first file (later ones measured the same
host's round trip again); an image record must be the same in every file that
has it (the same builds: a record names its digests and file table), else the
merge is refused. Each file's runs get repeats above every earlier file's, and
keys to match, so no two runs share a key (a refit keeps one run per key).
OUT is written beside and renamed into place: a refused merge leaves it as it was.
"""
import json
import os
import sys


def merge(paths):
    records, host, lines, runs, offset = {}, None, [], 0, 0
    for path in paths:
        top = offset
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
                    d["repeat"] += offset
                    d["key"] = f"{d['key'].rsplit('/', 1)[0]}/{d['repeat']}"
                    top = max(top, d["repeat"] + 1)
                    runs += 1
                elif kind == "node":
                    if host is not None and d.get("hostname") != host:
                        sys.exit(f"{path}:{n}: node {d.get('hostname')!r}, not {host!r}: one node's runs only")
                    if host is not None:
                        continue
                    host = d.get("hostname")
                else:
                    ident = (kind, d.get("name"))
                    if ident in records:
                        if records[ident] != d:
                            sys.exit(f"{path}:{n}: {kind} {d.get('name')!r} differs from the first file's: not the same build")
                        continue
                    records[ident] = d
                lines.append(json.dumps(d))
        offset = top
    return lines, runs


def main(out, paths):
    lines, runs = merge(paths)
    tmp = out + ".part"
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, out)
    print(f"{out}: {runs} runs from {len(paths)} file(s)")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2:])
