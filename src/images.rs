//! The image pipeline shared by `build`, `push` and `deploy`: both images built concurrently
//! through the Engine API, tagged with what was built, then pushed concurrently.

use std::collections::BTreeMap;
use std::path::Path;

use bollard::Docker;
use bollard::auth::DockerCredentials;
use futures_util::future::join_all;
use serde::Serialize;

use crate::config::{Environment, ServiceName};
use crate::docker::build::{BuildRequest, Built};
use crate::docker::push::{PushRequest, Pushed};
use crate::docker::{self, context};
use crate::error::{Error, Result};
use crate::git::{self, Revision};
use crate::render;
use crate::ui::progress::Progress;

#[derive(Debug, Serialize)]
pub struct ImageReport {
    pub service: ServiceName,
    /// Local `name:tag`.
    pub local: String,
    pub image_id: String,
    pub tags: Vec<String>,
    pub build: Option<Built>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub push: Option<Pushed>,
    /// The push of the Dockerfile's cache stage as the repository's `build-cache` tag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build_cache: Option<Pushed>,
}

/// The stage a Dockerfile may name for its dependency tree: built and tagged
/// `NAME:build-cache` beside the image, and pushed with it, so an engine without layers
/// can pull it as build cache.
const CACHE_STAGE: &str = "dependencies";
const BUILD_CACHE_TAG: &str = "build-cache";

/// Whether `dockerfile` has a stage `FROM … AS dependencies`.
fn has_cache_stage(dockerfile: &str) -> bool {
    dockerfile.lines().any(|l| {
        let words: Vec<&str> = l.split_whitespace().collect();
        words.len() >= 4
            && words[0].eq_ignore_ascii_case("FROM")
            && words[words.len() - 2].eq_ignore_ascii_case("AS")
            && words[words.len() - 1].eq_ignore_ascii_case(CACHE_STAGE)
    })
}

pub fn local_name(env: &Environment, service: ServiceName) -> String {
    format!("{}-{service}", env.name_prefix())
}

