#!/usr/bin/env python3
"""Predict a finished `cargo run --example validate` run again with other
advise flags: `scripts/repredict.py RUN_DIR --profile P.json --network N.json`
(run from the repository; ADVISOR_BIN names the binary). Prints the table and
the errors against the run's measured medians (containerd's clients)."""
import json, os, subprocess, sys, statistics
run, *flags = sys.argv[1:]
A = os.environ.get("ADVISOR_BIN", "target/release/advisor")
r = json.load(open(f'{run}/report.json'))
errs = []
print('| workload | strategy | to | predicted | measured median | error |')
print('|---|---|---|---|---|---|')
for c in r['cases']:
    w = c['workload']['name']
    out = subprocess.run([A, '--format', 'json', 'advise', '--files', f'{run}/files.json', '--trace', f'{run}/{w}.jsonl',
                          '--gzip-bytes', str(r['gzip_bytes']),
                          *([] if '--profile' in flags else ['--profile', r['profile']]), *flags],
                         capture_output=True, text=True, check=True)
    p = json.loads(out.stdout)['prediction']
    for n in c['numbers']:
        s = next(x for x in p['strategies'] if x['strategy'] == n['strategy'])
        v = s['cold_start' if n['point'] == 'ready' else 'completion']['value']
        m = n['measured_median']
        e = (v - m) / max(m, 1.0)
        errs.append(abs(e))
        print(f"| {w} | {n['strategy']} | {n['point']} | {v:.2f} s | {m:.2f} s | {e*100:+.0f} % |")
print(f"\nmedian |error| {statistics.median(errs)*100:.1f} %, worst {max(errs)*100:.0f} % ({len(errs)} numbers)")
