#!/usr/bin/env bash
# The anchor of the load benchmarks: nginx as a plain reverse proxy (proxy_pass with
# upstream keep-alive, no routing, no access log). Writes its config into a folder and
# prints the config file's path; run it as `nginx -p DIR -c DIR/nginx.conf`.
#
#   nginx.sh DIR PORT UPSTREAM_PORT WORKERS [single|stream]
#
# `single`: no master process, so the one worker is the process started (what callgrind
# counts); otherwise a master with WORKERS workers, as nginx is deployed.
# `stream`: answers passed on as they arrive (`proxy_buffering off`), as nginx must be set
# up in front of server-sent events; buffered, it holds a stream's first event back.
# Client connections are kept for any number of requests (nginx closes them after 1000 by
# default; Gatewise never does, and a benchmark client must not pay reconnects for nginx).
set -euo pipefail
dir=$1 port=$2 upstream=$3 workers=$4 mode=${5:-}
mkdir -p "$dir"
master=on; if [ "$mode" = single ]; then master=off; workers=1; fi
buffering=on; if [ "$mode" = stream ]; then buffering=off; fi
cat > "$dir/nginx.conf" <<NGINX
worker_processes $workers;
master_process $master;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 100000000;
  client_body_temp_path $dir/body;
  proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fastcgi;
  uwsgi_temp_path $dir/uwsgi;
  scgi_temp_path $dir/scgi;
  upstream fixed { server 127.0.0.1:$upstream; keepalive 64; keepalive_requests 100000000; }
  server {
    listen 127.0.0.1:$port;
    location / {
      proxy_pass http://fixed;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering $buffering;
    }
  }
}
NGINX
echo "$dir/nginx.conf"
