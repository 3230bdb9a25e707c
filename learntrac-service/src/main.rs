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
