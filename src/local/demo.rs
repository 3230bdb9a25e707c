//! `--seed-demo`: concepts with prerequisites, two milestones, two students, a teacher
//! and some practice history, so a newcomer sees something real at once. Tickets are
//! written as Trac's `Ticket.insert` writes them; practice goes through the real API.

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use sqlx::Connection;
use tower::ServiceExt;

use crate::error::{Error, Result};

pub const TEACHER: &str = "carol";

/// (summary, owner, milestone, prerequisites, threshold)
const CONCEPTS: &[(&str, &str, &str, &str, &str)] = &[
    (
        "Variables and expressions",
        "alice",
        "algebra-1",
        "[]",
        "0.8",
    ),
    ("Linear equations", "alice", "algebra-1", "[1]", "0.8"),
    ("Quadratic equations", "alice", "algebra-1", "[2]", "0.75"),
    ("Variables and expressions", "bob", "algebra-1", "[]", "0.8"),
    ("Linear equations", "bob", "algebra-1", "[4]", "0.8"),
    ("Limits", "alice", "calculus-1", "[3]", "0.85"),
    ("Derivatives", "alice", "calculus-1", "[6]", "0.85"),
];

/// The demo's WikiStart.
const FRONT_PAGE: &str = "= LearnTrac =
This Trac holds the class's **learning concepts**: each ticket is one concept a student \
practises until mastery, with a tutor to ask.

== Students ==
 * [/login Log in], then open the **Learn** tab: your concepts, practice and the tutor.
 * On a concept's ticket you can read it and add a comment for your teacher.
 * Concepts show only to people signed in: they name their students.

== Teachers ==
 * [/newticket New Ticket] creates a concept for a student: choose **assign** and type \
   the student's login, pick the unit (milestone), and list the concepts to master first \
   under Prerequisites (e.g. #2, #5). Make one ticket per student.
 * [/roadmap Roadmap] shows each unit's progress; [/query?status=!closed&group=owner \
   Concepts by student] lists who is working on what.

== Administrators ==
 * [/admin/general/perm Admin → Permissions]: add each teacher to the `teachers` group.
";

/// Practice history: (ticket, student, scores).
const PRACTICE: &[(i64, &str, &[f64])] = &[
    (1, "alice", &[0.6, 0.9, 1.0]),
    (2, "alice", &[0.5, 0.7]),
    (4, "bob", &[0.4]),
];

/// Trac's cached properties the demo's rows change.
const TRAC_CACHES: &[&str] = &[
    "trac.perm.DefaultPermissionStore._all_permissions",
    "trac.ticket.api.TicketSystem.fields",
    "trac.ticket.api.TicketSystem.custom_fields",
];

/// Trac's `trac.cache.key_to_id`: the row of a cached property in the `cache` table.
fn trac_cache_id(key: &str) -> i64 {
    let mut id = key.bytes().next().map_or(0, |b| i64::from(b) << 7);
    for b in key.bytes() {
        id = ((1_000_003 * id) & 0x7fff_ffff) ^ i64::from(b);
    }
    id ^ i64::try_from(key.len()).unwrap_or(0)
}

fn fail(e: impl std::fmt::Display) -> Error {
    Error::Local {
        component: "demo data".into(),
        message: e.to_string(),
    }
}

