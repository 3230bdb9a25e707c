//! Shared helpers for the CLI's integration tests: run the real binary, in a project
//! folder, and look at what it printed.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Result of one `learntrac` run.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Builder for a `learntrac` invocation: `Cli::new().args(["render", "dev"]).run()`.
pub struct Cli {
    cmd: Command,
    stdin: Option<String>,
}

impl Cli {
    pub fn new() -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_learntrac"));
        cmd.env_remove("LEARNTRAC_ROOT").current_dir(repo_root());
        Cli { cmd, stdin: None }
    }

    pub fn root(mut self, root: &Path) -> Self {
        self.cmd.arg("--root").arg(root);
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.cmd.args(args);
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.cmd.env(key, value);
        self
    }

    pub fn stdin(mut self, text: &str) -> Self {
        self.stdin = Some(text.to_string());
        self
    }

    pub fn run(mut self) -> Run {
        use std::io::Write;
        use std::process::Stdio;
        let mut child = self
            .cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run the learntrac binary");
        let mut input = child.stdin.take().expect("stdin");
        if let Some(text) = &self.stdin {
            input.write_all(text.as_bytes()).expect("write stdin");
        }
        drop(input);
        let out = child.wait_with_output().expect("run the learntrac binary");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// A throwaway project: the repository's environment files, optionally edited.
pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("environments")).expect("mkdir");
        for name in ["dev", "prod", "local"] {
            let src = repo_root().join(format!("environments/{name}.yaml"));
            std::fs::copy(&src, dir.path().join(format!("environments/{name}.yaml")))
                .expect("copy environment");
        }
        Project { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn env_file(&self, name: &str) -> PathBuf {
        self.path().join(format!("environments/{name}.yaml"))
    }

    /// Replaces exactly one occurrence of `from` in an environment file.
    pub fn edit(&self, name: &str, from: &str, to: &str) -> &Self {
        let file = self.env_file(name);
        let text = std::fs::read_to_string(&file).expect("read environment");
        assert_eq!(
            text.matches(from).count(),
            1,
            "`{from}` must occur once in {name}.yaml"
        );
        std::fs::write(&file, text.replacen(from, to, 1)).expect("write environment");
        self
    }

    /// 1-based line of the first line containing `needle` in an environment file.
    pub fn line_of(&self, name: &str, needle: &str) -> usize {
        let text = std::fs::read_to_string(self.env_file(name)).expect("read environment");
        text.lines()
            .position(|l| l.contains(needle))
            .map(|i| i + 1)
            .unwrap_or_else(|| panic!("`{needle}` not in {name}.yaml"))
    }
}

/// Renders `env` of the repository into a fresh folder and returns it.
pub fn render_repo_env(env: &str) -> tempfile::TempDir {
    let out = tempfile::tempdir().expect("temp dir");
    let run = Cli::new()
        .args(["render", env, "--out"])
        .args([out.path()])
        .run();
    assert_eq!(run.code, 0, "render {env} failed: {}", run.stderr);
    out
}

/// Every file under `dir`, relative, sorted.
pub fn files_under(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).expect("read dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n == ".terraform") {
                    continue;
                }
                walk(base, &p, out);
            } else if let Ok(rel) = p.strip_prefix(base) {
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// A peer tool the harness (scripts/test) provides; a missing one fails the test loudly.
pub fn required_tool(var: &str, what: &str) -> PathBuf {
    match std::env::var_os(var) {
        Some(p) if Path::new(&p).exists() => PathBuf::from(p),
        _ => panic!(
            "{what} is required: set {var} to its path (scripts/test installs it and sets {var})"
        ),
    }
}

/// A peer's address or name that the harness (scripts/test) exports; a missing one fails
/// the test loudly.
pub fn peer(var: &str, what: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| panic!("{what} is required: set {var} (scripts/test)"))
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Writes `rel` under `dir`, making its folders.
pub fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(p, text).expect("write");
}

