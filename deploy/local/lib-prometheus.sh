# Debian's Prometheus for deploy/local/{up --with-prometheus,down,status,prometheus-tools}.
# Sourced after lib.sh, not run. It scrapes the services' default ports (9101-9103) with
# deploy/prometheus/prometheus.yml and evaluates deploy/prometheus/alerts.yml; its data
# lives under .cache/prometheus/. Not the package's own systemd service: this one runs
# only when asked, with the hub's configuration, on loopback.
PROM_HOME="$CACHE/prometheus"
PROM_PID="$PROM_HOME/prometheus.pid"
PROM_PORT="${SENDHUB_PROMETHEUS_PORT:-9090}"
PROM_CONFIG="$ROOT/deploy/prometheus/prometheus.yml"

ensure_prometheus_installed() {
  if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then return; fi
  say "installing prometheus (and promtool) from Debian's packages"
  [ "$(id -u)" = 0 ] || die "installing prometheus needs root (apt-get install prometheus)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null
}

prometheus_running() { [ -f "$PROM_PID" ] && pid_alive "$(cat "$PROM_PID")"; }

prometheus_up() {
  ensure_prometheus_installed
  if prometheus_running; then
    say "Prometheus already running on http://127.0.0.1:$PROM_PORT (pid $(cat "$PROM_PID"))"
    return
  fi
  if port_open "$PROM_PORT"; then
    die "something else listens on 127.0.0.1:$PROM_PORT (Debian's own prometheus service? \
stop it with 'systemctl stop prometheus'), or set SENDHUB_PROMETHEUS_PORT to a free port"
  fi
  promtool check config "$PROM_CONFIG" >/dev/null || die "promtool refuses $PROM_CONFIG"
  mkdir -p "$PROM_HOME/data"
  nohup prometheus --config.file="$PROM_CONFIG" --storage.tsdb.path="$PROM_HOME/data" \
    --storage.tsdb.retention.time=7d --web.listen-address="127.0.0.1:$PROM_PORT" \
    >"$PROM_HOME/prometheus.log" 2>&1 &
  echo $! > "$PROM_PID"
  for _ in $(seq 1 60); do
    if port_open "$PROM_PORT"; then
      say "Prometheus on http://127.0.0.1:$PROM_PORT (alerts: /alerts), scraping the services on 127.0.0.1:9101-9103"
      return
    fi
    prometheus_running || die "Prometheus exited; see $PROM_HOME/prometheus.log"
    sleep 0.5
  done
  die "Prometheus did not answer within 30 s; see $PROM_HOME/prometheus.log"
}

prometheus_down() {
  if prometheus_running; then
    pid=$(cat "$PROM_PID")
    say "stopping Prometheus (pid $pid)"
    kill "$pid"
    for _ in $(seq 1 40); do pid_alive "$pid" || break; sleep 0.5; done
    pid_alive "$pid" && kill -9 "$pid"
    rm -f "$PROM_PID"
  else
    say "Prometheus is not running (not started by deploy/local/up --with-prometheus)"
  fi
}
