#!/usr/bin/env python3
"""Measure the stargz snapshotter's background fetch after a lazy run, on the lab.

    scripts/background_fetch.py --reference REF --command CMD [--runs N] [--settle S] [-o OUT.json]

One cold lazy run as containerd's own clients make it (`ctr-remote images rpull`, then `ctr run
--rm --snapshotter stargz`), timed from the pull to the workload's READY and DONE lines, while the
bytes arriving from the shaped registry are sampled every 50 ms at the host end of the lab's veth
pair (`lab/lab shape` must be on: the counter sees only the shaped registry's traffic). After the
run the counter keeps growing while background fetch downloads the rest of the image, whether or
not the container is still there; the image is whole when it stops (under 256 KiB in a second, for
--settle s).
Prints and writes: bytes (Ethernet frames, ~3 % above the payload), when growth after DONE began
and when it ended, on the clock that starts at the pull. Needs `eval "$(lab/lab env)"` (the
containerd socket) and root.
"""
import argparse
import json
import os
import subprocess
import sys
import threading
import time

# Bytes in a second that count as a download (keep-alives and ARP stay far below).
ACTIVE = 256 * 1024
NS = os.environ.get('ADVISOR_NAMESPACE', 'advisor-bgfetch')


def ctr(tool, *args, check=True):
    addr = os.environ.get('ADVISOR_CONTAINERD')
    if not addr:
        sys.exit('background_fetch: ADVISOR_CONTAINERD is not set; run eval "$(lab/lab env)" first')
    return subprocess.run([tool, '-a', addr, '-n', NS, *args], capture_output=True, text=True, check=check)


def veth_counter():
    nets = [n for n in os.listdir('/sys/class/net') if n.startswith('alab') and n.endswith('h')]
    if len(nets) != 1:
        sys.exit(f'background_fetch: expected one lab veth (alab*h) in /sys/class/net, found {nets}: is lab/lab shape on?')
    return f'/sys/class/net/{nets[0]}/statistics/rx_bytes'


def clean(ref):
    ctr('ctr', 'images', 'rm', '--sync', ref, check=False)
    blobs = ctr('ctr', 'content', 'ls', '-q').stdout.split()
    if blobs:
        ctr('ctr', 'content', 'rm', *blobs)


def cold(ref, lab):
    clean(ref)
    subprocess.run([lab, 'reset-lazy'], check=True, capture_output=True)
    subprocess.run(['sh', '-c', 'sync && echo 3 > /proc/sys/vm/drop_caches'], check=True)


def one_run(ref, command, counter, settle, lab, i):
    cold(ref, lab)
    read = lambda: int(open(counter).read())
    samples, stop = [], threading.Event()
    base = read()
    t0 = time.monotonic()

    def sample():
        while not stop.is_set():
            samples.append((time.monotonic() - t0, read() - base))
            time.sleep(0.05)

    th = threading.Thread(target=sample)
    th.start()
    ctr('ctr-remote', 'images', 'rpull', '--plain-http', ref)
    pull_s = time.monotonic() - t0
    p = subprocess.Popen(['ctr', '-a', os.environ['ADVISOR_CONTAINERD'], '-n', NS, 'run', '--rm',
                          '--snapshotter', 'stargz', ref, f'bgfetch-{os.getpid()}-{i}', '/bin/sh', '-c',
                          command + '; echo DONE'], stdout=subprocess.PIPE, text=True)
    ready = done = None
    for line in p.stdout:
        t = time.monotonic() - t0
        if line.strip() == 'READY' and ready is None:
            ready = t
        elif line.strip() == 'DONE':
            done = t
    p.wait()
    exit_s = time.monotonic() - t0
    at_done = samples[-1][1] if samples else 0
    # Wait until the counter has not grown by more than ACTIVE bytes in a
    # second for `settle` seconds (TCP keep-alives and ARP trickle on).
    last_active = exit_s
    while time.monotonic() - t0 - last_active < settle:
        time.sleep(0.2)
        now_t, now_b = samples[-1]
        back = next((b for t, b in reversed(samples) if t <= now_t - 1.0), 0)
        if now_b - back > ACTIVE:
            last_active = now_t
    stop.set()
    th.join()
    last = next(b for t, b in reversed(samples) if t <= last_active)
    whole = next(t for t, b in samples if b >= last - ACTIVE / 4)
    grow_after = next((t for t, b in samples if t >= done and b > at_done + ACTIVE / 4), None)
    clean(ref)
    if p.returncode != 0:
        sys.exit(f'background_fetch: ctr run {ref} failed (exit {p.returncode})')
    return {'pull_s': pull_s, 'ready_s': ready, 'done_s': done, 'exit_s': exit_s,
            'bytes_at_done': at_done, 'bytes_total': last,
            'background_starts_s': grow_after, 'whole_s': whole,
            'timeline': [(round(t, 2), b) for k, (t, b) in enumerate(samples) if k % 20 == 0]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--reference', required=True)
    ap.add_argument('--command', required=True, help='the workload (sh -c); it prints READY; DONE is appended')
    ap.add_argument('--runs', type=int, default=1)
    ap.add_argument('--settle', type=float, default=12.0, help='seconds without growth that end the wait')
    ap.add_argument('--lab', default=os.path.join(os.path.dirname(__file__), '..', 'lab', 'lab'))
    ap.add_argument('-o', '--out')
    a = ap.parse_args()
    counter = veth_counter()
    runs = [one_run(a.reference, a.command, counter, a.settle, a.lab, i) for i in range(a.runs)]
    for r in runs:
        print(f"ready {r['ready_s']:.2f} s, done {r['done_s']:.2f} s, {r['bytes_at_done'] / 1e6:.1f} MB by done; "
              f"background from {r['background_starts_s'] or float('nan'):.2f} s, whole at {r['whole_s']:.2f} s, "
              f"{r['bytes_total'] / 1e6:.1f} MB in all (frames)")
    if a.out:
        tmp = a.out + '.tmp'
        with open(tmp, 'w') as f:
            json.dump({'reference': a.reference, 'command': a.command, 'runs': runs}, f, indent=1)
        os.replace(tmp, a.out)


if __name__ == '__main__':
    main()
