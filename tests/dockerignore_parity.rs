//! `learntrac build`'s context against the real Docker CLI's, side by side: for each of
//! ~100 `.dockerignore` files (the cases Docker is known for, and generated combinations)
//! over one generated tree (empty and private folders, setuid, symlinks, hard links, a FIFO,
//! a socket, a device, long and non-UTF-8 names), `docker build -f <outside> <tree>` runs
//! through a proxy in front of the engine that records the context it sends, and the
//! entries (names, types, modes, owners, times, link targets, contents) must equal the ones
//! `docker::context::pack` produces. A few cases then go through the engine with `COPY .`
//! to show the rendered Dockerfile and `.dockerignore` stay out of the image as they do for
//! the CLI. Report: target/test-artifacts/dockerignore-parity.txt.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use learntrac::docker::context::{self, DOCKERFILE};
use sha2::{Digest, Sha256};

/// Per connection: what the client sent, and whether it has closed its side.
type Captured = Arc<Mutex<Vec<Arc<Mutex<(Vec<u8>, bool)>>>>>;

/// A Unix socket that forwards to the engine and keeps what clients sent.
fn tee_proxy(dir: &Path) -> (PathBuf, Captured) {
    let upstream = match std::env::var("DOCKER_HOST") {
        Ok(h) if h.starts_with("unix://") => PathBuf::from(&h["unix://".len()..]),
        _ => PathBuf::from("/var/run/docker.sock"),
    };
    let sock = dir.join("proxy.sock");
    let listener = UnixListener::bind(&sock).expect("bind the proxy socket");
    let captured: Captured = Arc::default();
    let conns = captured.clone();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(engine) = UnixStream::connect(&upstream) else {
                continue;
            };
            let log = Arc::new(Mutex::new((Vec::new(), false)));
            conns.lock().expect("lock").push(log.clone());
            let (mut c_read, mut e_write) = (
                client.try_clone().expect("clone"),
                engine.try_clone().expect("clone"),
            );
            std::thread::spawn(move || {
                let mut buf = [0u8; 65536];
                while let Ok(n) = c_read.read(&mut buf) {
                    log.lock().expect("lock").0.extend_from_slice(&buf[..n]);
                    if n == 0 || e_write.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                log.lock().expect("lock").1 = true;
                let _ = e_write.shutdown(std::net::Shutdown::Write);
            });
            let (mut e_read, mut c_write) = (engine, client);
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut e_read, &mut c_write);
                let _ = c_write.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    (sock, captured)
}

/// The body of the first `POST …/build` among recorded HTTP/1.1 requests (chunked or sized).
fn build_body(stream: &[u8]) -> Option<Vec<u8>> {
    let mut rest = stream;
    while let Some(end) = find(rest, b"\r\n\r\n") {
        let head = String::from_utf8_lossy(&rest[..end]).to_string();
        rest = &rest[end + 4..];
        let header = |name: &str| {
            head.lines().skip(1).find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_string())
            })
        };
        let mut body = Vec::new();
        if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            loop {
                let line_end = find(rest, b"\r\n")?;
                let size_text = String::from_utf8_lossy(&rest[..line_end]).to_string();
                let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
                rest = &rest[line_end + 2..];
                if size == 0 {
                    rest = &rest[find(rest, b"\r\n")? + 2..];
                    break;
                }
                body.extend_from_slice(rest.get(..size)?);
                rest = &rest[size + 2..];
            }
        } else if let Some(len) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
            body.extend_from_slice(rest.get(..len)?);
            rest = &rest[len..];
        }
        if head
            .lines()
            .next()
            .is_some_and(|l| l.starts_with("POST ") && l.contains("/build"))
        {
            // The CLI ends its context after the last entry's data, without the padding and
            // end-of-archive blocks (the engine reads to EOF); a tar reader wants them.
            body.resize(body.len().div_ceil(512) * 512 + 1024, 0);
            return Some(body);
        }
    }
    None
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    name: String,
    kind: char,
    mode: u32,
    owner: (u64, u64, String, String),
    mtime: Option<u64>,
    size: u64,
    link: Option<String>,
    device: (u32, u32),
    sha256: String,
}

