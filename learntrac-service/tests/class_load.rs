//! A class at once, and one student against it. The real service binary on real
//! PostgreSQL (verify-full TLS), Trac's schema from real trac-admin, the real speech engines
//! (PocketSphinx, espeak-ng); only the model is the protocol double. For a minute, 30
//! students each practise, chat and speak in a loop, while one more student opens 300
//! voice sockets, streams noise on those he gets, and fires 30 questions at once, again and
//! again, starting the minute just under the daily token limit.
//!
//! Held: no 5xx and no refusal for the class's practice and chat; the attacker gets the
//! documented share (two sockets, two answers in flight, one engine) and ends within one
//! answer's worth of the token limit; the service's peak RSS stays under the bound
//! docs/service.md states. The figures (p50/p99, counts, RSS) are printed and written to
//! target/test-artifacts/class-load.json.

mod common;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::fake_model::{FakeModel, sse_events};
use common::speech::{self, Socket};
use common::{TOKEN_SECRET, TracEnv};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const STUDENTS: usize = 30;
const MINUTE: Duration = Duration::from_secs(60);
/// The deployment's daily token limit in this test.
const TOKEN_LIMIT: i64 = 200_000;
/// CHAT_MAX_TOKENS's default: one answer's worth of the limit.
const ANSWER: i64 = 600;
/// The bound docs/service.md states for a task under this load.
const RSS_BOUND_MB: u64 = 256;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn token(user: &str) -> String {
    learntrac_service::auth::issue_token(TOKEN_SECRET, user, 3600).expect("token")
}

/// Peak resident memory of a process, in MiB (VmHWM).
fn peak_rss_mb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024)
}

fn percentile(mut v: Vec<Duration>, p: f64) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    v.sort();
    let i = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1;
    v[i]
}

#[derive(Default)]
struct Seen {
    /// (HTTP status, time to the whole answer) of each practice and each chat question.
    practice: Vec<(u16, Duration)>,
    chat: Vec<(u16, Duration)>,
    chat_unfinished: Vec<String>,
    /// How each spoken question ended: "answered", or the error's code.
    voice: Vec<String>,
}

async fn practise(
    client: &reqwest::Client,
    base: &str,
    who: &str,
    concept: i64,
) -> (u16, Duration) {
    let t = Instant::now();
    let status = client
        .post(format!("{base}/api/LearnTrac/concepts/{concept}/practice"))
        .bearer_auth(token(who))
        .json(&json!({"score": 0.7}))
        .send()
        .await
        .map_or(0, |r| r.status().as_u16());
    (status, t.elapsed())
}

/// Asks and reads the whole stream: status, time, events.
async fn chat(
    client: &reqwest::Client,
    base: &str,
    who: &str,
    concept: i64,
    body: Value,
) -> (u16, Duration, Vec<(String, Value)>) {
    let t = Instant::now();
    let Ok(resp) = client
        .post(format!("{base}/api/chat/concepts/{concept}/messages"))
        .bearer_auth(token(who))
        .json(&body)
        .send()
        .await
    else {
        return (0, t.elapsed(), Vec::new());
    };
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    (status, t.elapsed(), sse_events(&text))
}