/// Builds (unless `skip_build`) the images of `only` or both services from the rendered
/// Dockerfiles in `files`, and pushes them when `push`.
pub async fn images(
    root: &Path,
    env: &Environment,
    files: &render::Files,
    only: Option<ServiceName>,
    skip_build: bool,
    push: bool,
    progress: &Progress,
) -> Result<Vec<ImageReport>> {
    let services: Vec<ServiceName> = match only {
        Some(s) => vec![s],
        None => ServiceName::ALL.to_vec(),
    };
    let docker = docker::connect().await?;
    let rev = git::revision(root);
    let tags = vec![rev.tag(), env.environment.clone()];
    // Credentials first: nothing is built for a push that cannot happen.
    let target = if push {
        let names: Vec<String> = services.iter().map(|s| local_name(env, *s)).collect();
        Some(registry(env, &names, false).await?)
    } else {
        None
    };

    let mut reports: Vec<ImageReport> = Vec::new();
    if skip_build {
        for s in &services {
            let local = format!("{}:{}", local_name(env, *s), rev.tag());
            let inspect = docker
                .inspect_image(&local)
                .await
                .map_err(|_| Error::Image {
                    image: s.to_string(),
                    message: format!(
                        "--skip-build, but {local} was never built here; run `learntrac build {}`",
                        env.environment
                    ),
                })?;
            reports.push(ImageReport {
                service: *s,
                local,
                image_id: inspect.id.unwrap_or_default(),
                tags: tags.clone(),
                build: None,
                repository: None,
                push: None,
                build_cache: None,
            });
        }
    } else {
        let sources = Sources {
            docker: &docker,
            root,
            env,
            files,
            rev: &rev,
            registry: target.as_ref(),
        };
        let builds = services.iter().map(|s| {
            let line = progress.line(s.as_str());
            build_one(&sources, *s, line)
        });
        let results = join_all(builds).await;
        // A failed build stops everything before any push.
        let errors: Vec<String> = results
            .iter()
            .filter_map(|r| r.as_ref().err().map(ToString::to_string))
            .collect();
        if !errors.is_empty() {
            return Err(Error::Image {
                image: "build".into(),
                message: errors.join("\n"),
            });
        }
        for (s, r) in services.iter().zip(results) {
            let (local, built) = r?;
            // The environment tag locally too, so `docker run NAME:ENV` works.
            tag_local(&docker, &local, &local_name(env, *s), &env.environment).await?;
            reports.push(ImageReport {
                service: *s,
                local,
                image_id: built.image_id.clone(),
                tags: tags.clone(),
                build: Some(built),
                repository: None,
                push: None,
                build_cache: None,
            });
        }
    }

    if let Some((host, credentials)) = target {
        let pushes = reports.iter().map(|r| {
            let repository = format!("{host}/{}", local_name(env, r.service));
            let line = progress.line(r.service.as_str());
            let local = r.local.clone();
            let credentials = credentials.clone();
            let tags = tags.clone();
            let docker = docker.clone();
            let image = r.service.to_string();
            let cache_local = format!("{}:{BUILD_CACHE_TAG}", local_name(env, r.service));
            let cache_stage = files
                .get(&format!("docker/{}.Dockerfile", r.service))
                .is_some_and(|d| has_cache_stage(d));
            async move {
                let req = PushRequest {
                    image: &image,
                    local: &local,
                    repository: &repository,
                    tags: &tags,
                    credentials: credentials.clone(),
                };
                let (pushed, build_cache) =
                    if cache_stage && docker.inspect_image(&cache_local).await.is_ok() {
                        // The image and its build cache side by side; the cache is skipped
                        // when the registry has it (a code change leaves it as it was).
                        let cache_tags = [BUILD_CACHE_TAG.to_string()];
                        let cache_req = PushRequest {
                            image: &image,
                            local: &cache_local,
                            repository: &repository,
                            tags: &cache_tags,
                            credentials,
                        };
                        let (p, c) = futures_util::join!(
                            docker::push::push(&docker, req, &line),
                            docker::push::push(&docker, cache_req, &line)
                        );
                        (p, Some(c))
                    } else {
                        (docker::push::push(&docker, req, &line).await, None)
                    };
                if let Ok(p) = &pushed {
                    line.finish(&format!(
                        "{} {repository}@{}",
                        if p.skipped { "up to date" } else { "pushed" },
                        p.digest
                    ));
                }
                pushed.map(|p| (repository, p, build_cache))
            }
        });
        let pushed_all = join_all(pushes).await;
        for (r, pushed) in reports.iter_mut().zip(pushed_all) {
            let (repository, p, build_cache) = pushed?;
            r.repository = Some(repository);
            r.push = Some(p);
            r.build_cache = build_cache.transpose()?;
        }
    }
    Ok(reports)
}

/// What the builds of one run share.
struct Sources<'a> {
    docker: &'a Docker,
    root: &'a Path,
    env: &'a Environment,
    files: &'a render::Files,
    rev: &'a Revision,
    /// The registry pushes go to, when pushing: it may hold build cache.
    registry: Option<&'a (String, Option<DockerCredentials>)>,
}

