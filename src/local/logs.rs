//! `learntrac local logs [COMPONENT] [-f]`.

use std::path::Path;
use std::time::Duration;

use crate::Ctx;
use crate::cli::LocalComponent;
use crate::error::{Error, Result, exit};
use crate::local::ps::{docker_containers, env_prefix};
use crate::local::state::DataDir;

/// A component's log: its container's where it runs in one, else the file the embedded
/// runtime writes (the in-process service's, or `tracd`'s).
pub fn logs(
    ctx: &Ctx,
    data: &DataDir,
    component: Option<LocalComponent>,
    follow: bool,
) -> Result<i32> {
    let name = component.map_or("learntrac", LocalComponent::as_str);
    if docker_containers(env_prefix(ctx).as_deref())
        .iter()
        .any(|c| c.component == name)
    {
        return container_logs(ctx, name, follow);
    }
    match component {
        None | Some(LocalComponent::Learntrac) => file_log(&data.log(), follow),
        Some(LocalComponent::Trac) if data.trac_log().exists() => {
            file_log(&data.trac_log(), follow)
        }
        Some(c) => Err(Error::Local {
            component: c.as_str().into(),
            message: match c {
                LocalComponent::Trac => {
                    "no log: Trac has not run here (`learntrac local up` starts it)".into()
                }
                _ => format!(
                    "no log: {} runs only in the Docker runtime (the embedded runtime uses SQLite and an in-process cache)",
                    c.as_str()
                ),
            },
        }),
    }
}

/// A container's log through the Engine API (`docker logs [-f]`).
fn container_logs(ctx: &Ctx, component: &str, follow: bool) -> Result<i32> {
    use futures_util::StreamExt;
    let stack = env_prefix(ctx).unwrap_or_else(|| "learntrac-local".into());
    let runtime =
        tokio::runtime::Runtime::new().map_err(|e| Error::io("start the async runtime", e))?;
    runtime.block_on(async {
        let docker = crate::docker::connect().await?;
        let name = format!("{stack}-{component}");
        let options = bollard::query_parameters::LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .follow(follow)
            .build();
        let mut stream = docker.logs(&name, Some(options));
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(c) => crate::ui::print(&c.to_string()),
                Err(e) => {
                    return Err(Error::Local {
                        component: component.to_string(),
                        message: format!(
                            "no log for container {name}: {e} (components: postgres, redis, trac, learntrac)"
                        ),
                    });
                }
            }
        }
        Ok(exit::OK)
    })
}

fn file_log(path: &Path, follow: bool) -> Result<i32> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file =
        std::fs::File::open(path).map_err(|e| Error::io(format!("open {}", path.display()), e))?;
    let mut buf = String::new();
    file.read_to_string(&mut buf)
        .map_err(|e| Error::io("read the log", e))?;
    crate::ui::print(&buf);
    if !follow {
        return Ok(exit::OK);
    }
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let pos = file
            .stream_position()
            .map_err(|e| Error::io("read the log", e))?;
        let mut more = String::new();
        file.read_to_string(&mut more)
            .map_err(|e| Error::io("read the log", e))?;
        crate::ui::print(&more);
        if more.is_empty() {
            file.seek(SeekFrom::Start(pos))
                .map_err(|e| Error::io("read the log", e))?;
        }
    }
}
