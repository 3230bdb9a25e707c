//! The bridge into Trac's own tables (database version 45: Trac 1.4 and 1.6). A concept is
//! a ticket; its learning settings are ticket custom fields declared in trac.ini.
//! Writes follow `trac.ticket.model.Ticket.save_changes` step for step, so Trac reads
//! back exactly what it would have written itself.

pub mod permissions;

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};
// Dynamic SQL here only ever adds placeholders and fixed column lists, never values.
use sqlx::{AnyConnection, AssertSqlSafe, FromRow};

use crate::db::{Backend, Db};

pub const LEARNING_DIFFICULTY: &str = "learning_difficulty";
pub const MASTERY_THRESHOLD: &str = "mastery_threshold";
pub const PREREQUISITES: &str = "prerequisite_concepts";
pub const DEFAULT_DIFFICULTY: f64 = 2.0;
pub const DEFAULT_THRESHOLD: f64 = 0.8;
/// The status LearnTrac's workflow (trac-legacy/config/shared.ini) adds to Trac's.
pub const MASTERED: &str = "mastered";

/// Default value of each learning field as trac.ini declares it; Trac writes no change
/// row when a field first stored equals its default.
fn custom_default(name: &str) -> Option<&'static str> {
    match name {
        LEARNING_DIFFICULTY => Some("2.0"),
        MASTERY_THRESHOLD => Some("0.8"),
        PREREQUISITES => Some(""),
        _ => None,
    }
}

/// Microseconds since the epoch: Trac's unit for ticket and change times.
pub fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[derive(Debug, Clone, FromRow)]
struct TicketRow {
    id: i64,
    r#type: Option<String>,
    time: Option<i64>,
    changetime: Option<i64>,
    component: Option<String>,
    priority: Option<String>,
    owner: Option<String>,
    reporter: Option<String>,
    milestone: Option<String>,
    status: Option<String>,
    resolution: Option<String>,
    summary: Option<String>,
    description: Option<String>,
    keywords: Option<String>,
}

/// Ticket columns, for queries that name the ticket table `t`.
const TICKET_COLUMNS: &str = "CAST(t.id AS BIGINT) AS id, t.type, t.time, t.changetime, t.component, \
     t.priority, t.owner, t.reporter, t.milestone, t.status, t.resolution, t.summary, t.description, t.keywords";

/// A learning concept: a Trac ticket and its learning fields.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Concept {
    pub id: i64,
    pub summary: String,
    pub description: String,
    pub status: String,
    pub resolution: String,
    pub owner: String,
    pub reporter: String,
    pub milestone: String,
    pub component: String,
    pub priority: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub keywords: String,
    /// Microseconds since the epoch, as Trac stores them.
    pub time: i64,
    pub changetime: i64,
    pub custom_fields: BTreeMap<String, String>,
    #[serde(serialize_with = "crate::numbers::ser")]
    pub learning_difficulty: f64,
    #[serde(serialize_with = "crate::numbers::ser")]
    pub mastery_threshold: f64,
    pub prerequisites: Vec<i64>,
}

impl Concept {
    fn from_parts(t: TicketRow, custom_fields: BTreeMap<String, String>) -> Self {
        let num = |name: &str, default: f64| {
            custom_fields
                .get(name)
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|v| v.is_finite())
                .unwrap_or(default)
        };
        let learning_difficulty = num(LEARNING_DIFFICULTY, DEFAULT_DIFFICULTY);
        let mastery_threshold = num(MASTERY_THRESHOLD, DEFAULT_THRESHOLD).clamp(0.0, 1.0);
        let prerequisites = custom_fields
            .get(PREREQUISITES)
            .map(|v| parse_prerequisites(v))
            .unwrap_or_default();
        let s = |v: Option<String>| v.unwrap_or_default();
        Concept {
            id: t.id,
            summary: s(t.summary),
            description: s(t.description),
            status: s(t.status),
            resolution: s(t.resolution),
            owner: s(t.owner),
            reporter: s(t.reporter),
            milestone: s(t.milestone),
            component: s(t.component),
            priority: s(t.priority),
            kind: s(t.r#type),
            keywords: s(t.keywords),
            time: t.time.unwrap_or_default(),
            changetime: t.changetime.unwrap_or_default(),
            custom_fields,
            learning_difficulty,
            mastery_threshold,
            prerequisites,
        }
    }

