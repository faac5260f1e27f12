# Shared helpers for deploy/local/{up,down,status}. Sourced, not run.
# Everything downloaded or written lives under .cache/ (git-ignored) in the repository.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE="${SENDHUB_CACHE_DIR:-$ROOT/.cache}"
KAFKA_HOME="$CACHE/kafka"
KAFKA_LIBS="$KAFKA_HOME/libs"
KAFKA_DATA="$KAFKA_HOME/data"
KAFKA_PID="$KAFKA_HOME/kafka.pid"
KAFKA_PORT=9092
PG_VERSION=15
PG_CLUSTER=main
PG_PORT=5432
DB_NAME=sendhub
DB_USER=sendhub
DB_PASSWORD=sendhub
# Where the hub's settings find the password (SENDHUB_DATABASE_PASSWORD_FILE's default);
# the default URL carries none. With SENDHUB_CACHE_DIR set, point that variable here.
PG_PASSWORD_FILE="$CACHE/postgres/password"
# One role per service and a read-only one for the CLI's reading commands; migration 0003
# grants each what it needs. Their generated passwords: $CACHE/postgres/<role>.password.
PG_ROLES="sendhub_ingest sendhub_records sendhub_transfers sendhub_gateway sendhub_reader"
# The broker's TLS and the principals' Kafka passwords (services/shared/settings.py reads
# them from here by default); operator.env lets any Kafka client or `sendhub` connect.
LOCAL="$CACHE/local"
TLS_DIR="$LOCAL/tls"
CREDENTIALS_DIR="$LOCAL/credentials"
OPERATOR_PASSWORD_FILE="$CREDENTIALS_DIR/operator.password"
BROKER_PORT=9094  # the broker's own SASL PLAIN listener (loopback): bootstrap and checks
PY="$ROOT/.venv/bin/python"

say() { printf '[sendhub] %s\n' "$*"; }
die() { printf '[sendhub] error: %s\n' "$*" >&2; exit 1; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi
}

# A killed broker can linger as a zombie until its parent reaps it; kill -0 still
# answers for a zombie, so its state in /proc is read as well.
pid_alive() {
  kill -0 "$1" 2>/dev/null || return 1
  [ -r "/proc/$1/stat" ] || return 0
  case "$(sed 's/.*) //' "/proc/$1/stat" | cut -d' ' -f1)" in Z|X) return 1 ;; esac
}
kafka_running() { [ -f "$KAFKA_PID" ] && pid_alive "$(cat "$KAFKA_PID")"; }

pg_state() { pg_lsclusters -h 2>/dev/null | awk -v v="$PG_VERSION" -v c="$PG_CLUSTER" '$1==v && $2==c {print $4}'; }

ensure_postgres_installed() {
  if ! command -v pg_lsclusters >/dev/null || [ ! -x "/usr/lib/postgresql/$PG_VERSION/bin/postgres" ]; then
    say "installing PostgreSQL $PG_VERSION from Debian's packages"
    [ "$(id -u)" = 0 ] || die "installing PostgreSQL needs root (apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "postgresql-$PG_VERSION" >/dev/null
  fi
  if [ -z "$(pg_state)" ]; then
    say "creating PostgreSQL cluster $PG_VERSION/$PG_CLUSTER"
    pg_createcluster "$PG_VERSION" "$PG_CLUSTER" -p "$PG_PORT" >/dev/null
  fi
}

postgres_up() {
  ensure_postgres_installed
  if [ "$(pg_state)" = online ]; then
    say "PostgreSQL $PG_VERSION already running on 127.0.0.1:$PG_PORT"
  else
    say "starting PostgreSQL $PG_VERSION on 127.0.0.1:$PG_PORT"
    pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" start
  fi
  for _ in $(seq 1 60); do
    as_postgres psql -p "$PG_PORT" -qtAc 'SELECT 1' >/dev/null 2>&1 && break
    sleep 0.5
  done
  as_postgres psql -p "$PG_PORT" -qtAc 'SELECT 1' >/dev/null || die "PostgreSQL did not answer"
  if ! as_postgres psql -p "$PG_PORT" -qtAc "SELECT 1 FROM pg_roles WHERE rolname='$DB_USER'" | grep -q 1; then
    say "creating role $DB_USER"
    as_postgres psql -p "$PG_PORT" -qc "CREATE ROLE $DB_USER LOGIN CREATEDB PASSWORD '$DB_PASSWORD'"
  fi
  if ! as_postgres psql -p "$PG_PORT" -qtAc "SELECT 1 FROM pg_database WHERE datname='$DB_NAME'" | grep -q 1; then
    say "creating database $DB_NAME"
    as_postgres psql -p "$PG_PORT" -qc "CREATE DATABASE $DB_NAME OWNER $DB_USER"
  fi
  write_password_file
  for role in $PG_ROLES; do postgres_role "$role"; done
}

