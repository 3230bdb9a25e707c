//! `learntrac build` / `push` against this machine's Docker Engine, Debian's
//! docker-registry on loopback and moto's ECR. The service's image is its production
//! Dockerfile on stand-ins for its two bases (the engine cannot pull; scripts/test makes
//! them and builds the image once, so these builds reuse its layers). Trac's production
//! Dockerfile is built in tests/trac_image.rs; here Trac's slot holds small Dockerfiles on
//! a busybox base, through `--templates`, that try the context rules and a failing step in
//! seconds.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{Cli, Run, commit_all, peer, repo_root, write};
use serde_json::Value;

static N: AtomicUsize = AtomicUsize::new(0);

/// A git repository holding a `test` environment wired to the test peers.
struct ImageProject {
    dir: tempfile::TempDir,
    project: String,
}

impl ImageProject {
    fn new(trac_dockerfile: &str) -> Self {
        let base = peer("LEARNTRAC_TEST_BASE_IMAGE", "a locally imported base image");
        let _ = peer(
            "LEARNTRAC_TEST_SERVICE_IMAGE",
            "the service's production image, built once by scripts/test (else every test here builds it from nothing at once)",
        );
        let registry = peer("LEARNTRAC_TEST_REGISTRY", "a loopback docker-registry");
        let moto = peer("LEARNTRAC_TEST_MOTO", "moto (the AWS endpoint)");
        let dir = tempfile::tempdir().expect("temp dir");
        let project = format!(
            "it{}x{}",
            std::process::id() % 100_000,
            N.fetch_add(1, Ordering::SeqCst)
        );
        let local = std::fs::read_to_string(repo_root().join("environments/local.yaml"))
            .expect("local.yaml");
        let yaml = common::with_service_bases(&local)
            .replace("project: learntrac", &format!("project: {project}"))
            .replace("environment: local", "environment: test")
            .replace(
                "endpoint: http://127.0.0.1:5000",
                &format!("endpoint: {moto}"),
            )
            .replace("python:2.7-slim-buster", &base)
            + &format!("registry: {registry}\n");
        let w = |rel: &str, text: &str| write(dir.path(), rel, text);
        w("environments/test.yaml", &yaml);
        w("tmpl/docker/trac.Dockerfile.j2", trac_dockerfile);
        common::copy_service_workspace(dir.path());
        w("trac-legacy/start.sh", "echo trac\n");
        w("trac-legacy/secret.txt", "not for the image\n");
        w("trac-legacy/notes/draft.md", "also ignored\n");
        w("trac-legacy/.dockerignore", "secret.txt\nnotes\n");
        commit_all(dir.path(), "test");
        ImageProject { dir, project }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn run(&self, args: &[&str]) -> Run {
        let tmpl: PathBuf = self.path().join("tmpl");
        Cli::new()
            .root(self.path())
            .args(args)
            .args(["--templates"])
            .args([&tmpl])
            .run()
    }

    /// A one-line change to the service's code, committed. The line is new to this engine
    /// (it keeps every earlier run's layers: the same text would be a cache hit).
    fn change_the_service(&self, line: &str) {
        let lib = self.path().join("learntrac-service/src/lib.rs");
        let text = std::fs::read_to_string(&lib).expect("lib.rs");
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        std::fs::write(&lib, format!("{text}\n// {line} {nonce}\n")).expect("write lib.rs");
        commit_all(self.path(), line);
    }

    fn repo(&self, service: &str) -> String {
        format!("{}-test-{service}", self.project)
    }
}

impl Drop for ImageProject {
    fn drop(&mut self) {
        // --no-prune, as common::remove_images: the parents are the build cache that this
        // file's other tests, building the same Dockerfile at this moment, are reading.
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!("docker images --format '{{{{.Repository}}}}:{{{{.Tag}}}}' | grep '{}-test-' | xargs -r docker rmi -f --no-prune >/dev/null 2>&1", self.project))
            .status();
    }
}

/// The digest the registry serves for `name:tag`, or None.
async fn registry_digest(name: &str, tag: &str) -> Option<String> {
    let registry = peer("LEARNTRAC_TEST_REGISTRY", "a loopback docker-registry");
    let resp = reqwest::Client::new()
        .head(format!("http://{registry}/v2/{name}/manifests/{tag}"))
        .header(
            "Accept",
            "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json",
        )
        .send()
        .await
        .ok()?;
    if !resp.status().is_success() {
        return None;
    }
    resp.headers()
        .get("docker-content-digest")?
        .to_str()
        .ok()
        .map(String::from)
}

const TRAC_OK: &str = "FROM {{ env.images.trac_base }}\nCOPY . /app\nRUN test -f /app/start.sh\nCMD [\"/bin/sh\", \"/app/start.sh\"]\n";

