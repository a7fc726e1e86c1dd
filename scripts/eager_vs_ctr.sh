#!/usr/bin/env bash
# Cold eager pulls side by side: `ctr images pull` and `advisor bench` with
# each advisor binary given, the order rotated round by round, the page cache
# dropped and the stargz snapshotter restarted empty before each pull (as the
# validation harness does). Prints each pull and the medians.
#
#   eval "$(lab/lab env)"
#   scripts/eager_vs_ctr.sh ROUNDS REF BIN [BIN…]
#   scripts/eager_vs_ctr.sh 6 127.0.0.1:5123/advisor-validate/app:v1 target/release/advisor target/debug/advisor
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 ROUNDS REF ADVISOR_BIN [ADVISOR_BIN…] (after: eval \"\$(lab/lab env)\")" >&2; exit 1; }
rounds=$1 ref=$2; shift 2
: "${ADVISOR_CONTAINERD:?run eval \"\$(lab/lab env)\" first}" "${ADVISOR_LAZY_RESET_CMD:?}"
ns=advisor-eager-vs-ctr
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
ctr_clean() {
  ctr -a "$ADVISOR_CONTAINERD" -n $ns images rm --sync "$ref" >/dev/null 2>&1 || true
  local blobs
  blobs=$(ctr -a "$ADVISOR_CONTAINERD" -n $ns content ls -q)
  [ -z "$blobs" ] || ctr -a "$ADVISOR_CONTAINERD" -n $ns content rm $blobs >/dev/null
}
pull_ctr() {
  ctr_clean
  eval "$ADVISOR_LAZY_RESET_CMD" >/dev/null 2>&1
  sync; echo 3 >/proc/sys/vm/drop_caches
  local t0 t1 log
  t0=$(date +%s.%N)
  log=$(ctr -a "$ADVISOR_CONTAINERD" -n $ns images pull --plain-http "$ref" 2>&1)
  t1=$(date +%s.%N)
  # ctr prints "done: <unpack time>" after unpacking.
  echo "ctr $(echo "$t1 - $t0" | bc) - $(awk '/^done:/ { sub(/s$/, "", $2); print $2 }' <<<"$log")" >>"$out/pulls"
  ctr_clean
}
pull_bench() { # $1: binary
  eval "$ADVISOR_LAZY_RESET_CMD" >/dev/null 2>&1
  "$1" bench --image "$ref" --snapshotter overlayfs -r 1 --format json -q >"$out/bench.json"
  python3 - "$1" "$out/bench.json" >>"$out/pulls" <<'PY'
import json, sys
p = json.load(open(sys.argv[2]))["runs"][0]["phases"]
print(sys.argv[1], p["resolve"] + p["fetch"] + p["unpack"], p["fetch"], p["unpack"])
PY
}
pullers=(ctr "$@")
for ((i = 0; i < rounds; i++)); do
  for ((k = 0; k < ${#pullers[@]}; k++)); do
    who=${pullers[$(((i + k) % ${#pullers[@]}))]}
    if [ "$who" = ctr ]; then pull_ctr; else pull_bench "$who"; fi
    tail -n 1 "$out/pulls"
  done
done
python3 - "$out/pulls" <<'PY'
import statistics, sys
by = {}
for line in open(sys.argv[1]):
    who, total, fetch, unpack = line.split()
    by.setdefault(who, []).append((float(total), None if fetch == "-" else float(fetch), float(unpack)))
print("medians over %d pulls each (total = resolve + fetch + unpack; ctr's includes starting ctr):" % len(next(iter(by.values()))))
ctr = statistics.median(t for t, _, _ in by["ctr"])
for who, rs in by.items():
    t = statistics.median(r[0] for r in rs)
    f = [r[1] for r in rs if r[1] is not None]
    u = statistics.median(r[2] for r in rs)
    print("  %-28s total %.2f s (%+.1f %% vs ctr)  fetch %s  unpack %.2f s" % (
        who, t, 100 * (t / ctr - 1), "%.2f s" % statistics.median(f) if f else "-", u))
PY