fn show(b: &[u8]) -> String {
    format!("{}", b.escape_ascii())
}

/// Entries of a context tar, the Dockerfile under [`DOCKERFILE`] whatever it was called.
fn entries(tar_bytes: &[u8], dockerfile_name: &str, created_ignore: bool) -> Vec<Entry> {
    let mut archive = tar::Archive::new(tar_bytes);
    let mut out = Vec::new();
    for e in archive.entries().expect("tar entries") {
        let mut e = e.expect("tar entry");
        let raw_name = e.path_bytes().to_vec();
        let mut name = show(raw_name.strip_suffix(b"/").unwrap_or(&raw_name));
        let h = e.header().clone();
        let mut data = Vec::new();
        e.read_to_end(&mut data).expect("entry data");
        if name == dockerfile_name {
            name = DOCKERFILE.to_string();
        }
        if name == ".dockerignore" {
            let text = String::from_utf8_lossy(&data).replace(dockerfile_name, DOCKERFILE);
            data = text.into_bytes();
        }
        let generated = name == DOCKERFILE || (created_ignore && name == ".dockerignore");
        out.push(Entry {
            kind: h.entry_type().as_byte() as char,
            mode: h.mode().expect("mode"),
            owner: (
                h.uid().expect("uid"),
                h.gid().expect("gid"),
                h.username().ok().flatten().unwrap_or("").to_string(),
                h.groupname().ok().flatten().unwrap_or("").to_string(),
            ),
            mtime: (!generated).then(|| h.mtime().expect("mtime")),
            size: data.len() as u64,
            link: e.link_name_bytes().map(|l| show(&l)),
            device: (
                h.device_major().ok().flatten().unwrap_or(0),
                h.device_minor().ok().flatten().unwrap_or(0),
            ),
            sha256: format!("{:x}", Sha256::digest(&data)),
            name,
        });
    }
    out.sort();
    out
}

/// The tree every case packs: what Docker's walk has opinions about.
fn make_tree(ctx: &Path) -> UnixListener {
    let file = |rel: &[u8], text: &str, mode: u32| {
        let p = ctx.join(std::ffi::OsStr::from_bytes(rel));
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, text).expect("write");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
    };
    let long_dir = format!("deep/{}/{}", "x".repeat(60), "y".repeat(60));
    for (rel, mode) in [
        ("important.txt", 0o644),
        ("a/important.txt", 0o644),
        ("a/b/important.txt", 0o600),
        ("a/b/c/important.txt", 0o640),
        ("a/b/c/other.md", 0o644),
        ("a/x.log", 0o644),
        ("docs/README.md", 0o644),
        ("docs/guide.md", 0o644),
        ("logs/keep.log", 0o644),
        ("logs/old.log", 0o644),
        ("logs/important.txt", 0o644),
        ("node_modules/pkg/index.js", 0o644),
        ("node_modules/pkg/keep.txt", 0o644),
        ("node_modules/pkg/important.txt", 0o644),
        ("sp ace/file 1.log", 0o644),
        ("brace{a,b}/in.txt", 0o644),
        ("{a,b}", 0o644),
        ("[x].txt", 0o644),
        ("x.txt", 0o644),
        ("#hash.txt", 0o644),
        ("!bang.txt", 0o644),
        ("back\\slash.txt", 0o644),
        ("a.b.c", 0o644),
        ("keep.log", 0o644),
        ("notes.md~", 0o644),
        ("ünï/ça.txt", 0o644),
        ("run.sh", 0o755),
        ("suid-tool", 0o4755),
        ("sticky/file", 0o1644),
        ("hard1", 0o644),
    ] {
        file(rel.as_bytes(), &format!("{rel}\n"), mode);
    }
    file(format!("{long_dir}/long.txt").as_bytes(), "long\n", 0o644);
    file(b"bin/\xff\xfe.bin", "not utf-8\n", 0o644);
    file(b"bin/tool.bin", "bin\n", 0o755);
    std::fs::set_permissions(ctx.join("sticky"), std::fs::Permissions::from_mode(0o1777))
        .expect("chmod");
    std::fs::create_dir_all(ctx.join("z")).expect("mkdir");
    std::fs::hard_link(ctx.join("hard1"), ctx.join("z/hard2")).expect("hard link");
    std::fs::hard_link(ctx.join("hard1"), ctx.join("a/b/hard3")).expect("hard link");
    std::fs::create_dir_all(ctx.join("empty")).expect("mkdir");
    std::fs::set_permissions(ctx.join("empty"), std::fs::Permissions::from_mode(0o700))
        .expect("chmod");
    std::fs::create_dir_all(ctx.join("emptier/inner")).expect("mkdir");
    std::fs::create_dir_all(ctx.join("links")).expect("mkdir");
    std::os::unix::fs::symlink("../important.txt", ctx.join("links/to-file")).expect("symlink");
    std::os::unix::fs::symlink("../docs", ctx.join("links/to-dir")).expect("symlink");
    std::os::unix::fs::symlink("nowhere", ctx.join("links/dangling")).expect("symlink");
    std::os::unix::fs::symlink(format!("../{long_dir}/long.txt"), ctx.join("links/long"))
        .expect("symlink");
    let fifo = Command::new("mkfifo")
        .arg(ctx.join("fifo"))
        .status()
        .expect("mkfifo");
    assert!(fifo.success());
    std::fs::create_dir_all(ctx.join("dev")).expect("mkdir");
    // A device needs CAP_MKNOD; without it the tree simply has none.
    let _ = Command::new("mknod")
        .arg(ctx.join("dev/null"))
        .args(["c", "1", "3"])
        .status();
    UnixListener::bind(ctx.join("sock")).expect("socket in the tree")
}