#[tokio::test(flavor = "multi_thread")]
async fn push_builds_both_images_and_pushes_them_with_digests_then_a_rerun_skips_everything() {
    let p = ImageProject::new(TRAC_OK);
    let first = p.run(&["push", "test", "-o", "json"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let report: Value = serde_json::from_str(&first.stdout).expect("JSON report");
    let rows = report.as_array().expect("a row per image");
    assert_eq!(rows.len(), 2);
    for row in rows {
        let service = row["service"].as_str().expect("service");
        let tags: Vec<&str> = row["tags"]
            .as_array()
            .expect("tags")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(tags.len(), 2, "{row}");
        assert_eq!(tags[1], "test", "the environment's tag");
        assert!(
            tags[0].len() >= 12 && !tags[0].contains("dirty"),
            "the commit, clean tree: {row}"
        );
        assert_eq!(row["build"]["cached"], false, "{row}");
        assert_eq!(row["push"]["skipped"], false, "{row}");
        let digest = row["push"]["digest"].as_str().expect("digest");
        assert!(digest.starts_with("sha256:"), "{row}");
        // The registry serves that digest under both tags.
        for tag in &tags {
            assert_eq!(
                registry_digest(&p.repo(service), tag).await.as_deref(),
                Some(digest),
                "{service}:{tag}"
            );
        }
    }
    // The service's dependency stage went to the registry as its build cache.
    let service = rows
        .iter()
        .find(|r| r["service"] == "learntrac")
        .expect("the service's row");
    let cache = service["build_cache"]["digest"]
        .as_str()
        .unwrap_or_else(|| panic!("no build cache pushed: {service}"));
    assert_eq!(
        registry_digest(&p.repo("learntrac"), "build-cache")
            .await
            .as_deref(),
        Some(cache)
    );
    // stderr shows progress lines per image (plain lines: not a terminal).
    assert!(first.stderr.contains("[trac] Step 1/"), "{}", first.stderr);
    assert!(
        first.stderr.contains("[learntrac] Step 1/"),
        "{}",
        first.stderr
    );

    let second = p.run(&["push", "test"]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(second.stdout.contains("built (cached"), "{}", second.stdout);
    assert_eq!(
        second
            .stdout
            .matches("already in the registry, push skipped")
            .count(),
        2,
        "{}",
        second.stdout
    );
}

/// The steps a `build -o json` row says ran rather than came from the cache.
fn rebuilt(run: &Run) -> Vec<String> {
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).expect("JSON report");
    report[0]["build"]["rebuilt"]
        .as_array()
        .unwrap_or_else(|| panic!("{report}"))
        .iter()
        .filter_map(|v| v.as_str().map(String::from))
        .collect()
}

/// A one-line change's build: the service's crate compiled again, on the dependency stage
/// and the voice engines' layer from the cache.
fn assert_only_the_crate_rebuilt(steps: &[String]) {
    assert!(
        steps
            .iter()
            .any(|s| s.starts_with("RUN cargo build --release --locked -p learntrac-service")),
        "{steps:#?}"
    );
    assert!(
        !steps
            .iter()
            .any(|s| s.contains("mkdir learntrac-service/src")),
        "the dependency stage ran again: {steps:#?}"
    );
    assert!(
        !steps.iter().any(|s| s.contains("apt-get")),
        "the voice engines' layer ran again: {steps:#?}"
    );
}

#[test]
fn the_service_image_rebuilds_its_own_crate_only_and_nothing_for_files_it_does_not_read() {
    let p = ImageProject::new(TRAC_OK);
    let build = || p.run(&["build", "test", "--only", "learntrac", "-o", "json"]);
    let first = build();
    assert_eq!(first.code, 0, "{}", first.stderr);

    // The CLI, the docs, the service's tests and Trac's files are not in its context: a
    // commit touching only them runs no step but the commit's labels.
    write(p.path(), "src/main.rs", "fn main() {}\n");
    write(p.path(), "docs/notes.md", "a note\n");
    write(
        p.path(),
        "learntrac-service/tests/extra.rs",
        "#[test]\nfn t() {}\n",
    );
    write(p.path(), "trac-legacy/start.sh", "echo trac 2\n");
    commit_all(p.path(), "not the service");
    let steps = rebuilt(&build());
    assert!(
        steps.last().is_some_and(|s| s.starts_with("LABEL ")),
        "{steps:#?}"
    );
    // The RDS CA bundle is fetched from its URL on every build and compared by content;
    // under CI's load the engine has been seen to take that step (and its chmod) again.
    // Nothing that copies or compiles the service's code, or installs anything, may run.
    let rds_ca = ["LABEL ", "ADD http", "RUN chmod 0644 /rds-ca-bundle.pem"];
    assert!(
        steps
            .iter()
            .all(|s| rds_ca.iter().any(|allowed| s.starts_with(allowed))),
        "{steps:#?}"
    );

    // A one-line change to the service's code: its crate is compiled again, its
    // dependency tree comes from the cache.
    p.change_the_service("one more line");
    assert_only_the_crate_rebuilt(&rebuilt(&build()));
}

#[test]
fn an_engine_without_the_layers_builds_from_the_registry_s_build_cache() {
    let p = ImageProject::new(TRAC_OK);
    let push = || p.run(&["push", "test", "--only", "learntrac", "-o", "json"]);
    let first = push();
    assert_eq!(first.code, 0, "{}", first.stderr);

    // This engine forgets what it built for the project (a fresh CI runner): with images
    // to pull as cache, the classic builder takes a step from its own store only when it
    // is a parent of one of them, so what follows comes from the registry.
    let registry = peer("LEARNTRAC_TEST_REGISTRY", "a loopback docker-registry");
    let name = p.repo("learntrac");
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "docker images --format '{{{{.Repository}}}}:{{{{.Tag}}}}' | grep -E '^({registry}/)?{name}:' | xargs -r docker rmi -f --no-prune"
        ))
        .output()
        .expect("docker rmi");
    assert!(out.status.success(), "{out:?}");

    p.change_the_service("a change on a fresh runner");
    let second = push();
    assert!(
        second.stderr.contains(&format!(
            "build cache from the registry: {registry}/{name}:build-cache, {registry}/{name}:test"
        )),
        "{}",
        second.stderr
    );
    assert_only_the_crate_rebuilt(&rebuilt(&second));
}