async fn build_one(
    sources: &Sources<'_>,
    service: ServiceName,
    line: crate::ui::progress::Line,
) -> Result<(String, Built)> {
    let Sources {
        docker,
        root,
        env,
        files,
        rev,
        registry,
    } = *sources;
    let spec = env.services.get(service);
    let dockerfile = files
        .get(&format!("docker/{service}.Dockerfile"))
        .ok_or_else(|| Error::Image {
            image: service.to_string(),
            message: format!("no docker/{service}.Dockerfile among the rendered templates"),
        })?;
    let dockerfile_ignore = files
        .get(&format!("docker/{service}.Dockerfile.dockerignore"))
        .cloned();
    let dir = root.join(&spec.context);
    let local = format!("{}:{}", local_name(env, service), rev.tag());
    let mut labels = BTreeMap::new();
    labels.insert("org.opencontainers.image.revision", rev.tag());
    labels.insert("org.opencontainers.image.title", local_name(env, service));
    if let Some(source) = git::remote(root) {
        labels.insert("org.opencontainers.image.source", source);
    }
    // The commit's time, not now: an unchanged tree must rebuild to the same image.
    if let Some(created) = git::commit_time(root) {
        labels.insert("org.opencontainers.image.created", created);
    }
    line.message(&format!("packing the build context {}", dir.display()));
    let (tar, count, context_hash, skipped) = {
        let dir = dir.clone();
        let dockerfile = dockerfile.clone();
        tokio::task::spawn_blocking(move || {
            // Packed once; the hash of context + Dockerfile becomes a label itself.
            let packed = context::pack(&dir, dockerfile_ignore.as_deref())?;
            let hash = packed.sha256(&dockerfile);
            labels.insert(CONTEXT_LABEL, hash.clone());
            let labelled = format!(
                "{}\n{}\n",
                dockerfile.trim_end(),
                label_instruction(&labels)
            );
            let count = packed.files;
            let skipped = packed.skipped.clone();
            Ok::<_, Error>((packed.finish(&labelled)?, count, hash, skipped))
        })
        .await
        .map_err(|e| Error::Image {
            image: service.to_string(),
            message: e.to_string(),
        })??
    };
    if !skipped.is_empty() {
        // As docker build does: a socket cannot travel in a tar.
        line.warn(&format!(
            "sockets left out of the build context: {}",
            skipped.join(", ")
        ));
    }
    // Same commit, same context, same Dockerfile: the engine would only replay its cache.
    if let Ok(existing) = docker.inspect_image(&local).await
        && existing
            .config
            .as_ref()
            .and_then(|c| c.labels.as_ref())
            .and_then(|l| l.get(CONTEXT_LABEL))
            == Some(&context_hash)
    {
        let image_id = existing.id.unwrap_or_default();
        line.finish(&format!("up to date {image_id} (context unchanged)"));
        return Ok((
            local,
            Built {
                image_id,
                cached: true,
                steps: 0,
                rebuilt: Vec::new(),
                seconds: 0.0,
            },
        ));
    }
    let cache_stage = has_cache_stage(dockerfile);
    let cache_from = match registry {
        Some((host, credentials)) => {
            registry_cache(
                docker,
                env,
                service,
                host,
                credentials.clone(),
                cache_stage,
                &line,
            )
            .await
        }
        None => Vec::new(),
    };
    line.message(&format!("sending {count} files ({} kB)", tar.len() / 1024));
    let cache_stage_context = cache_stage.then(|| tar.clone());
    let req = BuildRequest {
        image: service.as_str(),
        tag: &local,
        context: tar,
        platform: &env.images.platform,
        cache_from: &cache_from,
        target: "",
    };
    let built = docker::build::build(docker, req, &line).await?;
    if let Some(context) = cache_stage_context {
        // Every step is in this engine's cache now: seconds, and the tag that marks it.
        let req = BuildRequest {
            image: service.as_str(),
            tag: &format!("{}:{BUILD_CACHE_TAG}", local_name(env, service)),
            context,
            platform: &env.images.platform,
            cache_from: &[],
            target: CACHE_STAGE,
        };
        docker::build::build(docker, req, &line).await?;
    }
    line.finish(&format!(
        "built {} {}",
        &built.image_id,
        if built.cached { "(cached)" } else { "" }
    ));
    Ok((local, built))
}

/// Images in the registry that can stand in for this engine's build cache, pulled when
/// the engine has no layers of its own for the service (a fresh CI runner): the cache stage
/// pushed as `build-cache`, and the environment's last push (its final stage's steps).
async fn registry_cache(
    docker: &Docker,
    env: &Environment,
    service: ServiceName,
    host: &str,
    credentials: Option<DockerCredentials>,
    cache_stage: bool,
    line: &crate::ui::progress::Line,
) -> Vec<String> {
    use crate::docker::pull::{Pulled, pull};
    let name = local_name(env, service);
    let mut tags = vec![env.environment.as_str()];
    if cache_stage {
        tags.insert(0, BUILD_CACHE_TAG);
    }
    // The engine's own layers are newer than any push: it keeps what it built last.
    if docker
        .inspect_image(&format!("{name}:{}", tags[0]))
        .await
        .is_ok()
    {
        return Vec::new();
    }
    let repository = format!("{host}/{name}");
    let mut pulled = Vec::new();
    for tag in tags {
        match pull(docker, &repository, tag, credentials.clone(), line).await {
            Pulled::Yes => pulled.push(format!("{repository}:{tag}")),
            Pulled::Absent => {}
            Pulled::Failed(e) => line.warn(&format!(
                "cannot pull {repository}:{tag} as build cache ({e}); building without it"
            )),
        }
    }
    if pulled.is_empty() {
        line.note(&format!(
            "no build cache in the registry for {name} yet: building with what this engine has"
        ));
    } else {
        line.note(&format!(
            "build cache from the registry: {}",
            pulled.join(", ")
        ));
    }
    pulled
}