const VOCABULARY: &[&str] = &[
    "*.log",
    "**/*.txt",
    "a",
    "a/b",
    "a/b/c",
    "!a/b/important.txt",
    "!**/important.txt",
    "!important.txt",
    "docs/*",
    "!docs/README.md",
    "**",
    "*",
    "!a",
    "!a/b",
    "logs",
    "logs/",
    "/logs",
    "!logs/keep.log",
    "*/",
    "[a-c]*",
    "[!x]*",
    "[^a]*",
    "{a,b}",
    "brace{a,b}",
    "sp ace",
    "sp*",
    "  #x",
    "#hash.txt",
    "\u{feff}a",
    "../a.txt",
    "./a",
    "!./a/b",
    "**/c",
    "?",
    "??",
    "???*",
    "ünï",
    "ünï/*",
    ".*",
    "!.dockerignore",
    ".dockerignore",
    "empty",
    "emptier/inner",
    "a/**/c",
    "**.log",
    "node_modules",
    "!node_modules/pkg/keep.txt",
    "node_modules/**/*.js",
    "\\[x\\].txt",
    "[[]x].txt",
    "*.bin",
    "bin/?*",
    "deep",
    "!deep/**/*.txt",
    "links",
    "!links/to-file",
    "*~",
    "a/*/",
    "**/b/**",
    "!**/c/**",
    "!*.md",
    "*.md",
    "docs",
    "fifo",
    "sock",
    "dev",
    "hard*",
    "**/hard2",
    "z",
    "sticky/*",
    "!**",
    "bin",
    "!bin/tool.bin",
    "*/*/*",
    "[a-z]",
    "x\\.txt",
    "\\#hash.txt",
];

