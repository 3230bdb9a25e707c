use std::process::ExitCode;
use std::time::Duration;

use learntrac_service::{
    Config, Limits, build_state, healthcheck, router, serve, shutdown_signal, telemetry,
};

fn main() -> ExitCode {
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("learntrac-service: {e}");
            return ExitCode::from(2);
        }
    };
    // An unknown word would otherwise start the server where a one-off was meant (an
    // ECS `command` that repeats the entrypoint, say).
    if let Some(other) = std::env::args()
        .nth(1)
        .filter(|a| !matches!(a.as_str(), "db-roles" | "healthcheck"))
    {
        eprintln!(
            "learntrac-service: unknown command `{other}`: run it with no argument to serve, or with db-roles or healthcheck"
        );
        return ExitCode::from(2);
    }
    if std::env::args().nth(1).as_deref() == Some("db-roles") {
        return db_roles(&config);
    }
    if std::env::args().nth(1).as_deref() == Some("healthcheck") {
        return match healthcheck::probe(config.port, Duration::from_secs(4)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("unhealthy: {e}");
                ExitCode::FAILURE
            }
        };
    }
    // Declared before the runtime so it is dropped after it: the last lines get flushed.
    let _logs = telemetry::init(config.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("learntrac-service: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let state = match build_state(&config).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "start-up failed");
                return ExitCode::FAILURE;
            }
        };
        let listener = match tokio::net::TcpListener::bind(("0.0.0.0", config.port)).await {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, port = config.port, "cannot listen");
                return ExitCode::FAILURE;
            }
        };
        tracing::info!(port = config.port, config = ?config, "learntrac-service listening");
        match serve(
            listener,
            router(state, Limits::from(&config)),
            shutdown_signal(),
        )
        .await
        {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = %e, "server failed");
                ExitCode::FAILURE
            }
        }
    })
}

/// `db-roles`: the services' own database roles, made with the master user's DATABASE_*
/// (the container ECS runs before each task's app; see `db::roles`). One line either way.
fn db_roles(config: &Config) -> ExitCode {
    use learntrac_service::db::{roles, tls_hint};
    let roles = match roles::Roles::from_vars(&std::env::vars().collect()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("learntrac-service db-roles: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("learntrac-service db-roles: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(roles::ensure(&config.database_url, &roles)) {
        Ok(done) => {
            println!(
                "learntrac-service db-roles: {} and {} ready{}{}",
                roles.trac.name,
                roles.service.name,
                if done.created.is_empty() {
                    String::new()
                } else {
                    format!(" (created {})", done.created.join(", "))
                },
                if done.moved == 0 {
                    String::new()
                } else {
                    format!(
                        "; {} tables and sequences moved from the master user",
                        done.moved
                    )
                }
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            let e = e.to_string();
            eprintln!(
                "learntrac-service db-roles: {e}{}",
                tls_hint(&config.database_url, &e)
            );
            ExitCode::FAILURE
        }
    }
}