async fn connect(base: &str, who: &str, concept: i64) -> Result<Socket, u16> {
    let ws = format!(
        "{}/api/voice/ws?concept={concept}",
        base.replace("http://", "ws://")
    );
    match speech::connect(&ws, Some(&token(who))).await {
        Ok(mut s) => {
            let _ready = s.next().await;
            Ok(s)
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
        Err(_) => Err(0),
    }
}

async fn student(
    base: String,
    who: String,
    concept: i64,
    question: Arc<Vec<u8>>,
    until: Instant,
) -> Seen {
    let client = reqwest::Client::new();
    let mut seen = Seen::default();
    let mut socket = connect(&base, &who, concept).await.ok();
    let mut conversation: Option<i64> = None;
    while Instant::now() < until {
        seen.practice
            .push(practise(&client, &base, &who, concept).await);
        let mut body = json!({"message": "How do I start?"});
        if let Some(c) = conversation {
            body["conversation_id"] = json!(c);
        }
        let (status, took, events) = chat(&client, &base, &who, concept, body).await;
        seen.chat.push((status, took));
        if status == 200 {
            conversation = events
                .iter()
                .find(|(n, _)| n == "conversation")
                .and_then(|(_, d)| d["conversation_id"].as_i64());
            if events.last().map(|e| e.0.as_str()) != Some("done") {
                seen.chat_unfinished.push(format!("{events:?}"));
            }
        }
        if let Some(s) = socket.as_mut() {
            let reply = speech::ask(s, &question).await;
            seen.voice.push(match reply.of("error") {
                Some(e) => e["code"].as_str().unwrap_or("?").to_string(),
                None if reply.audio.is_some() => "answered".into(),
                None => "no reply".into(),
            });
            if reply.of("error").is_some_and(|e| e["code"] == "closed") {
                socket = connect(&base, &who, concept).await.ok();
            }
        }
    }
    seen
}

/// Streams 29 s of noise and ends it, again and again, on one socket.
async fn noise(mut socket: Socket, until: Instant) -> Vec<String> {
    let noise: Vec<u8> = (0..29 * 16_000u32)
        .flat_map(|i| ((i.wrapping_mul(2_654_435_761) >> 16) as i16).to_le_bytes())
        .collect();
    let mut ends = Vec::new();
    while Instant::now() < until {
        let reply = tokio::time::timeout(Duration::from_secs(60), speech::ask(&mut socket, &noise))
            .await
            .map_or_else(
                |_| "timed out".to_string(),
                |r| {
                    r.of("error")
                        .and_then(|e| e["code"].as_str())
                        .unwrap_or("answered")
                        .to_string()
                },
            );
        ends.push(reply);
    }
    let _ = socket.send(Message::Close(None)).await;
    ends
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_class_keeps_answering_while_one_student_attacks() {
    let env = TracEnv::postgres().await;
    let mut tickets: Vec<Value> = (0..STUDENTS)
        .map(|i| json!({"summary": "Equations", "owner": format!("s{i:02}"), "milestone": "algebra"}))
        .collect();
    tickets.push(json!({"summary": "Equations", "owner": "mallory", "milestone": "algebra"}));
    let ids = env.seed(json!({"milestones": ["algebra"], "tickets": tickets}));
    let model = FakeModel::start().await;

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let logs = tempfile::NamedTempFile::new().expect("log file");
    let mut service = Command::new(env!("CARGO_BIN_EXE_learntrac-service"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &env.database_url)
        .env("PORT", port.to_string())
        .env("LEARNTRAC_TOKEN_SECRET", TOKEN_SECRET)
        .env("LOG_FORMAT", "json")
        .env("CHAT_BASE_URL", &model.base_url)
        .env("CHAT_MODEL", "tutor-model")
        .env("CHAT_DAILY_REQUESTS", "1000")
        .env("CHAT_DAILY_TOKENS", TOKEN_LIMIT.to_string())
        .env("VOICE_ENGINE", "local")
        .stdout(Stdio::null())
        .stderr(logs.reopen().expect("log file"))
        .spawn()
        .expect("start the service");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !client
        .get(format!("{base}/api/LearnTrac/health"))
        .send()
        .await
        .is_ok_and(|r| r.status() == 200)
    {
        assert!(
            Instant::now() < deadline,
            "the service did not come up: {}",
            std::fs::read_to_string(logs.path()).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The attacker starts the minute a little under the day's limit.
    let day = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400) as i64;
    let mut db = common::sqlx_pg(&env.database_url).await;
    sqlx::query(
        "INSERT INTO learntrac_chat_usage (student, day, requests, tokens) VALUES ('mallory', $1, 0, $2)",
    )
    .bind(day)
    .bind(TOKEN_LIMIT - 200)
    .execute(&mut db)
    .await
    .expect("mallory's usage");

    let dir = tempfile::tempdir().expect("dir");
    let wav = dir.path().join("q.wav");
    speech::say("how do i solve an equation", &wav, 0.3);
    let question = Arc::new(speech::pcm_of(&wav));
    let until = Instant::now() + MINUTE;

    // The attacker: 300 sockets at once, noise on what he gets, 30 questions at once.
    let mallory = *ids.last().expect("mallory's concept");
    let opened =
        futures_util::future::join_all((0..300).map(|_| connect(&base, "mallory", mallory))).await;
    let mut refused = std::collections::BTreeMap::<u16, usize>::new();
    let mut his = Vec::new();
    for o in opened {
        match o {
            Ok(s) => his.push(s),
            Err(code) => *refused.entry(code).or_default() += 1,
        }
    }
    let noise_runs: Vec<_> = his
        .into_iter()
        .map(|s| tokio::spawn(noise(s, until)))
        .collect();
    let floods = {
        let base = base.clone();
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
            while Instant::now() < until {
                let round = futures_util::future::join_all((0..30).map(|_| {
                    chat(
                        &client,
                        &base,
                        "mallory",
                        mallory,
                        json!({"message": "[slow] tell me"}),
                    )
                }))
                .await;
                for (s, _, _) in round {
                    *statuses.entry(s).or_default() += 1;
                }
                // A quarter-second between volleys: four a second, 120 questions a second.
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            statuses
        })
    };

    // The class.
    let class: Vec<_> = (0..STUDENTS)
        .map(|i| {
            tokio::spawn(student(
                base.clone(),
                format!("s{i:02}"),
                ids[i],
                question.clone(),
                until,
            ))
        })
        .collect();
    let mut seen = Seen::default();
    for s in futures_util::future::join_all(class).await {
        let s = s.expect("a student's task");
        seen.practice.extend(s.practice);
        seen.chat.extend(s.chat);
        seen.chat_unfinished.extend(s.chat_unfinished);
        seen.voice.extend(s.voice);
    }
    let flood = floods.await.expect("the flood");
    let mut noise_ends = Vec::new();
    for n in noise_runs {
        noise_ends.extend(n.await.expect("noise"));
    }
    let rss = peak_rss_mb(service.id());
    // Answers still being settled finish before the usage is read.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mallory_tokens: i64 = sqlx::query_scalar(
        "SELECT tokens FROM learntrac_chat_usage WHERE student = 'mallory' AND day = $1",
    )
    .bind(day)
    .fetch_one(&mut db)
    .await
    .expect("usage");
    let _ = service.kill();
    let _ = service.wait();

    let count = |v: &[String]| {
        let mut m = std::collections::BTreeMap::<String, usize>::new();
        for x in v {
            *m.entry(x.clone()).or_default() += 1;
        }
        m
    };
    let times = |v: &[(u16, Duration)]| v.iter().map(|x| x.1).collect::<Vec<_>>();
    let ms = |d: Duration| d.as_millis() as u64;
    let figures = json!({
        "students": STUDENTS,
        "seconds": MINUTE.as_secs(),
        "practice": {"requests": seen.practice.len(),
                     "p50_ms": ms(percentile(times(&seen.practice), 0.5)),
                     "p99_ms": ms(percentile(times(&seen.practice), 0.99))},
        "chat": {"questions": seen.chat.len(),
                 "p50_ms": ms(percentile(times(&seen.chat), 0.5)),
                 "p99_ms": ms(percentile(times(&seen.chat), 0.99))},
        "voice": count(&seen.voice),
        "attacker": {
            "sockets_opened": 300 - refused.values().sum::<usize>(),
            "sockets_refused": refused,
            "noise_utterances": count(&noise_ends),
            "parallel_questions": flood,
            "tokens_at_end": mallory_tokens,
            "token_limit": TOKEN_LIMIT,
        },
        "service_peak_rss_mb": rss,
    });
    println!("{figures:#}");
    let artifacts =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts");
    let _ = std::fs::create_dir_all(&artifacts);
    let _ = std::fs::write(artifacts.join("class-load.json"), format!("{figures:#}\n"));

    // The class was served: every practice and every question answered, none refused.
    let bad: Vec<_> = seen
        .practice
        .iter()
        .chain(&seen.chat)
        .filter(|(s, _)| *s != 200)
        .collect();
    assert!(bad.is_empty(), "the class got {bad:?}\n{figures:#}");
    assert!(
        seen.chat_unfinished.is_empty(),
        "{:?}",
        seen.chat_unfinished
    );
    assert!(seen.chat.len() >= STUDENTS * 3, "{figures:#}");
    // Voice kept working for the class: answered, or told it is busy — never a failure.
    let voice = count(&seen.voice);
    assert!(
        voice.get("answered").copied().unwrap_or(0) >= STUDENTS,
        "{figures:#}"
    );
    assert!(
        voice.keys().all(|k| k == "answered" || k == "busy"),
        "{figures:#}"
    );
    // The attacker got his share and no more.
    assert_eq!(figures["attacker"]["sockets_opened"], 2, "{figures:#}");
    assert_eq!(refused.get(&429).copied(), Some(298), "{figures:#}");
    assert!(
        mallory_tokens <= TOKEN_LIMIT + ANSWER,
        "tokens within one answer's worth of the limit: {figures:#}"
    );
    assert!(flood.get(&200).copied().unwrap_or(0) >= 1, "{figures:#}");
    assert!(flood.keys().all(|s| *s == 200 || *s == 429), "{figures:#}");
    assert!(rss > 0 && rss < RSS_BOUND_MB, "{figures:#}");
    let log = std::fs::read_to_string(logs.path()).unwrap_or_default();
    assert!(!log.contains("panicked"), "{log}");
}