    pub fn is_complete(&self) -> bool {
        is_complete(&self.status)
    }
}

/// Closed or mastered: practice no longer moves the ticket.
pub fn is_complete(status: &str) -> bool {
    status == "closed" || status == MASTERED
}

/// `[1, 2]` as the plan specifies; `#1, #2` and `1 2` as people type them in Trac's form.
pub fn parse_prerequisites(v: &str) -> Vec<i64> {
    if let Ok(ids) = serde_json::from_str::<Vec<i64>>(v) {
        return ids;
    }
    v.split(|c: char| c == ',' || c.is_whitespace() || c == '[' || c == ']')
        .filter_map(|p| p.trim().trim_start_matches('#').parse().ok())
        .collect()
}

async fn custom_fields(
    db: &Db,
    ids: &[i64],
) -> Result<BTreeMap<i64, BTreeMap<String, String>>, sqlx::Error> {
    let mut out: BTreeMap<i64, BTreeMap<String, String>> = BTreeMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let placeholders: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT CAST(ticket AS BIGINT), name, value FROM ticket_custom WHERE ticket IN ({})",
        placeholders.join(", ")
    );
    let rows = db
        .run(async |c| {
            let mut q = sqlx::query_as::<_, (i64, String, Option<String>)>(AssertSqlSafe(sql));
            for id in ids {
                q = q.bind(*id);
            }
            q.fetch_all(c).await
        })
        .await?;
    for (ticket, name, value) in rows {
        out.entry(ticket)
            .or_default()
            .insert(name, value.unwrap_or_default());
    }
    Ok(out)
}

#[derive(FromRow)]
struct TicketWithCustom {
    #[sqlx(flatten)]
    ticket: TicketRow,
    custom_name: Option<String>,
    custom_value: Option<String>,
}

/// Concept from ticket `id`, or None when there is no such ticket. One round trip: the
/// ticket joined with its custom fields, one row per field.
pub async fn concept(db: &Db, id: i64) -> Result<Option<Concept>, sqlx::Error> {
    db.run(async |c| concept_on(c, id).await).await
}

async fn concept_on(conn: &mut AnyConnection, id: i64) -> Result<Option<Concept>, sqlx::Error> {
    // Built once: every practice attempt reads its concept with it.
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {TICKET_COLUMNS}, c.name AS custom_name, c.value AS custom_value \
             FROM ticket t LEFT JOIN ticket_custom c ON c.ticket = t.id WHERE t.id = $1"
        )
    });
    let sql: &'static str = &SQL;
    let rows = sqlx::query_as::<_, TicketWithCustom>(sql)
        .bind(id)
        .fetch_all(conn)
        .await?;
    let mut custom = BTreeMap::new();
    let mut ticket = None;
    for row in rows {
        if let Some(name) = row.custom_name {
            custom.insert(name, row.custom_value.unwrap_or_default());
        }
        ticket.get_or_insert(row.ticket);
    }
    Ok(ticket.map(|t| Concept::from_parts(t, custom)))
}

/// Tickets owned by `student`, optionally only those in `statuses`.
pub async fn student_concepts(
    db: &Db,
    student: &str,
    statuses: &[String],
) -> Result<Vec<Concept>, sqlx::Error> {
    let mut sql = format!("SELECT {TICKET_COLUMNS} FROM ticket t WHERE t.owner = $1");
    if !statuses.is_empty() {
        let ph: Vec<String> = (0..statuses.len()).map(|i| format!("${}", i + 2)).collect();
        sql.push_str(&format!(" AND t.status IN ({})", ph.join(", ")));
    }
    sql.push_str(" ORDER BY t.id");
    let rows = db
        .run(async |c| {
            let mut q = sqlx::query_as::<_, TicketRow>(AssertSqlSafe(sql)).bind(student);
            for s in statuses {
                q = q.bind(s);
            }
            q.fetch_all(c).await
        })
        .await?;
    with_custom_fields(db, rows).await
}

