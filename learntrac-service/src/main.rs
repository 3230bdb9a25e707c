use std::process::ExitCode;
use std::time::Duration;

use learntrac_service::healthcheck;

fn main() -> ExitCode {
    let port = match std::env::var("PORT").map(|p| p.parse::<u16>()) {
        Err(_) => 8001,
        Ok(Ok(p)) => p,
        Ok(Err(e)) => {
            eprintln!("learntrac-service: PORT is not a port number: {e}");
            return ExitCode::from(2);
        }
    };
    match std::env::args().nth(1).as_deref() {
        Some("healthcheck") => match healthcheck::probe(port, Duration::from_secs(4)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("unhealthy: {e}");
                ExitCode::FAILURE
            }
        },
        _ => {
            eprintln!(
                "learntrac-service: the API server is not built yet (issue #3); only `healthcheck` works"
            );
            ExitCode::FAILURE
        }
    }
}
