#!/usr/bin/env bash
# The anchor of the load benchmarks: nginx as a plain reverse proxy (proxy_pass with
# upstream keep-alive, no routing, no access log). Writes its config into a folder and
# prints the config file's path; run it as `nginx -p DIR -c DIR/nginx.conf`.
#
#   nginx.sh DIR PORT UPSTREAM_PORT WORKERS [single]
#
# `single`: no master process, so the one worker is the process started (what callgrind
# counts); otherwise a master with WORKERS workers, as nginx is deployed.
set -euo pipefail
dir=$1 port=$2 upstream=$3 workers=$4 mode=${5:-}
mkdir -p "$dir"
master=on; if [ "$mode" = single ]; then master=off; workers=1; fi
cat > "$dir/nginx.conf" <<NGINX
worker_processes $workers;
master_process $master;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $dir/body;
  proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fastcgi;
  uwsgi_temp_path $dir/uwsgi;
  scgi_temp_path $dir/scgi;
  upstream fixed { server 127.0.0.1:$upstream; keepalive 64; }
  server {
    listen 127.0.0.1:$port;
    location / {
      proxy_pass http://fixed;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
NGINX
echo "$dir/nginx.conf"