/// Every ticket of a milestone, with its learning fields.
pub async fn milestone_concepts(db: &Db, milestone: &str) -> Result<Vec<Concept>, sqlx::Error> {
    let sql = format!("SELECT {TICKET_COLUMNS} FROM ticket t WHERE t.milestone = $1 ORDER BY t.id");
    let rows = db
        .run(async |c| {
            sqlx::query_as::<_, TicketRow>(AssertSqlSafe(sql))
                .bind(milestone)
                .fetch_all(c)
                .await
        })
        .await?;
    with_custom_fields(db, rows).await
}

/// Concepts from ticket rows, their custom fields fetched in one query.
async fn with_custom_fields(db: &Db, rows: Vec<TicketRow>) -> Result<Vec<Concept>, sqlx::Error> {
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let mut custom = custom_fields(db, &ids).await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let c = custom.remove(&r.id).unwrap_or_default();
            Concept::from_parts(r, c)
        })
        .collect())
}

pub async fn milestone_exists(db: &Db, name: &str) -> Result<bool, sqlx::Error> {
    let found = db
        .run(async |c| {
            sqlx::query_scalar::<_, String>("SELECT name FROM milestone WHERE name = $1")
                .bind(name)
                .fetch_optional(c)
                .await
        })
        .await?;
    Ok(found.is_some())
}

#[derive(Debug, Serialize, PartialEq)]
pub struct MilestoneProgress {
    pub milestone: String,
    pub total_concepts: i64,
    pub completed_concepts: i64,
    #[serde(serialize_with = "crate::numbers::ser")]
    pub progress_percentage: f64,
    pub status_breakdown: BTreeMap<String, i64>,
}

/// Totals, completed (closed or mastered), percentage and status breakdown of a milestone.
pub async fn milestone_progress(
    db: &Db,
    milestone: &str,
) -> Result<MilestoneProgress, sqlx::Error> {
    let rows = db
        .run(async |c| {
            sqlx::query_as::<_, (Option<String>, i64)>(
                "SELECT status, COUNT(*) FROM ticket WHERE milestone = $1 GROUP BY status",
            )
            .bind(milestone)
            .fetch_all(c)
            .await
        })
        .await?;
    let status_breakdown: BTreeMap<String, i64> = rows
        .into_iter()
        .map(|(s, n)| (s.unwrap_or_default(), n))
        .collect();
    let total: i64 = status_breakdown.values().sum();
    let completed: i64 = status_breakdown
        .iter()
        .filter(|(s, _)| is_complete(s))
        .map(|(_, n)| n)
        .sum();
    Ok(MilestoneProgress {
        milestone: milestone.to_string(),
        total_concepts: total,
        completed_concepts: completed,
        progress_percentage: if total > 0 {
            completed as f64 * 100.0 / total as f64
        } else {
            0.0
        },
        status_breakdown,
    })
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Prerequisite {
    pub id: i64,
    pub summary: Option<String>,
    pub status: Option<String>,
    /// 1 for a direct prerequisite, 2 for one of its prerequisites, …
    pub depth: u32,
    /// Named as a prerequisite but no such ticket exists.
    pub missing: bool,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Prerequisites {
    pub concept_id: i64,
    pub prerequisites: Vec<Prerequisite>,
    /// Edges `[from, to]` that lead back to a concept already on the path: data to fix in Trac.
    pub cycles: Vec<[i64; 2]>,
}

/// Longest prerequisite chain followed; deeper chains are data errors, not curricula.
const MAX_DEPTH: u32 = 64;

/// Every prerequisite of `root`, transitively, breadth first; each concept once, cycles
/// reported instead of followed.
pub async fn prerequisites(db: &Db, root: &Concept) -> Result<Prerequisites, sqlx::Error> {
    let mut seen: HashSet<i64> = HashSet::from([root.id]);
    let mut out = Vec::new();
    let mut cycles = Vec::new();
    let mut queue: VecDeque<(i64, Vec<i64>, u32)> = VecDeque::new();
    for p in &root.prerequisites {
        queue.push_back((*p, vec![root.id], 1));
    }
    while let Some((id, path, depth)) = queue.pop_front() {
        let from = *path.last().unwrap_or(&root.id);
        if path.contains(&id) {
            cycles.push([from, id]);
            continue;
        }
        if !seen.insert(id) || depth > MAX_DEPTH {
            continue;
        }
        match concept(db, id).await? {
            None => out.push(Prerequisite {
                id,
                summary: None,
                status: None,
                depth,
                missing: true,
            }),
            Some(c) => {
                let mut next_path = path.clone();
                next_path.push(id);
                for p in &c.prerequisites {
                    queue.push_back((*p, next_path.clone(), depth + 1));
                }
                out.push(Prerequisite {
                    id,
                    summary: Some(c.summary),
                    status: Some(c.status),
                    depth,
                    missing: false,
                });
            }
        }
    }
    Ok(Prerequisites {
        concept_id: root.id,
        prerequisites: out,
        cycles,
    })
}

/// A change to a ticket's learning state, recorded as one Trac change.
pub struct LearningChange<'a> {
    pub ticket: i64,
    pub author: &'a str,
    pub status: Option<&'a str>,
    pub custom: &'a [(&'a str, String)],
    pub comment: &'a str,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct ChangeRecord {
    /// The change's time (µs), shared by all its `ticket_change` rows as in Trac.
    pub time: i64,
    /// Trac's comment number of the change.
    pub comment_number: String,
    pub fields: Vec<String>,
}

