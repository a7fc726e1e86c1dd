#!/bin/bash
# offline-outputs.sh BIN OUTDIR: every offline output of advisor (stdout, stderr, exit code, files
# written) for refactors that must keep them byte-identical (issue 18). Run from the repo root;
# compare two builds: scripts/offline-outputs.sh OLD_BIN a; scripts/offline-outputs.sh NEW_BIN b; diff -r a b
BIN=$1; OUT=$2
rm -rf "$OUT"; mkdir -p "$OUT"
W=$(mktemp -d /tmp/outputs-work.XXXX)
run() { # name args...
  local name=$1; shift
  "$BIN" "$@" >"$OUT/$name.out" 2>"$OUT/$name.err"; echo $? >"$OUT/$name.rc"
  sed -i "s#$W#WORK#g" "$OUT/$name.out" "$OUT/$name.err"
}
FX=tests/fixtures/trace
run advise advise
run advise-json --format json advise
run advise-plot advise --plot "$W/plot.svg" --prefetch-list "$W/prefetch.txt"
cp "$W/plot.svg" "$OUT/advise-plot.svg"; cp "$W/prefetch.txt" "$OUT/advise-prefetch.txt"
run advise-trace advise --trace traces/llm-serving.jsonl --files models/examples/llm-serving.files.json
run advise-trace-json --format json advise --trace traces/llm-serving.jsonl --files models/examples/llm-serving.files.json --no-background-fetch
run advise-err advise --trace traces/llm-serving.jsonl
run advise-badprofile advise --profile /nonexistent.json
run import-strace trace import --from strace --root /tmp/tracefix --ready-line ready -o "$W/full.jsonl" $FX/busybox-full.strace
cp "$W/full.jsonl" "$OUT/full.jsonl"
run import-strace-json --format json trace import --from strace -o "$W/min.jsonl" $FX/busybox-minimal.strace
cp "$W/min.jsonl" "$OUT/min.jsonl"
run analyze trace analyze --files $FX/trace-fixture.files.json --trace "$W/full.jsonl"
run analyze-json --format json trace analyze --files $FX/trace-fixture.files.json --trace "$W/full.jsonl"
run analyze-llm trace analyze --files models/examples/llm-serving.files.json --trace traces/llm-serving.jsonl
run analyze-llm-json --format json trace analyze --files models/examples/llm-serving.files.json --trace traces/llm-serving.jsonl --single-range
run synth trace synth --files $FX/trace-fixture.files.json --working-set 50% --pattern random --seed 7 --read-size 64KiB --ready-at 0.5 -o "$W/synth.jsonl"
cp "$W/synth.jsonl" "$OUT/synth.jsonl"
run synth-json --format json trace synth --files models/examples/llm-serving.files.json --working-set 20% --pattern sequential --seed 3 -o "$W/synth2.jsonl"
cp "$W/synth2.jsonl" "$OUT/synth2.jsonl"
for s in models/examples/small.json models/calibration/text-large.json; do
  n=$(basename "$s" .json)
  run "dry-$n" image build --dry-run -q --spec "$s"
  run "dry-$n-json" --format json image build --dry-run -q --spec "$s"
done
run inspect-file image inspect models/examples/llm-serving.files.json
run inspect-file-json --format json image inspect models/examples/llm-serving.files.json
cp calibration/default.runs.jsonl "$W/r.runs.jsonl"
run refit calibrate --refit --runs "$W/r.runs.jsonl" -o "$W/refit.json"
cp "$W/refit.json" "$OUT/refit.json" 2>/dev/null
run refit-json --format json calibrate --refit --runs "$W/r.runs.jsonl" -o "$W/refit2.json"
cp "$W/refit2.json" "$OUT/refit2.json" 2>/dev/null
run help --help
for c in advise trace image bench calibrate doctor "trace import" "trace analyze" "trace synth" "trace record" "image build" "image inspect"; do
  run "help-${c// /-}" $c --help
done
rm -rf "$W"
# Wall-clock times and timestamps differ run to run: masked.
sed -i -E 's/"build_seconds": [0-9.e-]+/"build_seconds": T/; s/ in [0-9.]+ (ms|s)$/ in T/; s/"created": "[^"]*"/"created": "T"/' "$OUT"/*
