use std::io::{self, BufWriter};

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// JSON lines for CloudWatch, or readable lines on a terminal. `RUST_LOG` overrides the level.
///
/// Lines go through a writer thread that drains what has queued up and then flushes, so
/// under load one write(2) carries many access-log lines instead of one each on the request's
/// own thread; when idle each line is written at once. A stalled log pipe drops lines rather
/// than stalling requests. Keep the guard until exit: dropping it flushes what is queued.
pub fn init(format: LogFormat) -> WorkerGuard {
    let (writer, guard) = NonBlockingBuilder::default()
        // The queue is allocated whole: 16k lines is ~0.5 MB (the default, 128k, is 4 MB).
        .buffered_lines_limit(16 * 1024)
        .thread_name("learntrac-logs")
        .finish(BufWriter::with_capacity(64 * 1024, io::stderr()));
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Pretty => builder.compact().try_init(),
    };
    guard
}