/// Seeds an empty database; returns false (and changes nothing) when tickets exist.
pub async fn seed(database_url: &str, service: &Router, token_secret: &str) -> Result<bool> {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(database_url)
        .await
        .map_err(fail)?;
    let tickets: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ticket")
        .fetch_one(&mut conn)
        .await
        .map_err(fail)?;
    if tickets > 0 {
        return Ok(false);
    }
    let now = learntrac_service::trac::now_micros();
    let mut tx = conn.begin().await.map_err(fail)?;
    for (name, due_days) in [("algebra-1", 30i64), ("calculus-1", 90)] {
        sqlx::query(
            "INSERT INTO milestone (name, due, completed, description) VALUES ($1, $2, 0, $3)",
        )
        .bind(name)
        .bind(now + due_days * 86_400_000_000)
        .bind(format!("Demo milestone {name}"))
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
    }
    for (i, (summary, owner, milestone, prereq, threshold)) in CONCEPTS.iter().enumerate() {
        let t = now + i as i64;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO ticket (type, time, changetime, component, priority, owner, reporter, cc, version, \
             milestone, status, resolution, summary, description, keywords) \
             VALUES ('task', $1, $2, '', 'major', $3, $4, '', '', $5, 'new', '', $6, $7, 'demo') RETURNING id",
        )
        .bind(t)
        .bind(t)
        .bind(*owner)
        .bind(TEACHER)
        .bind(*milestone)
        .bind(*summary)
        .bind(format!("Practise {summary} until mastery."))
        .fetch_one(&mut *tx)
        .await
        .map_err(fail)?;
        for (field, value) in [
            ("learning_difficulty", "2.0"),
            ("mastery_threshold", threshold),
            ("prerequisite_concepts", prereq),
        ] {
            sqlx::query("INSERT INTO ticket_custom (ticket, name, value) VALUES ($1, $2, $3)")
                .bind(id)
                .bind(field)
                .bind(value.to_string())
                .execute(&mut *tx)
                .await
                .map_err(fail)?;
        }
    }
    // Roles as a school sets them up (accounts.rs makes the logins): the teacher in the
    // `teachers` group, which holds TICKET_ADMIN (shared.ini's workflow and the roles
    // plugin give it the teacher's actions); the administrator with TRAC_ADMIN; students
    // need nothing beyond what every signed-in user has.
    for (who, action) in [
        (TEACHER, "teachers"),
        ("teachers", "TICKET_ADMIN"),
        ("admin", "TRAC_ADMIN"),
    ] {
        // The Trac container may have granted some already (start-trac.sh).
        sqlx::query(
            "INSERT INTO permission (username, action) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(who)
        .bind(action)
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
    }
    // Trac's stock placeholders would sit beside the demo's milestones.
    for sql in [
        "DELETE FROM milestone WHERE name IN ('milestone1', 'milestone2', 'milestone3', 'milestone4')",
        "DELETE FROM component WHERE name IN ('component1', 'component2')",
        "DELETE FROM version WHERE name IN ('1.0', '2.0')",
    ] {
        sqlx::query(sql).execute(&mut *tx).await.map_err(fail)?;
    }
    // The front page says what this Trac is and where each person starts (a new version
    // of WikiStart, so Trac's own stays in its history).
    let version: Option<i64> =
        sqlx::query_scalar("SELECT MAX(version) FROM wiki WHERE name = 'WikiStart'")
            .fetch_one(&mut *tx)
            .await
            .map_err(fail)?;
    sqlx::query(
        "INSERT INTO wiki (name, version, time, author, text, comment, readonly) \
         VALUES ('WikiStart', $1, $2, $3, $4, 'LearnTrac demo', 0)",
    )
    .bind(version.unwrap_or(0) + 1)
    .bind(now)
    .bind(TEACHER)
    .bind(FRONT_PAGE)
    .execute(&mut *tx)
    .await
    .map_err(fail)?;
    // A Trac already running (the Docker runtime starts it first: it creates the schema)
    // caches permissions and ticket fields (milestones among them) until their row in the
    // `cache` table moves on, as Trac's own writes make it.
    // (A row Trac has never written reads as generation -1; a new one starts past 0.)
    for key in TRAC_CACHES {
        let id = trac_cache_id(key);
        let exists = sqlx::query("SELECT generation FROM cache WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(fail)?
            .is_some();
        let sql = if exists {
            "UPDATE cache SET generation = generation + 1 WHERE id = $1 AND key = $2"
        } else {
            "INSERT INTO cache (id, generation, key) VALUES ($1, 1, $2)"
        };
        sqlx::query(sql)
            .bind(id)
            .bind(*key)
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
    }
    tx.commit().await.map_err(fail)?;
    drop(conn);
    for (ticket, student, scores) in PRACTICE {
        let token =
            learntrac_service::auth::issue_token(token_secret, student, 300).map_err(fail)?;
        for score in *scores {
            let req = Request::post(format!("/api/LearnTrac/concepts/{ticket}/practice"))
                .header("content-type", "application/json")
                .header("authorization", format!("Bearer {token}"))
                .body(Body::from(format!("{{\"score\": {score}}}")))
                .map_err(fail)?;
            let resp = service
                .clone()
                .oneshot(req)
                .await
                .map_err(|never| match never {})?;
            if !resp.status().is_success() {
                return Err(fail(format!(
                    "practice on #{ticket} answered {}",
                    resp.status()
                )));
            }
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::trac_cache_id;

    #[test]
    fn cache_ids_are_tracs() {
        // Computed by Trac 1.6's own trac.cache.key_to_id.
        for (key, id) in [
            (
                "trac.perm.DefaultPermissionStore._all_permissions",
                1_722_364_385,
            ),
            ("trac.ticket.api.TicketSystem.fields", 660_951_007),
            ("trac.ticket.api.TicketSystem.custom_fields", 1_380_700_524),
        ] {
            assert_eq!(trac_cache_id(key), id, "{key}");
        }
    }
}
