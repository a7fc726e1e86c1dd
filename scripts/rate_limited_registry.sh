#!/bin/bash
# A registry with a request-rate limit, in front of the lab's shaped registry (issue 16).
#
#   scripts/rate_limited_registry.sh up PORT RPS MODE     # MODE: queue | reject[:BURST]
#   scripts/rate_limited_registry.sh down PORT
#
# nginx (Debian's nginx-light, installed if no nginx is there) listens on 127.0.0.1:PORT and passes every request to the
# lab's shaped registry ($ADVISOR_LAB_SHAPED_REGISTRY: `lab/lab shape` must be on), letting through
# at most RPS requests a second (nginx's limit_req, one bucket for all clients):
#   queue         requests above the rate wait in nginx's queue (up to 100,000), as `advisor plan
#                 --registry-rps` models it;
#   reject:BURST  requests above the rate and a burst of BURST are answered 429 at once, as managed
#                 registries do (BURST default 0).
# Every request is logged with its status to STATE/PORT/access.log (STATE: /tmp/advisor-ratelimit).
# The shaped registry's own access log still counts what got through.
set -euo pipefail
STATE=${ADVISOR_RATELIMIT_DIR:-/tmp/advisor-ratelimit}
die() { echo "rate_limited_registry: $*" >&2; exit 1; }

up() {
    local port=$1 rps=$2 mode=$3 limit
    [[ $port =~ ^[0-9]+$ ]] || die "PORT '$port' is not a port number"
    [[ $rps =~ ^[0-9]+$ && $rps -gt 0 ]] || die "RPS '$rps' is not a whole number of requests per second above 0"
    local upstream=${ADVISOR_LAB_SHAPED_REGISTRY:-}
    [ -n "$upstream" ] || die "no shaped registry: run lab/lab shape … and eval \"\$(lab/lab env)\" first"
    case $mode in
        queue) limit="limit_req zone=reg burst=100000;" ;;
        reject) limit="limit_req zone=reg nodelay;" ;;
        reject:*)
            local burst=${mode#reject:}
            [[ $burst =~ ^[0-9]+$ ]] || die "MODE '$mode': BURST must be a whole number"
            limit="limit_req zone=reg burst=$burst nodelay;" ;;
        *) die "MODE '$mode' is not queue or reject[:BURST]" ;;
    esac
    local dir=$STATE/$port
    mkdir -p "$STATE"
    if ! command -v nginx >/dev/null; then
        local apt="DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx-light"
        { sh -c "$apt" || { apt-get update && sh -c "$apt"; }; } >"$STATE/apt.log" 2>&1 ||
            die "could not install nginx-light (see $STATE/apt.log)"
    fi
    down "$port" 2>/dev/null || true
    mkdir -p "$dir"
    cat > "$dir/nginx.conf" <<CONF
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 8192; }
http {
    log_format timed '\$msec \$status \$request_method \$request_uri \$body_bytes_sent \$request_time';
    access_log $dir/access.log timed;
    limit_req_zone \$server_port zone=reg:1m rate=${rps}r/s;
    limit_req_status 429;
    limit_req_log_level info;
    upstream registry { server $upstream; keepalive 256; }
    server {
        listen 127.0.0.1:$port;
        client_max_body_size 0;
        proxy_buffering off;
        proxy_request_buffering off;
        location / {
            $limit
            proxy_pass http://registry;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$http_host;
            proxy_read_timeout 600s;
        }
    }
}
CONF
    nginx -c "$dir/nginx.conf" -p "$dir" -e "$dir/error.log" || die "nginx did not start (see $dir/error.log)"
    echo "rate_limited_registry: 127.0.0.1:$port -> $upstream, $rps requests/s, $mode (log $dir/access.log)"
}

down() {
    local port=$1 dir=$STATE/$1
    [ -f "$dir/nginx.pid" ] || return 0
    kill "$(cat "$dir/nginx.pid")" 2>/dev/null || true
    for _ in $(seq 50); do [ -f "$dir/nginx.pid" ] || break; sleep 0.1; done
    rm -f "$dir/nginx.pid"
}

case ${1:-} in
    up) [ $# -eq 4 ] || die "usage: up PORT RPS queue|reject[:BURST]"; up "$2" "$3" "$4" ;;
    down) [ $# -eq 2 ] || die "usage: down PORT"; down "$2"; echo "rate_limited_registry: 127.0.0.1:$2 down" ;;
    *) die "usage: up PORT RPS queue|reject[:BURST] | down PORT" ;;
esac