/// `git ARGS` in `dir` with a test identity; a failure fails the test.
pub fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.email=t@example.edu", "-c", "user.name=t"])
        .args(args)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "git {args:?}");
}

/// `git init` (when needed) and a commit of everything in `dir`.
pub fn commit_all(dir: &Path, message: &str) {
    if !dir.join(".git").exists() {
        git(dir, &["init", "-q"]);
    }
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-qm", message]);
}

/// The AWS SDK configuration for moto at `endpoint` (credentials from the environment).
pub async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-2"))
        .endpoint_url(endpoint)
        .load()
        .await
}

/// S3 on moto: path-style addressing, moto's test credentials.
pub fn s3_client(endpoint: &str) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::new()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-2"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// SSM on moto, with moto's test credentials.
pub fn ssm_client(endpoint: &str) -> aws_sdk_ssm::Client {
    let conf = aws_sdk_ssm::config::Builder::new()
        .behavior_version(aws_sdk_ssm::config::BehaviorVersion::latest())
        .region(aws_sdk_ssm::config::Region::new("us-east-2"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_ssm::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .build();
    aws_sdk_ssm::Client::from_conf(conf)
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read a folder of the repository") {
        let e = e.expect("entry");
        let dest = to.join(e.file_name());
        if e.file_type().expect("file type").is_dir() {
            copy_tree(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).expect("copy a file of the repository");
        }
    }
}

/// The repository's Trac build context (trac-legacy/, modes kept) copied into `dir`.
pub fn copy_trac_legacy(dir: &Path) {
    copy_tree(&repo_root().join("trac-legacy"), &dir.join("trac-legacy"));
}

/// What the service's production image is built from, copied into `dir` as its workspace:
/// the manifests, the lock file and the service crate (with its tests, which the image's
/// own .dockerignore leaves out).
pub fn copy_service_workspace(dir: &Path) {
    for f in ["Cargo.toml", "Cargo.lock"] {
        std::fs::copy(repo_root().join(f), dir.join(f)).expect("copy a workspace file");
    }
    copy_tree(
        &repo_root().join("learntrac-service"),
        &dir.join("learntrac-service"),
    );
}

/// An environment file's text with the service's two bases swapped for the stand-ins
/// scripts/test makes (the engine cannot pull) and the RDS CA fetched from the test CA's
/// URL: what it takes to build the production service Dockerfile here.
pub fn with_service_bases(yaml: &str) -> String {
    let rust = peer(
        "LEARNTRAC_TEST_RUST_IMAGE",
        "the rust:1.95-slim-bookworm stand-in",
    );
    let slim = peer(
        "LEARNTRAC_TEST_SLIM_IMAGE",
        "the debian:bookworm-slim stand-in",
    );
    let ca_url = peer("LEARNTRAC_TEST_CA_URL", "the test RDS CA served over HTTP");
    let yaml = yaml
        .replace("rust:1.95-slim-bookworm", &rust)
        .replace("debian:bookworm-slim", &slim);
    if yaml.contains("ca_bundle_url:") {
        return yaml;
    }
    assert!(yaml.contains("  backup_retention_days: 0\n"), "{yaml}");
    yaml.replace(
        "  backup_retention_days: 0\n",
        &format!("  backup_retention_days: 0\n  ca_bundle_url: {ca_url}\n"),
    )
}

/// Removes the images learntrac built for a stack `PREFIX` (`PROJECT-ENV`): every tag of
/// each, and those that a build interrupted by Ctrl-C finished without a tag.
pub fn remove_images(prefix: &str) {
    let list = |filter: String| {
        Command::new("docker")
            .args(["images", "-q", "--filter", &filter])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    let mut ids = list(format!("reference={prefix}-*"));
    for component in ["trac", "learntrac"] {
        ids += &list(format!(
            "label=org.opencontainers.image.title={prefix}-{component}"
        ));
    }
    let mut ids: Vec<&str> = ids.split_whitespace().collect();
    ids.sort_unstable();
    ids.dedup();
    if !ids.is_empty() {
        // --no-prune: the untagged parent layers are the build cache other tests' builds
        // are using at this moment (removing them failed a concurrent build with "failed
        // to get digest … no such file").
        let _ = Command::new("docker")
            .args(["rmi", "-f", "--no-prune"])
            .args(&ids)
            .output();
    }
}

/// Waits for a process with a deadline: a stuck process fails the test (and is killed),
/// never CI's time limit.
pub fn wait_for(
    child: &mut std::process::Child,
    deadline: std::time::Duration,
) -> std::process::ExitStatus {
    let until = std::time::Instant::now() + deadline;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return status;
        }
        if std::time::Instant::now() > until {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the process did not exit within {deadline:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A form of Trac's, submitted as a browser does (through curl) by an anonymous visitor:
/// see [`TracUser::form`].
pub fn trac_form(
    base: &str,
    form_page: &str,
    action: &str,
    fields: &[(&str, &str)],
    file: Option<(&str, &Path)>,
) -> (u16, String, String) {
    TracUser::anonymous(base).form(form_page, action, fields, file)
}

/// Someone using Trac through curl with a cookie jar: anonymous, or signed in through
/// Trac's own `/login` (HTTP digest against the htdigest file, realm LearnTrac), after
/// which Trac's `trac_auth` cookie signs every request in, as in a browser.
pub struct TracUser {
    base: String,
    dir: tempfile::TempDir,
}

impl TracUser {
    pub fn anonymous(base: &str) -> Self {
        TracUser {
            base: base.to_string(),
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// Signs in; panics unless Trac set its login cookie.
    pub fn login(base: &str, user: &str, password: &str) -> Self {
        let me = Self::anonymous(base);
        let out = Command::new("curl")
            .args([
                "-s",
                "--max-time",
                "20",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
            ])
            .args(["--digest", "-u", &format!("{user}:{password}"), "-c"])
            .arg(me.jar())
            .arg(format!("{base}/login"))
            .output()
            .expect("curl");
        let status = String::from_utf8_lossy(&out.stdout).to_string();
        let jar = std::fs::read_to_string(me.jar()).unwrap_or_default();
        assert!(
            jar.contains("trac_auth"),
            "{user} could not sign in through /login (HTTP {status}); cookies: {jar}"
        );
        me
    }

    /// The `trac_auth` cookie's value.
    pub fn auth_cookie(&self) -> String {
        std::fs::read_to_string(self.jar())
            .unwrap_or_default()
            .lines()
            .find_map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                (f.len() >= 7 && f[5] == "trac_auth").then(|| f[6].to_string())
            })
            .expect("a trac_auth cookie")
    }

    /// Whether the cookie `name` was set with Secure (curl's jar: the fourth field).
    pub fn cookie_is_secure(&self, name: &str) -> bool {
        std::fs::read_to_string(self.jar())
            .unwrap_or_default()
            .lines()
            .map(|l| l.trim_start_matches("#HttpOnly_"))
            .any(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                f.len() >= 7 && f[5] == name && f[3] == "TRUE"
            })
    }

    fn jar(&self) -> PathBuf {
        self.dir.path().join("cookies")
    }

    /// GET a page: its status and body.
    pub fn get(&self, path: &str) -> (u16, String) {
        let out = Command::new("curl")
            .args(["-s", "--max-time", "20", "-w", "\n%{http_code}", "-b"])
            .arg(self.jar())
            .arg("-c")
            .arg(self.jar())
            .arg(format!("{}{path}", self.base))
            .output()
            .expect("curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, status) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (status.trim().parse().unwrap_or(0), body.to_string())
    }

    /// A form submitted as a browser does: GET `form_page` for the form token (a cookie
    /// and a hidden field), then POST `fields` (multipart, with `file` as `(field, path)`
    /// when given) to `action`. Returns the POST's status, the response headers of both
    /// requests (the form page's first), and the POST's body.
    pub fn form(
        &self,
        form_page: &str,
        action: &str,
        fields: &[(&str, &str)],
        file: Option<(&str, &Path)>,
    ) -> (u16, String, String) {
        let base = &self.base;
        let jar = self.jar();
        let page_headers = self.dir.path().join("page-headers");
        let page = Command::new("curl")
            .args(["-s", "--max-time", "20", "-b"])
            .arg(&jar)
            .arg("-c")
            .arg(&jar)
            .arg("-D")
            .arg(&page_headers)
            .arg(format!("{base}{form_page}"))
            .output()
            .expect("curl");
        let html = String::from_utf8_lossy(&page.stdout);
        // `name` before `value`, with or without `type` between (the logout form's order).
        let token = html
            .split("name=\"__FORM_TOKEN\"")
            .nth(1)
            .and_then(|r| r.split("value=\"").nth(1))
            .and_then(|r| r.split('"').next())
            .unwrap_or_else(|| panic!("no form token on {form_page}:\n{html}"))
            .to_string();
        let headers = self.dir.path().join("headers");
        let mut post = Command::new("curl");
        post.args(["-s", "--max-time", "30", "-b"])
            .arg(&jar)
            .arg("-c")
            .arg(&jar)
            .arg("-D")
            .arg(&headers)
            .args(["-F", &format!("__FORM_TOKEN={token}")]);
        for (k, v) in fields {
            post.args(["-F", &format!("{k}={v}")]);
        }
        if let Some((field, path)) = file {
            post.arg("-F").arg(format!("{field}=@{}", path.display()));
        }
        let out = post.arg(format!("{base}{action}")).output().expect("curl");
        let head = std::fs::read_to_string(&headers).unwrap_or_default();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let both = std::fs::read_to_string(&page_headers).unwrap_or_default() + &head;
        (
            status,
            both,
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }
}

/// A moto server of one test's own (scripts/lib/moto_server.py, as the harness starts the
/// shared one): for state no other test may touch — a stack's single RDS instance (moto
/// gives every instance the same resource id), an account's IAM roles. Stopped on drop.
pub struct Moto {
    child: std::process::Child,
    pub url: String,
}

impl Moto {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// With more variables, e.g. LEARNTRAC_MOTO_FARGATE_VCPU (scripts/lib/moto_server.py).
    pub fn start_with(vars: &[(&str, &str)]) -> Self {
        let python = peer("LEARNTRAC_TEST_MOTO_PYTHON", "moto's Python");
        let port = free_port();
        let child = Command::new(python)
            .arg(repo_root().join("scripts/lib/moto_server.py"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
            .env("MOTO_ECS_SERVICE_RUNNING", "1")
            .envs(vars.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start moto");
        let moto = Moto {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return moto;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("moto did not start on {}", moto.url);
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// In moto: the cluster `PREFIX-cluster` and its service `PREFIX-trac` (one task of a task
/// definition running `image`), as a deploy leaves them.
pub async fn moto_trac_service(ecs: &aws_sdk_ecs::Client, prefix: &str, image: &str) {
    ecs.create_cluster()
        .cluster_name(format!("{prefix}-cluster"))
        .send()
        .await
        .expect("cluster");
    let td = ecs
        .register_task_definition()
        .family(format!("{prefix}-trac"))
        .container_definitions(
            aws_sdk_ecs::types::ContainerDefinition::builder()
                .name("app")
                .image(image)
                .memory(512)
                .build(),
        )
        .send()
        .await
        .expect("task definition");
    let td_arn = td
        .task_definition()
        .and_then(|t| t.task_definition_arn())
        .expect("arn")
        .to_string();
    ecs.create_service()
        .cluster(format!("{prefix}-cluster"))
        .service_name(format!("{prefix}-trac"))
        .task_definition(&td_arn)
        .desired_count(1)
        .send()
        .await
        .expect("service");
}
