#!/usr/bin/env bash
# Real-software validation images for issue 14, built from Debian packages
# (debootstrap) and the npm registry, packaged as two-layer gzip OCI images,
# converted to eStargz by Debian's `ctr-remote image optimize --no-optimize
# --oci` (not by advisor's builder), and pushed to the lab registry:
#
#   $ADVISOR_REGISTRY/real/py:gzip   / :esgz   python3 + numpy, scipy, pandas; /data/a{0,1,2}.npy
#   $ADVISOR_REGISTRY/real/node:gzip / :esgz   nodejs + /app/node_modules (express, babel, webpack, ...)
#
# Usage (as root, from anywhere):
#   eval "$(lab/lab env)"
#   examples/validate/real/build.sh [-w WORKDIR] [STAGE...]
#
# Stages (default: rootfs push):
#   rootfs  debootstrap the rootfs of both images, install the apps, make the data (cached in WORKDIR)
#   push    package, import, convert with ctr-remote and push both tags of both images
#   trace   run each workload under strace in a chroot of its rootfs and import the trace
#           with `advisor trace import` into examples/validate/real/<name>.strace.jsonl
#   check   pull each :esgz lazily (ctr-remote images rpull) and run its workload with
#           `ctr run --snapshotter stargz`; `advisor image inspect` each :esgz; clean up
#
# WORKDIR defaults to target/real-images in the repository. Each stage skips what exists.
# Environment: ADVISOR_REGISTRY, ADVISOR_CONTAINERD (from `lab/lab env`); ADVISOR (the
# advisor binary for `trace` and `check`, default target/release/advisor or
# /work/ci-target/release/advisor); NS (containerd namespace, default advisor-real-build).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
W="$REPO/target/real-images"
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
NS=${NS:-advisor-real-build}
CHECK_NS=${CHECK_NS:-advisor-real-check}
# The data: three incompressible float64 arrays, 2500 x 3000 = 60 MB each, fixed seed.
NPY_ROWS=2500
NPY_COLS=3000
NPY_SEED=14

die() {
  echo "build.sh: $*" >&2
  exit 1
}
log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }

while getopts "w:h" o; do
  case $o in
    w) W=$OPTARG ;;
    h)
      sed -n '2,25p' "$0"
      exit 0
      ;;
    *) die "usage: build.sh [-w WORKDIR] [rootfs|push|trace|check]..." ;;
  esac