/// The clause that locks the rows a SELECT reads (PostgreSQL); SQLite's transaction holds
/// the database's write lock once it has written.
fn row_lock(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => " FOR UPDATE",
        Backend::Sqlite => "",
    }
}

/// A ticket's status, its row locked until the transaction ends.
pub async fn status_for_update(
    conn: &mut AnyConnection,
    backend: Backend,
    ticket: i64,
) -> Result<Option<String>, sqlx::Error> {
    let lock = row_lock(backend);
    let row = sqlx::query_as::<_, (Option<String>,)>(AssertSqlSafe(format!(
        "SELECT status FROM ticket WHERE id = $1{lock}"
    )))
    .bind(ticket)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(s,)| s.unwrap_or_default()))
}

/// Updates status and custom fields in one transaction, writing `ticket`,
/// `ticket_custom` and `ticket_change` exactly as Trac's `save_changes` does. Returns None
/// when the ticket does not exist or nothing changed.
pub async fn update_learning_status(
    conn: &mut AnyConnection,
    backend: Backend,
    change: &LearningChange<'_>,
) -> Result<Option<ChangeRecord>, sqlx::Error> {
    // Lock the ticket row so concurrent changes get distinct times and comment numbers.
    let lock = row_lock(backend);
    let current = sqlx::query_as::<_, (Option<String>, Option<i64>)>(AssertSqlSafe(format!(
        "SELECT status, changetime FROM ticket WHERE id = $1{lock}"
    )))
    .bind(change.ticket)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((old_status, old_changetime)) = current else {
        return Ok(None);
    };
    let existing: BTreeMap<String, Option<String>> = sqlx::query_as::<_, (String, Option<String>)>(
        "SELECT name, value FROM ticket_custom WHERE ticket = $1",
    )
    .bind(change.ticket)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .collect();

    let status_change = change
        .status
        .filter(|s| old_status.as_deref() != Some(*s))
        .map(|s| (old_status.clone(), s));
    let custom_changes: Vec<(&str, Option<String>, &String)> = change
        .custom
        .iter()
        .filter(|(name, value)| existing.get(*name).and_then(|v| v.as_ref()) != Some(value))
        .map(|(name, value)| (*name, existing.get(*name).cloned().flatten(), value))
        .collect();
    if status_change.is_none() && custom_changes.is_empty() && change.comment.trim().is_empty() {
        return Ok(None);
    }

    // ticket_change's key includes the time: never reuse one.
    let when = now_micros().max(old_changetime.unwrap_or(0) + 1);
    sqlx::query("UPDATE ticket SET changetime = $1 WHERE id = $2")
        .bind(when)
        .bind(change.ticket)
        .execute(&mut *conn)
        .await?;

    let comment_number = next_comment_number(conn, change.ticket).await?.to_string();
    let mut fields = Vec::new();
    if let Some((old, new)) = status_change {
        sqlx::query("UPDATE ticket SET status = $1 WHERE id = $2")
            .bind(new)
            .bind(change.ticket)
            .execute(&mut *conn)
            .await?;
        insert_change(conn, change, when, "status", old.as_deref(), Some(new)).await?;
        fields.push("status".to_string());
    }
    for (name, old, new) in custom_changes {
        let row_exists = existing.contains_key(name);
        if row_exists {
            sqlx::query("UPDATE ticket_custom SET value = $1 WHERE ticket = $2 AND name = $3")
                .bind(new.as_str())
                .bind(change.ticket)
                .bind(name)
                .execute(&mut *conn)
                .await?;
        } else {
            sqlx::query("INSERT INTO ticket_custom (ticket, name, value) VALUES ($1, $2, $3)")
                .bind(change.ticket)
                .bind(name)
                .bind(new.as_str())
                .execute(&mut *conn)
                .await?;
            // Like Trac: a field first stored at its default is not a change.
            if old.is_none() && custom_default(name) == Some(new.as_str()) {
                continue;
            }
        }
        insert_change(conn, change, when, name, old.as_deref(), Some(new)).await?;
        fields.push(name.to_string());
    }
    // Trac always records the comment row, even empty: it numbers the change.
    insert_change(
        conn,
        change,
        when,
        "comment",
        Some(&comment_number),
        Some(change.comment),
    )
    .await?;
    Ok(Some(ChangeRecord {
        time: when,
        comment_number,
        fields,
    }))
}

