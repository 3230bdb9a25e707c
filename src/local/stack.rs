//! What the Docker runtime runs: PostgreSQL and Redis from the images `local:` names, and
//! Trac from its own image, all on the stack's network.

use super::containers::Component;
use crate::config::Environment;

/// Works with the official `postgres` image and with Debian's packaged PostgreSQL alike:
/// the cluster is made on first start (password auth over TCP), then the server runs as
/// the `postgres` user.
const POSTGRES_START: &str = r#"set -e
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
mkdir -p "$PGDATA" /var/run/postgresql
chown -R postgres:postgres "$PGDATA" /var/run/postgresql
chmod 700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    printf '%s\n' "$POSTGRES_PASSWORD" > /tmp/pwfile && chown postgres /tmp/pwfile
    su postgres -s /bin/sh -c "$bin/initdb -D '$PGDATA' -U '$POSTGRES_USER' --pwfile=/tmp/pwfile --auth-local=trust --auth-host=scram-sha-256 >/dev/null"
    rm -f /tmp/pwfile
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    su postgres -s /bin/sh -c "$bin/pg_ctl -D '$PGDATA' -o \"-c listen_addresses=''\" -w start >/dev/null"
    su postgres -s /bin/sh -c "psql -q -U '$POSTGRES_USER' -d postgres -c 'CREATE DATABASE \"$POSTGRES_DB\"'"
    su postgres -s /bin/sh -c "$bin/pg_ctl -D '$PGDATA' -m fast -w stop >/dev/null"
    echo "learntrac: created the database cluster"
fi
exec su postgres -s /bin/sh -c "exec $bin/postgres -D '$PGDATA' -c listen_addresses='*'"
"#;

pub const DATABASE: &str = "learntrac";
pub const DATABASE_USER: &str = "learntrac";

pub fn postgres(env: &Environment, password: &str) -> Component {
    Component {
        name: "postgres".into(),
        image: env.local.postgres_image.clone(),
        env: vec![
            format!("POSTGRES_USER={DATABASE_USER}"),
            format!("POSTGRES_PASSWORD={password}"),
            format!("POSTGRES_DB={DATABASE}"),
            "PGDATA=/var/lib/postgresql/data/pgdata".into(),
        ],
        entrypoint: Some(vec!["/bin/sh".into(), "-c".into(), POSTGRES_START.into()]),
        cmd: None,
        port: 5432,
        volume: Some("/var/lib/postgresql/data".into()),
        health: Some(format!(
            "pg_isready -q -h 127.0.0.1 -U {DATABASE_USER} -d {DATABASE}"
        )),
    }
}

pub fn redis(env: &Environment) -> Component {
    Component {
        name: "redis".into(),
        image: env.local.redis_image.clone(),
        env: Vec::new(),
        entrypoint: None,
        cmd: Some(
            [
                "redis-server",
                "--bind",
                "0.0.0.0",
                "--protected-mode",
                "no",
                "--appendonly",
                "yes",
                "--dir",
                "/data",
            ]
            .iter()
            .map(|s| (*s).to_string())
            .collect(),
        ),
        port: 6379,
        volume: Some("/data".into()),
        health: Some("redis-cli ping | grep -q PONG".into()),
    }
}

/// The database settings as the ECS task definitions pass them (the password separately,
/// as the SSM secret arrives), so containers start here the way they start in AWS.
fn database_env(stack: &str, password: &str) -> Vec<String> {
    vec![
        format!("DATABASE_HOST={stack}-postgres"),
        "DATABASE_PORT=5432".into(),
        format!("DATABASE_NAME={DATABASE}"),
        format!("DATABASE_USER={DATABASE_USER}"),
        format!("DATABASE_PASSWORD={password}"),
    ]
}

/// Trac from the image built from `trac-legacy/`; its own HEALTHCHECK command is kept.
/// `htdigest`: the login lines, as production's TRAC_HTDIGEST secret (none: no logins).
pub fn trac(
    env: &Environment,
    image: &str,
    stack: &str,
    password: &str,
    htdigest: &str,
) -> Component {
    let mut vars = vec![
        "TRAC_ENV=/var/trac/projects".into(),
        format!("PORT={}", env.services.trac.port),
    ];
    if !htdigest.is_empty() {
        vars.push(format!("TRAC_HTDIGEST={htdigest}"));
    }
    Component {
        name: "trac".into(),
        image: image.to_string(),
        env: [database_env(stack, password), vars].concat(),
        entrypoint: None,
        cmd: None,
        port: env.services.trac.port,
        volume: Some("/var/trac/projects".into()),
        health: None,
    }
}

/// The LearnTrac service from its own image (`local up --service container`).
pub fn learntrac(
    env: &Environment,
    image: &str,
    stack: &str,
    password: &str,
    token_secret: &str,
) -> Component {
    Component {
        name: "learntrac".into(),
        image: image.to_string(),
        env: [
            // The chat and voice settings first, as the in-process service gets them; what
            // the stack decides after them wins.
            super::embedded::task_variables(env)
                .0
                .into_iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect(),
            database_env(stack, password),
            vec![
                format!("REDIS_URL=redis://{stack}-redis:6379"),
                format!("LEARNTRAC_TOKEN_SECRET={token_secret}"),
                format!("PORT={}", env.services.learntrac.port),
                "LOG_FORMAT=json".into(),
            ],
        ]
        .concat(),
        entrypoint: None,
        cmd: None,
        port: env.services.learntrac.port,
        volume: None,
        health: None,
    }
}