fn cases() -> Vec<(String, Option<String>)> {
    let mut cases: Vec<(String, Option<String>)> = vec![
        ("no .dockerignore".into(), None),
        ("empty file".into(), Some(String::new())),
        (
            "re-include inside an excluded folder".into(),
            Some("a\n!**/important.txt\n".into()),
        ),
        (
            "re-include by path".into(),
            Some("a\n!a/b/important.txt\n".into()),
        ),
        ("**.log".into(), Some("**.log\n".into())),
        (
            "indented # is a pattern".into(),
            Some("  #hash.txt\n#x.txt\n".into()),
        ),
        (
            "BOM".into(),
            Some("\u{feff}x.txt\n\u{feff}keep.log\n".into()),
        ),
        ("[!x] and [^x]".into(), Some("[!x]*\n[^a]*\n".into())),
        (
            "braces are literal".into(),
            Some("{a,b}\nbrace{a,b}\n".into()),
        ),
        (
            "../ outside".into(),
            Some("../a.txt\n../important.txt\n".into()),
        ),
        ("lone !".into(), Some("a\n!\n".into())),
        ("unclosed [".into(), Some("[\n".into())),
        ("trailing backslash".into(), Some("a\\\n".into())),
        ("everything but docs".into(), Some("*\n!docs\n".into())),
        (
            "everything but one file".into(),
            Some("*\n!docs/README.md\n".into()),
        ),
        (
            "folder then file".into(),
            Some("docs\n!docs/README.md\n".into()),
        ),
        (
            "** but .dockerignore".into(),
            Some("**\n!.dockerignore\n".into()),
        ),
        (
            "the ignore file itself".into(),
            Some(".dockerignore\n".into()),
        ),
        ("everything".into(), Some("*\n".into())),
        (
            "folder slash".into(),
            Some("logs/\n!logs/keep.log\n".into()),
        ),
        (
            "node_modules".into(),
            Some("node_modules\n!node_modules/pkg/keep.txt\n".into()),
        ),
        ("**/b".into(), Some("**/b\n!a/b/important.txt\n".into())),
        (
            "empty folders".into(),
            Some("empty\nemptier/inner\n".into()),
        ),
        ("symlinks".into(), Some("links\n!links/to-file\n".into())),
        ("? inside bin".into(), Some("*.bin\n!bin/?*\n".into())),
        ("deep".into(), Some("deep/**\n!deep/**/*.txt\n".into())),
        ("Go's \\w".into(), Some("[a-c]\\w*\n".into())),
        ("special files".into(), Some("sock\nfifo\n".into())),
        ("escaped #".into(), Some("\\#hash.txt\n".into())),
        (
            "CRLF".into(),
            Some("a\r\n!a/b/important.txt\r\nlogs\r\n".into()),
        ),
        ("hard link first".into(), Some("hard1\n".into())),
        (
            "blank lines".into(),
            Some("a/b/c/\n\n\n!a/b/c/important.txt\n".into()),
        ),
        ("star in class".into(), Some("[a*]\n[*]*\n".into())),
        ("absolute".into(), Some("/a/b\n!/a/b/c\n".into())),
    ];
    // Generated: 1–6 lines from the vocabulary, a fixed seed so a failure repeats.
    let mut seed: u64 = 0x5eed_1ea7;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for n in 0..70 {
        let lines = 1 + next() % 6;
        let text: Vec<&str> = (0..lines)
            .map(|_| VOCABULARY[(next() % VOCABULARY.len() as u64) as usize])
            .collect();
        cases.push((format!("generated {n}"), Some(text.join("\n") + "\n")));
    }
    cases
}

fn docker() -> Command {
    let mut c = Command::new("docker");
    c.env("DOCKER_BUILDKIT", "0")
        .env("DOCKER_CLI_HINTS", "false");
    c
}

