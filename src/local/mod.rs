//! `learntrac local …`: the LearnTrac stack on one machine, routed exactly like the ALB.
//! Two runtimes behind the same router (router.rs: the rules; proxy.rs: HTTP as the ALB
//! speaks it): Docker (containers.rs, stack.rs:
//! PostgreSQL, Redis and Trac containers) and embedded (embedded.rs: Trac's own schema in
//! SQLite, the service in-process with an in-process cache, and Trac 1.6 itself on the
//! machine's Python 3 — trac_process.rs). The workflows: up.rs, ps.rs, down.rs, logs.rs;
//! `commands/local.rs` only dispatches and prints.

pub mod accounts;
pub mod containers;
pub mod demo;
pub mod down;
pub mod embedded;
pub mod logs;
pub mod proxy;
pub mod ps;
pub mod router;
pub mod stack;
pub mod state;
pub mod stop;
pub mod trac_process;
pub mod up;

/// Trac's SQLite schema and initial rows (scripts/gen-trac-schema writes it).
pub const TRAC_SQLITE_SCHEMA: &str = include_str!("trac_sqlite.sql");

/// The repository's environments/local.yaml, built in for machines without a checkout.
pub const BUILTIN_LOCAL_ENVIRONMENT: &str = include_str!("../../environments/local.yaml");