# A role of the hub's, with a password generated once into $CACHE/postgres/<role>.password
# (mode 600) and set again at every `up`, so file and role never disagree. The SQL goes in
# on stdin, never on a command line where `ps` would show the password. The owner is made
# a member: `DROP DATABASE ... WITH (FORCE)` (tests, demo) may then end the role's sessions.
postgres_role() {
  local role=$1 file="$CACHE/postgres/$1.password"
  if [ ! -s "$file" ]; then
    mkdir -p "$(dirname "$file")"
    (umask 077; python3 -c 'import secrets; print(secrets.token_urlsafe(24))' > "$file")
    say "wrote the password of database role $role to $file"
  fi
  local password; password=$(head -n 1 "$file")
  printf '%s\n' "SET client_min_messages = warning;" \
    "SELECT format('CREATE ROLE %I LOGIN NOINHERIT', '$role') WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$role') \\gexec" \
    "ALTER ROLE $role LOGIN NOINHERIT NOCREATEDB NOCREATEROLE PASSWORD '$password';" \
    "GRANT $role TO $DB_USER;" |
    as_postgres psql -p "$PG_PORT" -q -v ON_ERROR_STOP=1 >/dev/null
}

# Only this user may read it; the settings read it at each connection, so a first
# `make demo` finds it right after this runs.
write_password_file() {
  if [ ! -f "$PG_PASSWORD_FILE" ] || [ "$(cat "$PG_PASSWORD_FILE")" != "$DB_PASSWORD" ]; then
    mkdir -p "$(dirname "$PG_PASSWORD_FILE")"
    (umask 077; printf '%s\n' "$DB_PASSWORD" > "$PG_PASSWORD_FILE")
    say "wrote the database password to $PG_PASSWORD_FILE"
  fi
}

postgres_down() {
  if [ "$(pg_state)" = online ]; then
    say "stopping PostgreSQL $PG_VERSION"
    pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" stop
  else
    say "PostgreSQL is not running"
  fi
}

fetch_kafka() {
  if [ -f "$KAFKA_LIBS/.complete" ]; then return; fi
  say "fetching Apache Kafka jars from Maven Central (first run only)"
  command -v mvn >/dev/null || die "Maven (mvn) is needed to fetch Kafka"
  rm -rf "$KAFKA_LIBS"; mkdir -p "$KAFKA_LIBS"
  mvn -q -B -Dstyle.color=never -f "$ROOT/deploy/kafka/pom.xml" dependency:copy-dependencies \
    -DoutputDirectory="$KAFKA_LIBS" -DincludeScope=runtime
  # Older SLF4J 1.x API jars pulled in transitively would shadow the 2.x binding.
  rm -f "$KAFKA_LIBS"/slf4j-api-1.*.jar
  touch "$KAFKA_LIBS/.complete"
}

kafka_java() {
  java ${KAFKA_HEAP_OPTS:--Xms256m -Xmx768m} -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -Dkafka.logs.dir="${KAFKA_LOG_DIR:-$KAFKA_HOME/logs/tools}" \
    -Dlog4j2.configurationFile="$ROOT/deploy/kafka/log4j2.properties" \
    -cp "$KAFKA_LIBS/*" "$@"
}

# The broker itself: started in the background so that its pid is the JVM's own.
nohup_kafka_java() {
  nohup java ${KAFKA_HEAP_OPTS:--Xms256m -Xmx768m} -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -Dkafka.logs.dir="$KAFKA_LOG_DIR" \
    -Dlog4j2.configurationFile="$ROOT/deploy/kafka/log4j2.properties" \
    -cp "$KAFKA_LIBS/*" "$@" >"$KAFKA_HOME/logs/stdout.log" 2>&1 &
}

