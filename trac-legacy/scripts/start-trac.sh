#!/bin/sh
# Starts Trac in a container: creates the environment (or attaches to a database another
# task already initialised), upgrades it, deploys static resources and runs tracd.
set -eu

TRAC_ENV=${TRAC_ENV:-/var/trac/projects}
export TRAC_ENV
PORT=${PORT:-8000}
PROJECT_NAME=${PROJECT_NAME:-LearnTrac}

# The password arrives as an ECS secret (DATABASE_PASSWORD) and stays in this process's
# environment as libpq's PGPASSWORD: the URL Trac keeps in trac.ini (on EFS, and in its
# backups) names no password. DATABASE_URL, when set, wins (local runs); a password in it
# moves to PGPASSWORD the same way. Python 2 (the image) and 3 (the embedded runtime) alike.
# To run trac-admin in a task: PGPASSWORD="$DATABASE_PASSWORD" trac-admin /var/trac/projects …
split_url='import os, sys
try:
    from urllib import quote, unquote
    from urlparse import urlsplit
except ImportError:
    from urllib.parse import quote, unquote, urlsplit
q = lambda s: quote(s, "")
if os.environ.get("DATABASE_URL"):
    u = urlsplit(os.environ["DATABASE_URL"])
    user, password = u.username or "", u.password
    host, port, name = u.hostname or "", u.port or 5432, u.path.lstrip("/")
    name += "?" + u.query if u.query else ""
    password = unquote(password) if password is not None else None
    user = unquote(user)
else:
    user, password = os.environ["DATABASE_USER"], os.environ["DATABASE_PASSWORD"]
    host, port, name = (os.environ["DATABASE_HOST"], os.environ.get("DATABASE_PORT", "5432"),
                        os.environ["DATABASE_NAME"])
if sys.argv[1] == "url":
    print("postgres://%s@%s:%s/%s" % (q(user), host, port, name))
elif password is not None:
    sys.stdout.write(password)'
DATABASE_URL_PLAIN=$(python -c "$split_url" url)
PGPASSWORD=$(python -c "$split_url" password)
DATABASE_URL=$DATABASE_URL_PLAIN
unset DATABASE_URL_PLAIN DATABASE_PASSWORD
export DATABASE_URL
if [ -n "$PGPASSWORD" ]; then export PGPASSWORD; else unset PGPASSWORD; fi

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

# Roles (trac-legacy/plugins/learntrac_roles.py): the `teachers` group holds TICKET_ADMIN,
# and the first login line - bootstrap's --trac-admin - administers Trac (TRAC_ADMIN), so
# that person can put teachers in the group on /admin/general/perm. Granted once, under
# the lock; nothing is taken away from what an administrator set.
first_login=""
if [ -n "${TRAC_HTDIGEST:-}" ]; then
    first_login=$(printf '%s\n' "$TRAC_HTDIGEST" | head -n 1 | cut -d: -f1)
fi
python - "$first_login" <<'PY'
import os, sys
from trac.env import Environment
from trac.perm import PermissionSystem
perms = PermissionSystem(Environment(os.environ["TRAC_ENV"]))
have = set(tuple(p) for p in perms.get_all_permissions())
want = [("teachers", "TICKET_ADMIN")]
if sys.argv[1]:
    want.append((sys.argv[1], "TRAC_ADMIN"))
for who, action in want:
    if (who, action) not in have:
        perms.grant_permission(who, action)
        print("start-trac: granted %s to %s" % (action, who))
PY
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