/// Label holding the hash of the build context and Dockerfile an image was built from.
const CONTEXT_LABEL: &str = "dev.learntrac.context-sha256";

/// All labels in one instruction: the classic builder commits one layer per LABEL.
fn label_instruction(labels: &BTreeMap<&str, String>) -> String {
    let quoted: Vec<String> = labels
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                serde_json::Value::from(*k),
                serde_json::Value::from(v.as_str())
            )
        })
        .collect();
    format!("LABEL {}", quoted.join(" "))
}

async fn tag_local(docker: &Docker, local: &str, name: &str, tag: &str) -> Result<()> {
    let options = bollard::query_parameters::TagImageOptionsBuilder::default()
        .repo(name)
        .tag(tag)
        .build();
    docker
        .tag_image(local, Some(options))
        .await
        .map_err(|e| Error::Image {
            image: name.to_string(),
            message: format!("cannot tag {local} as {name}:{tag}: {e}"),
        })
}

/// Where pushes go and with which credentials. ECR is always asked for a token (and
/// whether the repositories `names` exist: made when `create`, else an error saying how);
/// a `registry:` override then receives the pushes with credentials from the Docker config
/// file, if it has any for that registry.
pub(crate) async fn registry(
    env: &Environment,
    names: &[String],
    create: bool,
) -> Result<(String, Option<DockerCredentials>)> {
    let config = crate::aws::sdk_config(env).await;
    let ecr = aws_sdk_ecr::Client::new(&config);
    // An ECR failure is a failed push (exit 4), not a generic one.
    let as_push = |e: Error| match e {
        Error::Aws { what, which, cause } => Error::Image {
            image: which,
            message: format!("failed to {what}: {cause}"),
        },
        other => other,
    };
    let login = crate::aws::ecr::login(&ecr).await.map_err(as_push)?;
    if let Some(host) = &env.registry {
        return Ok((host.clone(), docker_config_credentials(host)));
    }
    let missing = crate::aws::ecr::missing_repositories(&ecr, names)
        .await
        .map_err(as_push)?;
    if create {
        for name in &missing {
            crate::aws::ecr::create_repository(&ecr, name, &env.project)
                .await
                .map_err(as_push)?;
        }
    } else if !missing.is_empty() {
        return Err(Error::Image {
            image: missing.join(", "),
            message: format!(
                "no such ECR repository in {}; `learntrac deploy {}` creates them with Terraform (or run terraform apply in .learntrac/{}/terraform)",
                env.aws.region, env.environment, env.environment
            ),
        });
    }
    let credentials = DockerCredentials {
        username: Some(login.username),
        password: Some(login.password),
        serveraddress: Some(login.host.clone()),
        ..Default::default()
    };
    Ok((login.host, Some(credentials)))
}

/// `auths.<host>.auth` of `$DOCKER_CONFIG/config.json` (default `~/.docker`).
fn docker_config_credentials(host: &str) -> Option<DockerCredentials> {
    use base64::Engine;
    let dir = std::env::var_os("DOCKER_CONFIG")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".docker")))?;
    let text = std::fs::read_to_string(dir.join("config.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let auth = v["auths"][host]["auth"].as_str()?;
    let decoded = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(auth)
            .ok()?,
    )
    .ok()?;
    let (user, pass) = decoded.split_once(':')?;
    Some(DockerCredentials {
        username: Some(user.to_string()),
        password: Some(pass.to_string()),
        serveraddress: Some(host.to_string()),
        ..Default::default()
    })
}
