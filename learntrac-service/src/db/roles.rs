//! `learntrac-service db-roles`: each service's own database role, made (or brought up to
//! date) with the master user before either service connects — in AWS by a short-lived
//! container that starts before the app container of each task, the only holder of the
//! master password.
//!
//! - Trac's role owns Trac's tables (it creates and upgrades them).
//! - The service's role owns LearnTrac's tables (its migrations make them) and may read and
//!   write Trac's rows — never change their tables — as the service treats tickets as
//!   concepts. Tables Trac makes later are covered by default privileges.
//! - Tables an earlier stack made as the master user move to the role that uses them.
//!
//! Passwords travel as SCRAM-SHA-256 verifiers computed here: the plain password never
//! reaches the server, so no statement log (RDS exports PostgreSQL's log to CloudWatch, and
//! a failing statement is logged whole) can hold it.

use std::collections::HashMap;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, Connection};

use crate::config::ConfigError;

/// Serialises runs: every task of both services runs this as it starts.
const LOCK_KEY: i64 = 0x4c54_524f_4c45; // "LTROLE"

/// One role: its name and the password its service logs in with.
pub struct Role {
    pub name: String,
    pub password: String,
}

pub struct Roles {
    pub trac: Role,
    pub service: Role,
}

/// Trac's role and the service's, unless TRAC_DB_USER / SERVICE_DB_USER name others.
pub const TRAC_ROLE: &str = "trac";
pub const SERVICE_ROLE: &str = "learntrac_service";

impl Roles {
    /// TRAC_DB_USER, TRAC_DB_PASSWORD, SERVICE_DB_USER, SERVICE_DB_PASSWORD.
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let get = |k: &str| vars.get(k).filter(|v| !v.is_empty()).cloned();
        let role = |user: &'static str, password: &'static str, default: &str| {
            let name = get(user).unwrap_or_else(|| default.to_string());
            if !plain_name(&name) {
                return Err(ConfigError {
                    var: user,
                    problem: format!(
                        "`{name}` is not a plain role name (lower-case letters, digits, _; up to 63)"
                    ),
                });
            }
            let password = get(password).ok_or(ConfigError {
                var: password,
                problem: "not set".into(),
            })?;
            Ok(Role { name, password })
        };
        let roles = Roles {
            trac: role("TRAC_DB_USER", "TRAC_DB_PASSWORD", TRAC_ROLE)?,
            service: role("SERVICE_DB_USER", "SERVICE_DB_PASSWORD", SERVICE_ROLE)?,
        };
        if roles.trac.name == roles.service.name {
            return Err(ConfigError {
                var: "SERVICE_DB_USER",
                problem: "is Trac's role too: each service needs its own".into(),
            });
        }
        Ok(roles)
    }
}

fn plain_name(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// What a run did, for its one log line.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Done {
    pub created: Vec<String>,
    /// Tables (and sequences) moved from the master user to the role that uses them.
    pub moved: usize,
}

/// Makes both roles (or sets their passwords) and their privileges, connected as the
/// master user through `master_url`. Idempotent; concurrent runs queue on a lock.
pub async fn ensure(master_url: &str, roles: &Roles) -> Result<Done, sqlx::Error> {
    sqlx::any::install_default_drivers();
    let mut conn = AnyConnection::connect(master_url).await?;
    let mut tx = conn.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(LOCK_KEY)
        .execute(&mut *tx)
        .await?;
    let mut done = Done::default();
    for role in [&roles.trac, &roles.service] {
        let exists = sqlx::query("SELECT 1 FROM pg_roles WHERE rolname = $1")
            .bind(&role.name)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        let verb = if exists { "ALTER" } else { "CREATE" };
        let statement: String = sqlx::query_scalar(
            // A new role has no other attribute (not a superuser, creates nothing); only
            // a superuser may even name those attributes in ALTER ROLE.
            "SELECT format('%s ROLE %I WITH LOGIN PASSWORD %L', $1, $2, $3)",
        )
        .bind(verb)
        .bind(&role.name)
        .bind(scram_verifier(&role.password, &salt()?))
        .fetch_one(&mut *tx)
        .await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
            .execute(&mut *tx)
            .await?;
        if !exists {
            done.created.push(role.name.clone());
        }
    }
    // The master user acts through both roles (moving tables to them, granting on Trac's
    // behalf); RDS's master is not a superuser.
    let grants: Vec<String> = sqlx::query_scalar(
        "SELECT unnest(ARRAY[
            format('GRANT %I TO CURRENT_USER', $1),
            format('GRANT %I TO CURRENT_USER', $2),
            format('GRANT CONNECT ON DATABASE %I TO %I, %I', current_database(), $1, $2),
            format('GRANT USAGE, CREATE ON SCHEMA public TO %I, %I', $1, $2)
        ])",
    )
    .bind(&roles.trac.name)
    .bind(&roles.service.name)
    .fetch_all(&mut *tx)
    .await?;
    for g in grants {
        sqlx::raw_sql(sqlx::AssertSqlSafe(g))
            .execute(&mut *tx)
            .await?;
    }
    // Tables an earlier stack made as the master user: LearnTrac's (and sqlx's record of
    // its migrations) to the service, the rest — Trac's — to Trac. Sequences owned by a
    // column follow their table.
    let moves: Vec<String> = sqlx::query_scalar(
        "SELECT format('ALTER %s %I OWNER TO %I',
                       CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW' ELSE 'TABLE' END,
                       c.relname,
                       CASE WHEN c.relname LIKE 'learntrac\\_%' OR c.relname LIKE '\\_sqlx\\_migrations%'
                            THEN $2 ELSE $1 END)
         FROM pg_class c
         JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public'
           AND c.relkind IN ('r', 'p', 'v', 'S')
           AND pg_get_userbyid(c.relowner) = current_user
           AND NOT EXISTS (SELECT 1 FROM pg_depend d
                           WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                             AND d.deptype IN ('a', 'i'))
         ORDER BY c.relkind <> 'S' DESC, c.relname",
    )
    .bind(&roles.trac.name)
    .bind(&roles.service.name)
    .fetch_all(&mut *tx)
    .await?;
    done.moved = moves.len();
    for m in moves {
        sqlx::raw_sql(sqlx::AssertSqlSafe(m))
            .execute(&mut *tx)
            .await?;
    }
    // The service reads and writes Trac's rows: those of tables there now, and of tables
    // Trac makes later.
    let privileges: Vec<String> = sqlx::query_scalar(
        "SELECT format('GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE %I TO %I', c.relname, $2)
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
           AND pg_get_userbyid(c.relowner) = $1
         UNION ALL
         SELECT format('GRANT USAGE, SELECT, UPDATE ON SEQUENCE %I TO %I', c.relname, $2)
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND c.relkind = 'S'
           AND pg_get_userbyid(c.relowner) = $1
         UNION ALL
         SELECT format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO %I', $1, $2)
         UNION ALL
         SELECT format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA public GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO %I', $1, $2)",
    )
    .bind(&roles.trac.name)
    .bind(&roles.service.name)
    .fetch_all(&mut *tx)
    .await?;
    for p in privileges {
        sqlx::raw_sql(sqlx::AssertSqlSafe(p))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    let _ = conn.close().await;
    Ok(done)
}