#[tokio::test(flavor = "multi_thread")]
async fn dockerignore_keeps_files_out_of_the_image_and_labels_say_what_was_built() {
    let p = ImageProject::new(TRAC_OK);
    let run = p.run(&["build", "test", "--only", "trac", "-o", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let image = format!("{}:test", p.repo("trac"));
    let out = Command::new("docker")
        .args(["run", "--rm", &image, "find", "/app"])
        .output()
        .expect("docker run");
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(listing.contains("/app/start.sh"), "{listing}");
    assert!(
        !listing.contains("secret.txt"),
        "ignored file in the image: {listing}"
    );
    assert!(
        !listing.contains("draft.md"),
        "ignored folder in the image: {listing}"
    );
    let out = Command::new("docker")
        .args([
            "image",
            "inspect",
            "--format",
            "{{json .Config.Labels}}",
            &image,
        ])
        .output()
        .expect("inspect");
    let labels: Value = serde_json::from_slice(&out.stdout).expect("labels");
    let rev = labels["org.opencontainers.image.revision"]
        .as_str()
        .expect("revision label");
    assert!(rev.len() >= 12, "{labels}");
    assert!(
        labels["org.opencontainers.image.created"].is_string(),
        "{labels}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_step_names_the_image_and_step_and_pushes_nothing() {
    let p = ImageProject::new(
        "FROM {{ env.images.trac_base }}\nCOPY . /app\nRUN echo compiling && exit 3\n",
    );
    let run = p.run(&["push", "test"]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(
        run.stderr.contains("image trac: build failed at Step 3/"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("RUN echo compiling && exit 3"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("compiling"),
        "the step's last lines: {}",
        run.stderr
    );
    for service in ["trac", "learntrac"] {
        assert_eq!(
            registry_digest(&p.repo(service), "test").await,
            None,
            "{service} was pushed"
        );
    }
}

#[test]
fn an_unreachable_docker_engine_is_a_preflight_error_with_the_fix() {
    let p = ImageProject::new(TRAC_OK);
    let run = Cli::new()
        .root(p.path())
        .args(["build", "test"])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .run();
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("Docker Engine"), "{}", run.stderr);
    assert!(
        run.stderr.contains("hint: start the Docker Engine"),
        "{}",
        run.stderr
    );
}

#[test]
fn pushing_to_ecr_without_the_repositories_says_how_to_create_them() {
    let p = ImageProject::new(TRAC_OK);
    // Without the registry override pushes go to ECR (moto), which has no repositories.
    let yaml = p.path().join("environments/test.yaml");
    let text = std::fs::read_to_string(&yaml).expect("read");
    let without: String = text
        .lines()
        .filter(|l| !l.starts_with("registry:"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&yaml, without).expect("write");
    let run = p.run(&["push", "test"]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(
        run.stderr.contains("no such ECR repository"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("learntrac deploy test"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("Step 1/"),
        "nothing is built for a push that cannot happen"
    );
}

#[test]
fn build_offers_no_skip_build() {
    let project = common::Project::new();
    let run = common::Cli::new()
        .root(project.path())
        .args(["build", "dev", "--skip-build"])
        .run();
    assert_eq!(
        run.code, 2,
        "a usage error, not a failed build: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains("unexpected argument '--skip-build'"),
        "{}",
        run.stderr
    );
}
