//! Who is asking, in Trac's own terms: its login cookie (`auth_cookie`) and its
//! permission table, groups included.

use std::collections::HashSet;

use crate::db::Db;

/// The user a `trac_auth` cookie belongs to.
pub async fn user_for_cookie(db: &Db, cookie: &str) -> Result<Option<String>, sqlx::Error> {
    db.run(async |c| {
        sqlx::query_scalar::<_, String>(
            "SELECT name FROM auth_cookie WHERE cookie = $1 ORDER BY time DESC",
        )
        .bind(cookie)
        .fetch_optional(c)
        .await
    })
    .await
}

/// Whether `user` holds TICKET_ADMIN (or TRAC_ADMIN, which implies it), directly or
/// through groups, as Trac's DefaultPermissionStore resolves them: every user is also
/// `authenticated` and `anonymous`; an action in lower case names a group.
pub async fn is_ticket_admin(db: &Db, user: &str) -> Result<bool, sqlx::Error> {
    let rows = db
        .run(async |c| {
            sqlx::query_as::<_, (String, String)>("SELECT username, action FROM permission")
                .fetch_all(c)
                .await
        })
        .await?;
    let mut subjects: HashSet<&str> = HashSet::from([user, "authenticated", "anonymous"]);
    loop {
        let before = subjects.len();
        for (who, action) in &rows {
            if subjects.contains(who.as_str()) && !is_permission(action) {
                subjects.insert(action.as_str());
            }
        }
        if subjects.len() == before {
            break;
        }
    }
    Ok(rows.iter().any(|(who, action)| {
        subjects.contains(who.as_str()) && matches!(action.as_str(), "TICKET_ADMIN" | "TRAC_ADMIN")
    }))
}

/// Trac's rule: all-uppercase actions are permissions, anything else a group.
fn is_permission(action: &str) -> bool {
    action.chars().any(|c| c.is_ascii_alphabetic())
        && !action.chars().any(|c| c.is_ascii_lowercase())
}
