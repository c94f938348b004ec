# Sourced by scripts/compare-*: starts an nginx of our own on a free loopback
# port, one worker pinned to CPU 0, serving /5 (5 bytes) and /16k (16 KiB).
# Sets NGINX_PORT and NGINX_DIR; stops nginx on exit.

nginx_start() {
  local extra_server="${1:-}"
  LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
  NGINX_DIR=$(mktemp -d /tmp/leakless-bench-nginx.XXXXXX)
  mkdir -p "$NGINX_DIR/www" "$NGINX_DIR/tmp"
  printf 'hello' > "$NGINX_DIR/www/5"
  head -c 16384 /dev/zero | tr '\0' 'x' > "$NGINX_DIR/www/16k"
  NGINX_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  NGINX_H2C_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  cat > "$NGINX_DIR/nginx.conf" <<CONF
daemon off;
master_process off;
worker_processes 1;
pid $NGINX_DIR/nginx.pid;
error_log $NGINX_DIR/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  client_body_temp_path $NGINX_DIR/tmp;
  proxy_temp_path $NGINX_DIR/tmp;
  fastcgi_temp_path $NGINX_DIR/tmp;
  uwsgi_temp_path $NGINX_DIR/tmp;
  scgi_temp_path $NGINX_DIR/tmp;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    root $NGINX_DIR/www;
  }
  server {
    # h2c: nginx's h2 path stalled 16 KiB responses with sendfile on (measured when these scripts were written).
    listen 127.0.0.1:$NGINX_H2C_PORT http2;
    sendfile off;
    root $NGINX_DIR/www;
    $extra_server
  }
}
CONF
  taskset -c 0 nginx -c "$NGINX_DIR/nginx.conf" -p "$NGINX_DIR" &
  NGINX_PID=$!
  trap 'kill $NGINX_PID 2>/dev/null; wait $NGINX_PID 2>/dev/null; rm -rf "$NGINX_DIR"' EXIT
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$NGINX_PORT/5" >/dev/null 2>&1 && return 0
    python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$NGINX_PORT),0.2)" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nginx did not start; see $NGINX_DIR/error.log" >&2
  exit 1
}

# pass_ratios "A1 A2 .." "B1 B2 ..": A/B pass by pass, in run order, and
# their median. The two runs of a pass are seconds apart, so a pass's
# ratio is spared the host's drift between passes that moves both figures
# (at one connection a client's CPU per request moved by nearly 2x between
# passes on this VM); the median of the paired ratios is the steadier
# verdict where the ratio of the medians pairs runs from different passes.
pass_ratios() {
  python3 -c "
import statistics, sys
a, b = (list(map(float, x.split())) for x in sys.argv[1:3])
r = [x / y for x, y in zip(a, b)]
print(' / '.join(f'{x:.2f}' for x in r) + f'   (median {statistics.median(r):.2f})')" "$1" "$2"
}

# issue_rows NAME PEER1 PEER2 CONCS BODIES: the summary in the shape the
# issue's table uses, one row per body: this client's CPU per request as
# a ratio to each peer, measured in the same run (reads the CPU array and
# median() of the calling script; leakless is the key "leakless").
issue_rows() {
  local name=$1 p1=$2 p2=$3 concs=$4 bodies=$5 body c label r1 r2 l
  printf "\n| script | point | leakless vs %s | vs the other peer |\n|---|---|--:|--:|\n" "$p1"
  for body in $bodies; do
    case $body in 5) label="5 B" ;; 16k) label="16 KiB" ;; *) label=$body ;; esac
    r1=""; r2=""
    for c in $concs; do
      l=$(median "${CPU[$body $c leakless]}")
      r1="$r1 / $(python3 -c "print(f'{$l/$(median "${CPU[$body $c $p1]}"):.2f}×')")"
      if [ -n "${CPU[$body $c $p2]:-}" ]; then
        r2="$r2 / $(python3 -c "print(f'{$l/$(median "${CPU[$body $c $p2]}"):.2f}×')")"
      else r2="$r2 / -"; fi
    done
    printf "| %s | %s c=%s | %s | %s %s |\n" "$name" "$label" "$(echo $concs | sed 's| | / |g')" "${r1# / }" "$p2" "${r2# / }"
  done
  printf "\nleakless vs %s, pass by pass:\n" "$p1"
  for body in $bodies; do
    for c in $concs; do
      printf "  %-4s c=%-3s %s\n" "$body" "$c" "$(pass_ratios "${CPU[$body $c leakless]}" "${CPU[$body $c $p1]}")"
    done
  done
  printf "load average before / after: %s / %s\n" "$LOAD_BEFORE" "$(cut -d' ' -f1-3 /proc/loadavg)"
}