done
shift $((OPTIND - 1))
STAGES=("$@")
[ ${#STAGES[@]} -gt 0 ] || STAGES=(rootfs push)

mkdir -p "$W"
W=$(cd "$W" && pwd)
case "$W/" in
  /tmp/* | /var/tmp/*) die "WORKDIR $W is under /tmp: pick a directory that survives (default target/real-images)" ;;
esac
if [ -n "${ADVISOR_LAB_DIR:-}" ]; then
  case "$W/" in "$ADVISOR_LAB_DIR"/*) die "WORKDIR $W is inside the lab's directory $ADVISOR_LAB_DIR: pick another" ;; esac
fi

need() {
  command -v "$1" >/dev/null 2>&1 || die "$1 is missing: $2"
}
need_root() {
  [ "$(id -u)" = 0 ] || die "stage $1 needs root (debootstrap, chroot, mount): run with sudo"
}
need_lab() {
  [ -n "${ADVISOR_REGISTRY:-}" ] || die "ADVISOR_REGISTRY is not set: run 'eval \"\$(lab/lab env)\"' first"
  [ -n "${ADVISOR_CONTAINERD:-}" ] || die "ADVISOR_CONTAINERD is not set: run 'eval \"\$(lab/lab env)\"' first"
  [ -S "$ADVISOR_CONTAINERD" ] || die "containerd's socket $ADVISOR_CONTAINERD does not exist: is the lab up? (lab/lab up)"
  need ctr "install containerd (apt-get install containerd)"
  need ctr-remote "install Debian's stargz snapshotter tools (apt-get install stargz-snapshotter)"
}
find_advisor() {
  if [ -n "${ADVISOR:-}" ]; then
    [ -x "$ADVISOR" ] || die "ADVISOR=$ADVISOR is not an executable"
  elif [ -x "$REPO/target/release/advisor" ]; then
    ADVISOR="$REPO/target/release/advisor"
  elif [ -x /work/ci-target/release/advisor ]; then
    ADVISOR=/work/ci-target/release/advisor
  else
    die "no advisor binary: run 'nice cargo build --release' or set ADVISOR=/path/to/advisor"
  fi
}

# ---------------------------------------------------------------- rootfs

# debootstrap NAME PACKAGES: $W/NAME/base, a minbase bookworm with those packages.
debootstrap_base() {
  local name=$1 pkgs=$2 d="$W/$1" t0
  if [ -e "$d/base/.debootstrap-done" ]; then
    log "$name: rootfs exists ($d/base)"
    return
  fi
  need debootstrap "apt-get install -y debootstrap"
  rm -rf "$d/base.tmp"
  mkdir -p "$d" "$W/debcache"
  log "$name: debootstrap --variant=minbase --include=$pkgs $SUITE"
  t0=$(date +%s)
  nice -n 19 debootstrap --variant=minbase --cache-dir="$W/debcache" --include="$pkgs" \
    "$SUITE" "$d/base.tmp" "$MIRROR" >"$d/debootstrap.log" 2>&1 ||
    die "debootstrap of $name failed: see $d/debootstrap.log (is $MIRROR reachable?)"
  echo "debootstrap seconds: $(($(date +%s) - t0))" >>"$d/debootstrap.log"
  # Not part of the images: the downloaded .debs and the package lists.
  rm -f "$d"/base.tmp/var/cache/apt/archives/*.deb "$d"/base.tmp/var/cache/apt/*.bin
  rm -rf "$d"/base.tmp/var/lib/apt/lists/*
  touch "$d/base.tmp/.debootstrap-done"
  mv "$d/base.tmp" "$d/base"
}

rootfs_py() {
  local d="$W/py"
  debootstrap_base py python3,python3-numpy,python3-scipy,python3-pandas
  if [ ! -e "$d/base/.slimmed" ]; then
    # bookworm's python3-scipy depends on python3-pythran, which pulls in a C++ toolchain and
    # the Boost headers (~450 MB installed). Nothing imports them at run time: purge them,
    # ignoring the dependency, as a slim image would.
    local purge
    purge=$(chroot "$d/base" dpkg-query -W -f '${Package}\n' | grep -E -- \
      '-dev$|^(gcc|g\+\+|cpp)(-12)?$|^binutils|^lib(asan|tsan|lsan|ubsan|hwasan|itm|cc1|isl|mpc|mpfr|gprofng|ctf|binutils|jansson)|^python3-pythran$|^libjs-' || true)
    if [ -n "$purge" ]; then
      log "py: purging the build toolchain: $(echo "$purge" | wc -l) packages"
      # shellcheck disable=SC2086
      chroot "$d/base" env DEBIAN_FRONTEND=noninteractive dpkg --purge --force-depends $purge \
        >"$d/purge.log" 2>&1 || die "dpkg --purge in the py rootfs failed: see $d/purge.log"
    fi
    chroot "$d/base" python3 -c 'import numpy, scipy, scipy.linalg, scipy.sparse, pandas' ||
      die "py: the scientific stack does not import after the purge (see $d/purge.log)"
    # Byte-code the purge's own python run may have left behind stays: Debian's postinst
    # compiled every module already (py3compile), as in any image built with apt.
    touch "$d/base/.slimmed"
  fi
  if [ ! -e "$d/app/.done" ]; then
    rm -rf "$d/app"
    mkdir -p "$d/app/app" "$d/app/data"
    cp "$HERE/load.py" "$d/app/app/load.py"
    log "py: generating /data/a{0,1,2}.npy with the image's own numpy (seed $NPY_SEED)"
    mkdir -p "$d/base/tmp/npy"
    nice -n 19 chroot "$d/base" python3 -c "
import numpy as np
rng = np.random.default_rng($NPY_SEED)
for i in range(3):
    np.save(f'/tmp/npy/a{i}.npy', rng.standard_normal(($NPY_ROWS, $NPY_COLS)))
" || die "py: generating the arrays failed"
    mv "$d"/base/tmp/npy/*.npy "$d/app/data/"
    rmdir "$d/base/tmp/npy"
    touch "$d/app/.done"
  fi
}

rootfs_node() {
  local d="$W/node"
  debootstrap_base node nodejs
  if [ ! -e "$d/app/.done" ]; then
    need npm "apt-get install -y npm (the host's npm installs the pure-JS tree into the rootfs)"
    rm -rf "$d/app"
    mkdir -p "$d/app/app"
    cp "$HERE/package.json" "$HERE/server.js" "$d/app/app/"
    log "node: npm install --ignore-scripts --omit=dev (examples/validate/real/package.json)"
    (cd "$d/app/app" && nice -n 19 npm install --ignore-scripts --no-audit --no-fund --omit=dev \
      --no-package-lock >"$d/npm.log" 2>&1) || die "npm install failed: see $d/npm.log (is registry.npmjs.org reachable?)"
    touch "$d/app/.done"
  fi
}

# ---------------------------------------------------------------- push

# blob FILE: copy into the OCI layout of $OCI, print "digest size".
blob() {
  local dg
  dg=$(sha256sum "$1" | cut -d' ' -f1)
  cp "$1" "$OCI/blobs/sha256/$dg"
  echo "$dg $(stat -c %s "$1")"
}

# layer DIR NAME: DIR as a gzip layer; sets DIFF_<NAME>, L_<NAME> (digest), S_<NAME> (size).
layer() {
  local dir=$1 n=$2 t="$OCI.$2.tar" dg sz
  # /dev's device nodes stay out (runtimes mount /dev); the build stamps too.
  tar -C "$dir" --sort=name --numeric-owner --xattrs --exclude=./.debootstrap-done \
    --exclude=./.slimmed --exclude=./.done --exclude='./dev/*' --exclude='./proc/*' \
    --exclude='./sys/*' -cf "$t" .
  printf -v "DIFF_$n" '%s' "$(sha256sum "$t" | cut -d' ' -f1)"
  nice -n 19 gzip -n -6 -c "$t" >"$t.gz"
  read -r dg sz < <(blob "$t.gz")
  printf -v "L_$n" '%s' "$dg"
  printf -v "S_$n" '%s' "$sz"
  echo "layer $n: $(stat -c %s "$t") bytes tar, $sz bytes gzip, $(tar -tf "$t" | wc -l) entries" >>"$W/$NAME/layers.txt"
  rm -f "$t" "$t.gz"
}

# push_image NAME CMD_JSON WORKDIR_IN_IMAGE
push_image() {
  local NAME=$1 cmd=$2 wd=$3 repo="$ADVISOR_REGISTRY/real/$1" C CS M MS
  if [ -e "$W/$NAME/pushed" ] && curl -fsS -o /dev/null "http://$ADVISOR_REGISTRY/v2/real/$NAME/manifests/esgz" \
      -H 'Accept: application/vnd.oci.image.manifest.v1+json'; then
    log "$NAME: $repo:gzip and :esgz are pushed ($W/$NAME/pushed)"
    return
  fi
  [ -e "$W/$NAME/app/.done" ] || die "$NAME: no rootfs in $W/$NAME: run the rootfs stage first"
  OCI="$W/$NAME/oci"
  rm -rf "$OCI" "$W/$NAME/layers.txt"
  mkdir -p "$OCI/blobs/sha256"
  log "$NAME: packaging two layers (Debian rootfs, app)"
  layer "$W/$NAME/base" base
  layer "$W/$NAME/app" app
  printf '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","LANG=C.UTF-8"],"Cmd":%s,"WorkingDir":"%s"},"rootfs":{"type":"layers","diff_ids":["sha256:%s","sha256:%s"]}}' \
    "$cmd" "$wd" "$DIFF_base" "$DIFF_app" >"$OCI.config.json"
  read -r C CS < <(blob "$OCI.config.json")
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s},{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' \
    "$C" "$CS" "$L_base" "$S_base" "$L_app" "$S_app" >"$OCI.manifest.json"
  read -r M MS < <(blob "$OCI.manifest.json")
  echo '{"imageLayoutVersion":"1.0.0"}' >"$OCI/oci-layout"
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"%s"}}]}' \
    "$M" "$MS" "$repo:gzip" >"$OCI/index.json"
  rm -f "$OCI.config.json" "$OCI.manifest.json"
  log "$NAME: import into containerd (namespace $NS)"
  tar -C "$OCI" -cf "$OCI.tar" oci-layout index.json blobs
  rm -rf "$OCI"
  ctr -a "$ADVISOR_CONTAINERD" -n "$NS" images import --no-unpack --base-name "$repo" "$OCI.tar" >/dev/null ||
    die "$NAME: ctr images import failed"
  rm -f "$OCI.tar"
  log "$NAME: ctr-remote image optimize --oci --no-optimize (eStargz)"
  nice -n 19 ctr-remote -a "$ADVISOR_CONTAINERD" -n "$NS" image optimize --oci --no-optimize \
    "$repo:gzip" "$repo:esgz" >"$W/$NAME/optimize.log" 2>&1 ||
    die "$NAME: ctr-remote image optimize failed: see $W/$NAME/optimize.log"
  log "$NAME: push $repo:gzip and :esgz"
  ctr -a "$ADVISOR_CONTAINERD" -n "$NS" images push --plain-http "$repo:gzip" >/dev/null
  ctr -a "$ADVISOR_CONTAINERD" -n "$NS" images push --plain-http "$repo:esgz" >/dev/null
  ctr -a "$ADVISOR_CONTAINERD" -n "$NS" images ls | grep -F "$repo" >"$W/$NAME/pushed"
  ctr -a "$ADVISOR_CONTAINERD" -n "$NS" images rm --sync "$repo:gzip" "$repo:esgz" >/dev/null
  cleanup_ns "$NS"
}

# Remove whatever is left in namespace $1 (images, content, leases), then the namespace.
cleanup_ns() {
  local ns=$1 x
  for x in $(ctr -a "$ADVISOR_CONTAINERD" -n "$ns" containers ls -q 2>/dev/null); do
    ctr -a "$ADVISOR_CONTAINERD" -n "$ns" tasks kill -s KILL "$x" >/dev/null 2>&1 || true
    ctr -a "$ADVISOR_CONTAINERD" -n "$ns" tasks rm -f "$x" >/dev/null 2>&1 || true
    ctr -a "$ADVISOR_CONTAINERD" -n "$ns" containers rm "$x" >/dev/null 2>&1 || true
  done
  x=$(ctr -a "$ADVISOR_CONTAINERD" -n "$ns" images ls -q 2>/dev/null || true)
  # shellcheck disable=SC2086
  [ -z "$x" ] || ctr -a "$ADVISOR_CONTAINERD" -n "$ns" images rm --sync $x >/dev/null 2>&1 || true
  for x in $(ctr -a "$ADVISOR_CONTAINERD" -n "$ns" leases ls -q 2>/dev/null); do
    ctr -a "$ADVISOR_CONTAINERD" -n "$ns" leases rm "$x" >/dev/null 2>&1 || true
  done
  for x in $(ctr -a "$ADVISOR_CONTAINERD" -n "$ns" content ls -q 2>/dev/null); do
    ctr -a "$ADVISOR_CONTAINERD" -n "$ns" content rm "$x" >/dev/null 2>&1 || true
  done
  for x in overlayfs stargz; do
    ctr -a "$ADVISOR_CONTAINERD" -n "$ns" snapshots --snapshotter $x ls 2>/dev/null | awk 'NR>1 {print $1}' |
      while read -r s; do ctr -a "$ADVISOR_CONTAINERD" -n "$ns" snapshots --snapshotter $x rm "$s" >/dev/null 2>&1 || true; done
  done
  ctr -a "$ADVISOR_CONTAINERD" namespaces rm "$ns" >/dev/null 2>&1 || true
}

# ---------------------------------------------------------------- trace

# The workloads, as in workloads.json (run by /bin/sh -c in the image).
PY_CMD='python3 /app/load.py'
NODE_CMD='node /app/server.js'

# trace_one NAME CMD: strace CMD in a chroot of NAME's merged rootfs (base + app, hard
# links, fresh each time: the workload writes byte-code and caches as it would in a fresh
# container), then `advisor trace import`.
trace_one() {
  local name=$1 cmd=$2 m="$W/$1/merged" raw="$W/$1/$1.strace" cut="$W/$1/$1.strace.cut"
  [ -e "$W/$name/app/.done" ] || die "$name: no rootfs in $W/$name: run the rootfs stage first"
  rm -rf "$m"
  cp -al "$W/$name/base" "$m"
  cp -al "$W/$name/app/." "$m/"
  rm -f "$m/.debootstrap-done" "$m/.slimmed" "$m/.done"
  mount -t proc proc "$m/proc"
  # shellcheck disable=SC2064
  trap "umount '$m/proc' 2>/dev/null || true" EXIT
  log "$name: strace of '$cmd' in a chroot of $m"
  local rc=0
  env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 HOME=/root \
    strace -f -tt -T -y -s 256 -o "$raw" \
    -e trace=%file,read,pread64,readv,preadv,mmap,lseek,close,dup,dup2,dup3,fcntl,getdents64,write \
    chroot "$m" /bin/sh -c "$cmd" >"$W/$name/$name.stdout" 2>&1 || rc=$?
  umount "$m/proc"
  trap - EXIT
  [ $rc = 0 ] || die "$name: the workload failed under strace (exit $rc): see $W/$name/$name.stdout"
  [ "$(tail -n1 "$W/$name/$name.stdout")" = DONE ] || die "$name: the workload's last line is not DONE: see $W/$name/$name.stdout"
  # The host's chroot(8) runs first, from the host's files: drop its lines up to its
  # chroot() call, so the trace starts inside the container's root.
  awk 'found {print; next} /chroot\(/ {found=1}' "$raw" >"$cut"
  [ -s "$cut" ] || die "$name: no chroot() call in $raw"
  (cd "$W/$name" && "$ADVISOR" trace import --from strace "$name.strace.cut" --root "$m" \
    --ready-line READY --image-ref "$ADVISOR_REGISTRY/real/$name:esgz" --format json \
    -o "$HERE/$name.strace.jsonl" >"$W/$name/import-summary.json") ||
    die "$name: advisor trace import failed"
  # Traces over 2 MB are committed gzipped (gunzip -k before use).
  if [ "$(stat -c %s "$HERE/$name.strace.jsonl")" -gt 2000000 ]; then
    gzip -n -9 -c "$HERE/$name.strace.jsonl" >"$HERE/$name.strace.jsonl.gz"
  fi
  rm -rf "$m"
  log "$name: $HERE/$name.strace.jsonl ($(stat -c %s "$HERE/$name.strace.jsonl") bytes); summary in $W/$name/import-summary.json"
}

# ---------------------------------------------------------------- check

check_one() {
  local name=$1 cmd=$2 ref="$ADVISOR_REGISTRY/real/$1:esgz" out
  log "$name: ctr-remote images rpull $ref (namespace $CHECK_NS)"
  ctr-remote -a "$ADVISOR_CONTAINERD" -n "$CHECK_NS" images rpull --plain-http "$ref" >/dev/null
  out=$(ctr -a "$ADVISOR_CONTAINERD" -n "$CHECK_NS" run --rm --snapshotter stargz "$ref" \
    "real-check-$name" /bin/sh -c "$cmd" 2>&1) || die "$name: ctr run failed: $out"
  echo "$out" | sed "s/^/  $name: /" >&2
  echo "$out" | grep -qx READY || die "$name: no READY line"
  [ "$(echo "$out" | tail -n1)" = DONE ] || die "$name: the last line is not DONE"
  cleanup_ns "$CHECK_NS"
  log "$name: advisor image inspect $ref"
  "$ADVISOR" image inspect "$ref" >"$W/$name/inspect-esgz.txt" 2>&1 ||
    die "$name: advisor image inspect failed: $(cat "$W/$name/inspect-esgz.txt")"
  "$ADVISOR" image inspect "$ADVISOR_REGISTRY/real/$name:gzip" >"$W/$name/inspect-gzip.txt" 2>&1 ||
    die "$name: advisor image inspect (gzip) failed: $(cat "$W/$name/inspect-gzip.txt")"
}

for s in "${STAGES[@]}"; do
  case $s in
    rootfs)
      need_root rootfs
      T0=$(date +%s)
      rootfs_py
      rootfs_node
      log "rootfs: $(($(date +%s) - T0)) s"
      ;;
    push)
      need_lab
      need curl "apt-get install -y curl"
      T0=$(date +%s)
      push_image py '["python3","/app/load.py"]' /
      push_image node '["node","/app/server.js"]' /app
      log "push: $(($(date +%s) - T0)) s"
      ;;
    trace)
      need_root trace
      need strace "apt-get install -y strace"
      find_advisor
      : "${ADVISOR_REGISTRY:=127.0.0.1:5123}"
      trace_one py "$PY_CMD"
      trace_one node "$NODE_CMD"
      ;;
    check)
      need_lab
      find_advisor
      check_one py "$PY_CMD"
      check_one node "$NODE_CMD"
      ;;
    *) die "unknown stage $s: expected rootfs, push, trace or check" ;;
  esac
done
