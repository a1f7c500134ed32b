# Sourced by run-local.sh, test.sh and the fresh-Debian check: everything a host needs,
# installed and started only when missing, so a second run is quick.
#   provision run    Docker engine, the example jobs' image, a venv with the package
#   provision test   that, plus PostgreSQL (role and database), docker-compose, HAProxy,
#                    the images the tests build on, a venv with the dev tools
# As root it installs Debian packages and starts services; otherwise it says what to
# run as root, and stops.

PYTHON=${PYTHON:-python3}
PG_ROLE=orchestrator
PG_PASSWORD=orchestrator
PG_DATABASE=orchestrator

say() { printf '%s\n' "$*" >&2; }
die() { say "$*"; exit 1; }
step() { printf '\n== %s (%ss)\n' "$*" "$SECONDS"; }

# The venv module alone is not enough: Debian's python3 has it without ensurepip until
# python3-venv is installed, and then `python3 -m venv` fails half-way.
python_can_make_venvs() { "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; }
static_busybox() { [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1; }

# The Debian packages PROFILE still needs on this host, one a line.
needs_packages() {
  local profile=$1
  command -v dockerd >/dev/null || echo docker.io
  static_busybox || echo busybox-static
  python_can_make_venvs || echo python3-venv
  [ "$profile" = test ] || return 0
  command -v docker-compose >/dev/null || echo docker-compose
  { command -v pg_lsclusters >/dev/null && [ -n "$(ls /usr/lib/postgresql 2>/dev/null)" ]; } \
    || echo postgresql
  command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || echo haproxy
  command -v debootstrap >/dev/null || echo debootstrap
  command -v prometheus >/dev/null || echo prometheus
  command -v chromium >/dev/null || echo chromium
  command -v chromedriver >/dev/null || echo chromium-driver
}

install_packages() {
  local need
  mapfile -t need < <(needs_packages "$1")
  [ ${#need[@]} -gt 0 ] || { echo "system packages: all present"; return 0; }
  if [ "$(id -u)" != 0 ]; then
    die "missing Debian packages: ${need[*]}
as root, run:  apt-get update && apt-get install -y ${need[*]}
then run this command again"
  fi
  echo "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
}

start_docker() {
  docker info >/dev/null 2>&1 && return 0
  if [ "$(id -u)" != 0 ]; then
    die "no Docker engine answers (DOCKER_HOST=${DOCKER_HOST:-the local socket}):
as root, start it (dockerd &, or systemctl start docker), and add yourself to the
docker group (usermod -aG docker $USER) or run this as root"
  fi
  if ! pgrep -x dockerd >/dev/null; then
    rm -f /var/run/docker.pid  # left by an unclean stop; dockerd refuses to start with it
    nohup setsid dockerd >/var/log/dockerd.log 2>&1 </dev/null &
  fi
  for _ in $(seq 1 90); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { tail -n 30 /var/log/dockerd.log >&2; die "dockerd did not start"; }
}

start_postgres() {
  local pg_version pg_cluster
  read -r pg_version pg_cluster _ < <(pg_lsclusters -h | head -n 1) \
    || die "no PostgreSQL cluster (pg_lsclusters is empty)"
  if ! pg_lsclusters -h | awk '{print $4}' | head -n 1 | grep -q online; then
    pg_ctlcluster "$pg_version" "$pg_cluster" start
  fi
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 && break; sleep 1; done
  pg_isready -q -h 127.0.0.1 || die "PostgreSQL is not accepting connections on 127.0.0.1"
  su postgres -c "psql -q -v ON_ERROR_STOP=1" <<SQL
DO \$\$BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_ROLE') THEN
    CREATE ROLE $PG_ROLE LOGIN SUPERUSER PASSWORD '$PG_PASSWORD';
  END IF;
END\$\$;
SQL
  su postgres -c "psql -tAc \"SELECT 1 FROM pg_database WHERE datname = '$PG_DATABASE'\"" \
    | grep -q 1 || su postgres -c "createdb -O $PG_ROLE $PG_DATABASE"
  echo "PostgreSQL $pg_version/$pg_cluster ready"
}

# A venv at DIR that really works (python and pip), made again when half-made.
make_venv() {
  local dir=$1
  if [ -d "$dir" ] && ! { "$dir/bin/python" -m pip --version >/dev/null 2>&1; }; then
    echo "$dir is half-made (no working python or pip): making it again"
    rm -rf "$dir"
  fi
  [ -d "$dir" ] && return 0
  python_can_make_venvs || die "$PYTHON cannot make venvs (no ensurepip):
as root, run:  apt-get install -y python3-venv"
  "$PYTHON" -m venv "$dir" || { rm -rf "$dir"; die "$PYTHON -m venv $dir failed"; }
}

# The project installed (editable) into .venv with EXTRAS, again only when pyproject changes.
stamp_for() { echo ".venv/.installed-$(cat pyproject.toml <(echo "$1") | sha256sum | cut -c1-16)"; }

install_project() {
  local extras=$1 stamp
  make_venv .venv
  stamp=$(stamp_for "$extras")
  # (the dev install holds the plain one)
  [ -f "$stamp" ] || [ -f "$(stamp_for "[dev]")" ] && return 0
  # (this host's pip config may name local indexes that are absent: drop that noise)
  .venv/bin/python -m pip install -q --upgrade pip 2>&1 | { grep -v "^WARNING: Location" || true; }
  .venv/bin/python -m pip install -q -e ".$extras" 2>&1 | { grep -v "^WARNING: Location" || true; }
  touch "$stamp"
}

provision() {
  local profile=$1
  step "system packages"
  install_packages "$profile"
  step "Docker engine"
  start_docker
  docker version --format 'engine {{.Server.Version}} (API {{.Server.APIVersion}})'
  step "images"
  scripts/local-images.sh
  if [ "$profile" = test ]; then
    # The scheduler image's base (the in-container tests build the scheduler image on
    # it), and PostgreSQL for the compose test; made locally when no registry has them.
    docker image inspect python:3.11-slim >/dev/null 2>&1 || scripts/base-image.sh
    if ! docker image inspect postgres:16 >/dev/null 2>&1; then
      # An image made from an older entrypoint is made again.
      local want have
      want=$(sha256sum deploy/postgres-entrypoint.sh | cut -c1-16)
      have=$(docker image inspect local/postgres:15 \
        --format '{{index .Config.Labels "orchestrator.entrypoint"}}' 2>/dev/null || true)
      [ "$have" = "$want" ] || docker image rm -f local/postgres:15 >/dev/null 2>&1 || true
      scripts/postgres-image.sh
    fi
    step "PostgreSQL"
    [ "$(id -u)" = 0 ] || [ -n "${ORCHESTRATOR_TEST_POSTGRES_URL:-}" ] \
      || die "set ORCHESTRATOR_TEST_POSTGRES_URL, or run as root to start a local PostgreSQL"
    [ "$(id -u)" != 0 ] || start_postgres
    export ORCHESTRATOR_TEST_POSTGRES_URL=${ORCHESTRATOR_TEST_POSTGRES_URL:-postgresql://$PG_ROLE:$PG_PASSWORD@127.0.0.1:5432/$PG_DATABASE}
  fi
  step "Python environment"
  if [ "$profile" = test ]; then install_project "[dev]"; else install_project ""; fi
  .venv/bin/python --version
}