async fn insert_change(
    conn: &mut AnyConnection,
    change: &LearningChange<'_>,
    when: i64,
    field: &str,
    old: Option<&str>,
    new: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO ticket_change (ticket, time, author, field, oldvalue, newvalue) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(change.ticket)
    .bind(when)
    .bind(change.author)
    .bind(field)
    .bind(old)
    .bind(new)
    .execute(&mut *conn)
    .await
    .map(|_| ())
}

/// Trac's numbering: walk the ticket's changes newest first; the last numbered comment
/// gives the base, and each unnumbered change after it counts one.
async fn next_comment_number(conn: &mut AnyConnection, ticket: i64) -> Result<u64, sqlx::Error> {
    let rows = sqlx::query_as::<_, (i64, String)>(
        "SELECT DISTINCT tc1.time, COALESCE(tc2.oldvalue, '') \
         FROM ticket_change AS tc1 \
         LEFT OUTER JOIN ticket_change AS tc2 \
           ON tc2.ticket = $1 AND tc2.time = tc1.time AND tc2.field = 'comment' \
         WHERE tc1.ticket = $2 ORDER BY tc1.time DESC",
    )
    .bind(ticket)
    .bind(ticket)
    .fetch_all(&mut *conn)
    .await?;
    let mut num = 0u64;
    for (_, old) in rows {
        match old.rsplit('.').next().and_then(|n| n.parse::<u64>().ok()) {
            Some(n) => {
                num += n;
                break;
            }
            None => num += 1,
        }
    }
    Ok(num + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learning_field_defaults_are_shared_ini_s() {
        // A default out of step with shared.ini makes our change rows differ from Trac's.
        let ini = include_str!("../../../trac-legacy/config/shared.ini");
        for field in [LEARNING_DIFFICULTY, MASTERY_THRESHOLD, PREREQUISITES] {
            let declared = ini
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{field}.value =")))
                .map(str::trim);
            assert_eq!(declared, super::custom_default(field), "{field}");
        }
    }

    #[test]
    fn prerequisite_lists_as_people_write_them() {
        assert_eq!(parse_prerequisites("[1, 2, 3]"), vec![1, 2, 3]);
        assert_eq!(parse_prerequisites("#4, #5"), vec![4, 5]);
        assert_eq!(parse_prerequisites("6 7"), vec![6, 7]);
        assert_eq!(parse_prerequisites(""), Vec::<i64>::new());
        assert_eq!(parse_prerequisites("[]"), Vec::<i64>::new());
    }
}
