#!/bin/sh
# Starts Trac in a container: creates the environment (or attaches to a database another
# task already initialised), upgrades it, deploys static resources and runs tracd.
set -eu

TRAC_ENV=${TRAC_ENV:-/var/trac/projects}
export TRAC_ENV
PORT=${PORT:-8000}
PROJECT_NAME=${PROJECT_NAME:-LearnTrac}

# The password arrives as an ECS secret (DATABASE_PASSWORD); the URL is composed here so
# it never appears in the task definition. DATABASE_URL, when set, wins (local runs).
# Python 2 (the image) and 3 (the embedded runtime) alike.
if [ -z "${DATABASE_URL:-}" ]; then
    DATABASE_URL=$(python -c 'import os
try:
    from urllib import quote
except ImportError:
    from urllib.parse import quote
q = lambda k: quote(os.environ[k], "")
print("postgres://%s:%s@%s:%s/%s" % (q("DATABASE_USER"), q("DATABASE_PASSWORD"),
      os.environ["DATABASE_HOST"], os.environ.get("DATABASE_PORT", "5432"), os.environ["DATABASE_NAME"]))')
fi
export DATABASE_URL

# TLS to the database: Trac's postgres backend passes only host, port, user and password
# to libpq, so the TLS settings travel as libpq's own variables, which every connection
# (this script's, trac-admin's, tracd's) reads.
if [ -n "${DATABASE_SSLMODE:-}" ]; then export PGSSLMODE="$DATABASE_SSLMODE"; fi
if [ -n "${DATABASE_SSLROOTCERT:-}" ]; then export PGSSLROOTCERT="$DATABASE_SSLROOTCERT"; fi

# The environment may be shared (EFS in AWS, a volume locally) by several Trac tasks that
# start at once: one creates it, the others wait for it and find it there.
mkdir -p "$TRAC_ENV"
exec 9>>"$TRAC_ENV/.start.lock"
flock 9

# Is Trac's schema already in the database? (A restarted or second task finds it there.)
# A database that cannot be reached stops the start with libpq's reason on one line.
initialised=$(python -c 'import os, sys, psycopg2
try:
    conn = psycopg2.connect(os.environ["DATABASE_URL"])
except psycopg2.Error as e:
    sys.stderr.write("start-trac: cannot connect to the database (sslmode=%s): %s\n"
                     % (os.environ.get("PGSSLMODE", "prefer"), str(e).strip().replace("\n", " ")))
    sys.exit(1)
cur = conn.cursor()
cur.execute("SELECT to_regclass(%s) IS NOT NULL", ("system",))
print("yes" if cur.fetchone()[0] else "no")')

if [ ! -f "$TRAC_ENV/VERSION" ]; then
    if [ "$initialised" = "no" ]; then
        echo "start-trac: creating Trac environment $TRAC_ENV and its schema"
        # initenv wants an empty folder, and the shared one holds the lock.
        fresh="$(mktemp -d /tmp/initenv.XXXXXX)/env"
        trac-admin "$fresh" initenv "$PROJECT_NAME" "$DATABASE_URL" --inherit=/etc/trac/shared.ini
        cp -R "$fresh/." "$TRAC_ENV/"
        rm -rf "$(dirname "$fresh")"
    else
        echo "start-trac: attaching $TRAC_ENV to the existing Trac database"
        mkdir -p "$TRAC_ENV/conf" "$TRAC_ENV/log" "$TRAC_ENV/htdocs" "$TRAC_ENV/plugins" \
                 "$TRAC_ENV/templates" "$TRAC_ENV/files"
        umask 077
        cat > "$TRAC_ENV/conf/trac.ini" <<INI
[inherit]
file = /etc/trac/shared.ini

[project]
name = $PROJECT_NAME
INI
        umask 022
        echo "Trac Environment Version 1" > "$TRAC_ENV/VERSION"
    fi
fi

# Settings that come from the task, written at every start: the database (a rotated
# password reaches Trac with the next task) and, behind the load balancer's TLS, the
# public URL — redirects to it and cookies marked Secure.
python - <<'PY'
import os
from trac.config import Configuration
c = Configuration(os.path.join(os.environ["TRAC_ENV"], "conf", "trac.ini"))
c.set("trac", "database", os.environ["DATABASE_URL"])
base = os.environ.get("TRAC_BASE_URL", "")
if base:
    c.set("trac", "base_url", base)
    c.set("trac", "use_base_url_for_redirect", "true")
    c.set("trac", "secure_cookies", "true" if base.startswith("https://") else "false")
c.save()
PY
chmod 600 "$TRAC_ENV/conf/trac.ini"

cp -R /opt/trac/plugins/. "$TRAC_ENV/plugins/" 2>/dev/null || true
rm -f "$TRAC_ENV/plugins/README.md"

trac-admin "$TRAC_ENV" upgrade
flock -u 9
exec 9>&-
trac-admin "$TRAC_ENV" deploy /var/trac/static >/dev/null

# Logins use HTTP digest auth when the task has a TRAC_HTDIGEST secret (htdigest lines,
# realm LearnTrac); without it Trac serves anonymous users only.
set --
if [ -n "${TRAC_HTDIGEST:-}" ]; then
    umask 077
    printf '%s\n' "$TRAC_HTDIGEST" > /var/trac/htdigest
    set -- --auth="*,/var/trac/htdigest,LearnTrac"
fi

exec tracd --single-env --hostname 0.0.0.0 --port "$PORT" "$@" "$TRAC_ENV"