/// 16 random bytes from the kernel.
fn salt() -> Result<[u8; 16], sqlx::Error> {
    let mut salt = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut salt))
        .map_err(sqlx::Error::Io)?;
    Ok(salt)
}

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length; this cannot fail.
    let mut mac = HmacSha256::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// PostgreSQL's stored form of a password (RFC 5802/7677 as `pg_authid` keeps it):
/// `SCRAM-SHA-256$4096:salt$StoredKey:ServerKey`, base64 each.
pub fn scram_verifier(password: &str, salt: &[u8]) -> String {
    use base64::Engine;
    const ITERATIONS: u32 = 4096;
    // PBKDF2-HMAC-SHA-256, one block: U1 = HMAC(P, salt || 1), Ui = HMAC(P, Ui-1), XOR all.
    let mut first = salt.to_vec();
    first.extend_from_slice(&1u32.to_be_bytes());
    let mut u = hmac(password.as_bytes(), &first);
    let mut salted = u;
    for _ in 1..ITERATIONS {
        u = hmac(password.as_bytes(), &u);
        for (s, b) in salted.iter_mut().zip(u) {
            *s ^= b;
        }
    }
    let client_key = hmac(&salted, b"Client Key");
    let stored_key = Sha256::digest(client_key);
    let server_key = hmac(&salted, b"Server Key");
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    format!(
        "SCRAM-SHA-256${ITERATIONS}:{}${}:{}",
        b64(salt),
        b64(&stored_key),
        b64(&server_key)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifier_matches_postgresqls() {
        // Computed independently with Python's hashlib.pbkdf2_hmac and hmac (the server's
        // acceptance of these verifiers is tested against PostgreSQL in tests/db_roles.rs).
        let salt = [
            0x5b, 0x1f, 0x0c, 0xf7, 0x2e, 0x1a, 0x8b, 0x3d, 0x9c, 0x66, 0x2f, 0x84, 0x03, 0x10,
            0x48, 0x7d,
        ];
        assert_eq!(
            scram_verifier("pencil", &salt),
            "SCRAM-SHA-256$4096:Wx8M9y4aiz2cZi+EAxBIfQ==$vBcOIrZ59Wef8nOILQiOp150jh7ytO071+9KKDdKJx4=:PQrc/9jdP6eoEqW2lgNb1sh5LM93Ysz/RGnsTkqgFZU="
        );
    }

    #[test]
    fn role_names_and_passwords_are_checked() {
        let vars = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let ok = Roles::from_vars(&vars(&[
            ("TRAC_DB_PASSWORD", "a"),
            ("SERVICE_DB_PASSWORD", "b"),
        ]))
        .expect("defaults");
        assert_eq!(
            (ok.trac.name.as_str(), ok.service.name.as_str()),
            (TRAC_ROLE, SERVICE_ROLE)
        );
        for (pairs, var) in [
            (&[("SERVICE_DB_PASSWORD", "b")][..], "TRAC_DB_PASSWORD"),
            (
                &[
                    ("TRAC_DB_PASSWORD", "a"),
                    ("SERVICE_DB_PASSWORD", "b"),
                    ("TRAC_DB_USER", "Robert\"; DROP"),
                ][..],
                "TRAC_DB_USER",
            ),
            (
                &[
                    ("TRAC_DB_PASSWORD", "a"),
                    ("SERVICE_DB_PASSWORD", "b"),
                    ("SERVICE_DB_USER", "trac"),
                ][..],
                "SERVICE_DB_USER",
            ),
        ] {
            let e = Roles::from_vars(&vars(pairs)).err().map(|e| e.var);
            assert_eq!(e, Some(var), "{pairs:?}");
        }
    }
}