kafka_up() {
  if kafka_running; then
    say "Kafka already running on 127.0.0.1:$KAFKA_PORT (pid $(cat "$KAFKA_PID"))"
    return
  fi
  if port_open "$KAFKA_PORT"; then
    say "something already listens on 127.0.0.1:$KAFKA_PORT; assuming it is a Kafka broker"
    return
  fi
  command -v java >/dev/null || die "Java 17 is needed to run Kafka"
  fetch_kafka
  mkdir -p "$KAFKA_HOME/logs" "$KAFKA_DATA"
  kafka_secrets
  (umask 077; sed -e "s|@DATA_DIR@|$KAFKA_DATA|" -e "s|@TLS_DIR@|$TLS_DIR|" \
    -e "s|@KEYSTORE_PASSWORD@|$(cat "$TLS_DIR/keystore.password")|" \
    -e "s|@OPERATOR_PASSWORD@|$(cat "$OPERATOR_PASSWORD_FILE")|g" \
    "$ROOT/deploy/kafka/server.properties" > "$KAFKA_HOME/server.properties")
  if [ ! -f "$KAFKA_DATA/meta.properties" ]; then
    say "formatting Kafka storage (KRaft, standalone controller)"
    cluster_id=$(kafka_java kafka.tools.StorageTool random-uuid)
    kafka_java kafka.tools.StorageTool format --standalone -t "$cluster_id" \
      -c "$KAFKA_HOME/server.properties" >/dev/null
  fi
  say "starting Kafka on 127.0.0.1:$KAFKA_PORT"
  KAFKA_LOG_DIR="$KAFKA_HOME/logs" nohup_kafka_java kafka.Kafka "$KAFKA_HOME/server.properties"
  echo $! > "$KAFKA_PID"
  # Every credential in the credentials folder, set again as soon as the broker's own
  # listener answers (README: "Kafka: SASL over TLS"), then the usual check.
  "$PY" -m sendhub.local_deploy restore-scram "$CREDENTIALS_DIR" "127.0.0.1:$BROKER_PORT" \
    || die "Kafka did not come up to take its credentials; see $KAFKA_HOME/logs/server.log"
  wait_for_kafka
}

need_venv() {
  [ -x "$PY" ] || die "the hub's Python environment is missing: run 'make install' first"
}

# The CA and certificate, and the operator's password, generated once into the cache.
kafka_secrets() {
  need_venv
  "$PY" -m sendhub.local_deploy tls "$TLS_DIR"
  "$PY" -m sendhub.local_deploy secret "$OPERATOR_PASSWORD_FILE" >/dev/null
  (umask 077; cat > "$LOCAL/broker-client.properties" <<EOF
security.protocol=SASL_PLAINTEXT
sasl.mechanism=PLAIN
sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="operator" password="$(cat "$OPERATOR_PASSWORD_FILE")";
EOF
  )
}

# The operator's SCRAM credentials, every principal's credentials and ACLs, and
# operator.env. Idempotent: run at every `up`, also when Kafka was already running.
kafka_principals() {
  need_venv
  if [ ! -f "$OPERATOR_PASSWORD_FILE" ]; then
    say "no operator password in $OPERATOR_PASSWORD_FILE: this broker was not started by this checkout's deploy/local/up; principals not synced"
    return
  fi
  "$PY" -m sendhub.local_deploy operator-scram "$OPERATOR_PASSWORD_FILE" "127.0.0.1:$BROKER_PORT"
  write_operator_env
  (set -a; source "$LOCAL/operator.env"; set +a
   "$ROOT/.venv/bin/sendhub" db upgrade >/dev/null
   "$ROOT/.venv/bin/sendhub" principals sync)
}

# The database URL names no user: the operator's commands then connect as the owner,
# reading commands as sendhub_reader, services started from this shell as their roles.
write_operator_env() {
  (umask 077; cat > "$LOCAL/operator.env" <<EOF
SENDHUB_KAFKA_BOOTSTRAP=127.0.0.1:$KAFKA_PORT
SENDHUB_KAFKA_SECURITY_PROTOCOL=SASL_SSL
SENDHUB_KAFKA_SASL_MECHANISM=SCRAM-SHA-512
SENDHUB_KAFKA_USERNAME=operator
SENDHUB_KAFKA_PASSWORD_FILE=$OPERATOR_PASSWORD_FILE
SENDHUB_KAFKA_CA_FILE=$TLS_DIR/ca.pem
SENDHUB_DATABASE_URL=postgresql://127.0.0.1:$PG_PORT/$DB_NAME
SENDHUB_GATEWAY_URL=https://127.0.0.1:8443
EOF
  )
}

wait_for_kafka() {
  # Poll until the broker answers a metadata request, not just until the port opens.
  for i in $(seq 1 120); do
    if port_open "$KAFKA_PORT" && kafka_java org.apache.kafka.tools.TopicCommand \
        --bootstrap-server "127.0.0.1:$BROKER_PORT" \
        --command-config "$LOCAL/broker-client.properties" --list >/dev/null 2>&1; then
      say "Kafka is answering (after ${i} checks)"
      return
    fi
    kafka_running || die "Kafka exited; see $KAFKA_HOME/logs/stdout.log and server.log"
    sleep 1
  done
  die "Kafka did not answer within 120 s; see $KAFKA_HOME/logs/server.log"
}

kafka_down() {
  if kafka_running; then
    pid=$(cat "$KAFKA_PID")
    say "stopping Kafka (pid $pid)"
    kill "$pid"
    for _ in $(seq 1 60); do pid_alive "$pid" || break; sleep 0.5; done
    pid_alive "$pid" && kill -9 "$pid"
    rm -f "$KAFKA_PID"
  else
    say "Kafka is not running (not started by deploy/local/up)"
  fi
}