/// Runs a command with a deadline (a stuck engine fails the test, not CI).
fn run(mut cmd: Command, stdin: Option<Vec<u8>>) -> std::process::Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn docker");
    let mut input = child.stdin.take().expect("stdin");
    std::thread::spawn(move || {
        if let Some(bytes) = stdin {
            let _ = input.write_all(&bytes);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{cmd:?} did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn build_contexts_match_the_docker_cli() {
    let work = tempfile::tempdir().expect("tempdir");
    let ctx = work.path().join("ctx");
    std::fs::create_dir(&ctx).expect("mkdir");
    let _socket = make_tree(&ctx);
    let outside = work.path().join("outside");
    std::fs::create_dir(&outside).expect("mkdir");
    let dockerfile = "FROM scratch\n";
    std::fs::write(outside.join("Dockerfile"), dockerfile).expect("write");
    let (proxy, captured) = tee_proxy(work.path());

    let mut report = String::new();
    let mut failures = Vec::new();
    let all = cases();
    for (name, ignore) in &all {
        let ignore_path = ctx.join(".dockerignore");
        let _ = std::fs::remove_file(&ignore_path);
        if let Some(text) = ignore {
            std::fs::write(&ignore_path, text).expect("write .dockerignore");
        }
        captured.lock().expect("lock").clear();
        let mut cmd = docker();
        cmd.env("DOCKER_HOST", format!("unix://{}", proxy.display()))
            .args(["build", "-q", "-f"])
            .arg(outside.join("Dockerfile"))
            .arg(&ctx);
        let out = run(cmd, None);
        // The CLI has exited; its connections close as the proxy reads the last bytes.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline
            && captured
                .lock()
                .expect("lock")
                .iter()
                .any(|c| !c.lock().expect("lock").1)
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        let sent = captured
            .lock()
            .expect("lock")
            .iter()
            .find_map(|c| build_body(&c.lock().expect("lock").0));
        let ours = context::pack(&ctx, None).and_then(|p| p.finish(dockerfile));
        let verdict = match (sent, ours) {
            (None, Err(e)) => format!(
                "both refuse: docker: {} | learntrac: {e}",
                last_line(&out.stderr)
            ),
            (None, Ok(_)) => {
                failures.push(name.clone());
                format!(
                    "DIFFERENT: docker refused ({}) and learntrac packed",
                    last_line(&out.stderr)
                )
            }
            (Some(_), Err(e)) => {
                failures.push(name.clone());
                format!("DIFFERENT: docker sent a context and learntrac refused: {e}")
            }
            (Some(theirs), Ok(mine)) => {
                let random = tar_names(&theirs)
                    .into_iter()
                    .find(|n| n.starts_with(".dockerfile."))
                    .expect("the CLI's Dockerfile entry");
                let created = ignore.is_none();
                let a = entries(&theirs, &random, created);
                let b = entries(&mine, DOCKERFILE, created);
                if a == b {
                    format!("same {} entries", a.len())
                } else {
                    failures.push(name.clone());
                    let only_docker: Vec<_> = a.iter().filter(|e| !b.contains(e)).collect();
                    let only_ours: Vec<_> = b.iter().filter(|e| !a.contains(e)).collect();
                    format!(
                        "DIFFERENT:\n    only docker: {only_docker:#?}\n    only learntrac: {only_ours:#?}"
                    )
                }
            }
        };
        report.push_str(&format!(
            "## {name}\n{}\n-> {verdict}\n\n",
            ignore.as_deref().unwrap_or("(none)").escape_debug()
        ));
    }
    let artifacts = common::repo_root().join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).expect("artifacts dir");
    std::fs::write(artifacts.join("dockerignore-parity.txt"), &report).expect("write report");
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from docker build: {failures:?}\n{report}",
        failures.len(),
        all.len()
    );
    assert!(
        all.len() >= 100,
        "the comparison covers {} cases",
        all.len()
    );

    copy_keeps_the_dockerfile_out(&ctx, &outside);
}

fn last_line(b: &[u8]) -> String {
    String::from_utf8_lossy(b)
        .lines()
        .last()
        .unwrap_or("")
        .to_string()
}

fn tar_names(bytes: &[u8]) -> Vec<String> {
    let mut archive = tar::Archive::new(bytes);
    archive
        .entries()
        .expect("entries")
        .map(|e| show(&e.expect("entry").path_bytes()))
        .collect()
}

/// Through the engine: `COPY . /ctx/` from the CLI's context and from ours gives the same
/// files, and neither brings the Dockerfile (nor a .dockerignore that lists itself).
fn copy_keeps_the_dockerfile_out(ctx: &Path, outside: &Path) {
    let dockerfile = "FROM scratch\nCOPY . /ctx/\n";
    std::fs::write(outside.join("Dockerfile"), dockerfile).expect("write");
    for ignore in [
        None,
        Some("a\n!**/important.txt\n"),
        Some(".dockerignore\nlogs\n"),
        Some("*\n!docs\n"),
    ] {
        let ignore_path = ctx.join(".dockerignore");
        let _ = std::fs::remove_file(&ignore_path);
        if let Some(text) = ignore {
            std::fs::write(&ignore_path, text).expect("write .dockerignore");
        }
        let mut cli = docker();
        cli.args(["build", "-q", "-f"])
            .arg(outside.join("Dockerfile"))
            .arg(ctx);
        let theirs = run(cli, None);
        assert!(
            theirs.status.success(),
            "docker build: {}",
            String::from_utf8_lossy(&theirs.stderr)
        );
        let ours_tar = context::pack(ctx, None)
            .and_then(|p| p.finish(dockerfile))
            .expect("pack");
        let mut mine = docker();
        mine.args(["build", "-q", "-f", DOCKERFILE, "-"]);
        let ours = run(mine, Some(ours_tar));
        assert!(
            ours.status.success(),
            "docker build -: {}",
            String::from_utf8_lossy(&ours.stderr)
        );
        let a = image_files(&String::from_utf8_lossy(&theirs.stdout));
        let b = image_files(&String::from_utf8_lossy(&ours.stdout));
        assert!(
            !b.keys().any(|k| k.contains("Dockerfile")),
            "{DOCKERFILE} was copied: {b:#?}"
        );
        let differ: Vec<_> = a
            .iter()
            .filter(|(k, v)| b.get(*k) != Some(v))
            .map(|(k, v)| (k, v, b.get(k)))
            .chain(
                b.iter()
                    .filter(|(k, _)| !a.contains_key(*k))
                    .map(|(k, v)| (k, v, None)),
            )
            .collect();
        assert!(
            differ.is_empty(),
            "COPY . differs for .dockerignore {ignore:?} (name, docker's, ours): {differ:#?}"
        );
        if ignore.is_none() {
            assert!(
                !b.contains_key("ctx/.dockerignore"),
                "the generated .dockerignore was copied"
            );
        }
    }
}

/// Files under /ctx of an image: name → (type, mode, link, content hash).
fn image_files(image: &str) -> BTreeMap<String, (char, u32, Option<String>, String)> {
    let image = image.trim();
    let mut create = docker();
    create.args(["create", image, "none"]);
    let out = run(create, None);
    assert!(
        out.status.success(),
        "docker create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let mut export = docker();
    export.args(["export", &id]);
    let tar_bytes = run(export, None).stdout;
    let mut rm = docker();
    rm.args(["rm", &id]);
    run(rm, None);
    let mut rmi = docker();
    // --no-prune: parent layers may be another case's build cache in use right now.
    rmi.args(["rmi", "--no-prune", image]);
    run(rmi, None);
    let mut archive = tar::Archive::new(tar_bytes.as_slice());
    let mut files = BTreeMap::new();
    let random = regex::Regex::new(r"\.dockerfile\.[0-9a-f]{20}").expect("regex");
    for e in archive.entries().expect("entries") {
        let mut e = e.expect("entry");
        let name = show(&e.path_bytes());
        if !name.starts_with("ctx/") {
            continue;
        }
        let kind = e.header().entry_type().as_byte() as char;
        let mode = e.header().mode().expect("mode");
        let link = e.link_name_bytes().map(|l| show(&l));
        let mut data = Vec::new();
        e.read_to_end(&mut data).expect("data");
        if name == "ctx/.dockerignore" {
            // It names the Dockerfile it came with: the CLI's random name or ours.
            let text = String::from_utf8_lossy(&data).to_string();
            data = random
                .replace_all(&text, DOCKERFILE)
                .into_owned()
                .into_bytes();
        }
        files.insert(
            name.trim_end_matches('/').to_string(),
            (kind, mode, link, format!("{:x}", Sha256::digest(&data))),
        );
    }
    files
}
