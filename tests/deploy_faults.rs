//! What moto cannot produce, injected at the `aws/` boundary through a scripted `Cloud`:
//! failed rollouts, circuit-breaker rollbacks, stopped tasks with reasons, service events,
//! throttling, unhealthy targets and timeouts. Each asserts the exit code and the printed reason.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use learntrac::Error;
use learntrac::aws::cloud::Cloud;
use learntrac::aws::ecs::{Deployment, Event, ServiceState, StoppedTask};
use learntrac::aws::elbv2::Target;
use learntrac::deploy::report::{Event as Report, Reporter};
use learntrac::deploy::rollout::{Expected, RolledOut, WaitOptions, wait_all};
use learntrac::deploy::verify;
use learntrac::error::exit;

/// Answers each poll with the next scripted state; the last one repeats.
#[derive(Default)]
struct Scripted {
    polls: Mutex<VecDeque<Result<ServiceState, Error>>>,
    last: Mutex<Option<ServiceState>>,
    stopped: Vec<StoppedTask>,
    /// What each stopped task wrote last (CloudWatch Logs), by task id.
    logs: Vec<(String, Vec<String>)>,
    health: Mutex<VecDeque<Vec<Target>>>,
    calls: Mutex<usize>,
}

impl Scripted {
    fn new(polls: Vec<Result<ServiceState, Error>>) -> Self {
        Scripted {
            polls: Mutex::new(polls.into()),
            ..Scripted::default()
        }
    }
}

impl Cloud for Scripted {
    fn services<'a>(
        &'a self,
        _cluster: &'a str,
        _names: &'a [String],
    ) -> BoxFuture<'a, learntrac::Result<Vec<ServiceState>>> {
        *self.calls.lock().expect("lock") += 1;
        let next = self.polls.lock().expect("lock").pop_front();
        let answer = match next {
            Some(Ok(s)) => {
                *self.last.lock().expect("lock") = Some(s.clone());
                Ok(vec![s])
            }
            Some(Err(e)) => Err(e),
            None => Ok(self
                .last
                .lock()
                .expect("lock")
                .clone()
                .into_iter()
                .collect()),
        };
        Box::pin(async move { answer })
    }

    fn stopped_tasks<'a>(
        &'a self,
        _cluster: &'a str,
        _service: &'a str,
    ) -> BoxFuture<'a, learntrac::Result<Vec<StoppedTask>>> {
        let tasks = self.stopped.clone();
        Box::pin(async move { Ok(tasks) })
    }

    fn force_new_deployment<'a>(
        &'a self,
        _cluster: &'a str,
        _service: &'a str,
    ) -> BoxFuture<'a, learntrac::Result<Option<String>>> {
        Box::pin(async { Ok(Some("ecs-svc/forced".to_string())) })
    }

    fn target_health<'a>(
        &'a self,
        _target_group_arn: &'a str,
    ) -> BoxFuture<'a, learntrac::Result<Vec<Target>>> {
        let mut h = self.health.lock().expect("lock");
        let answer = if h.len() > 1 {
            h.pop_front().unwrap_or_default()
        } else {
            h.front().cloned().unwrap_or_default()
        };
        Box::pin(async move { Ok(answer) })
    }

    fn log_tail<'a>(&'a self, _service: &'a str, task_id: &'a str) -> BoxFuture<'a, Vec<String>> {
        let lines = self
            .logs
            .iter()
            .find(|(t, _)| t == task_id)
            .map(|(_, l)| l.clone())
            .unwrap_or_default();
        Box::pin(async move { lines })
    }
}

const TD_OLD: &str = "learntrac-dev-learntrac:3";
const TD_NEW: &str = "learntrac-dev-learntrac:4";

fn deployment(status: &str, id: &str, td: &str, rollout: &str, reason: Option<&str>) -> Deployment {
    Deployment {
        id: id.into(),
        status: status.into(),
        task_definition: td.into(),
        rollout_state: Some(rollout.into()),
        rollout_reason: reason.map(String::from),
        desired: 2,
        running: 0,
        pending: 0,
        failed_tasks: 0,
    }
}

fn state(running: i32, deployments: Vec<Deployment>, events: &[(&str, &str)]) -> ServiceState {
    ServiceState {
        name: "learntrac-dev-learntrac".into(),
        status: "ACTIVE".into(),
        desired: 2,
        running,
        pending: 2 - running,
        deployments,
        // Newest first, as ECS lists them.
        events: events
            .iter()
            .rev()
            .map(|(id, m)| Event {
                id: (*id).into(),
                at: Some(4_000_000_000),
                message: (*m).into(),
            })
            .collect(),
        task_definition_arn: None,
    }
}

fn expected(deployment_id: Option<&str>, td: &str) -> Vec<Expected> {
    vec![Expected {
        service: "learntrac".into(),
        ecs_name: "learntrac-dev-learntrac".into(),
        task_definition: td.into(),
        deployment_id: deployment_id.map(String::from),
    }]
}

fn options(timeout_ms: u64) -> WaitOptions {
    WaitOptions {
        timeout: Duration::from_millis(timeout_ms),
        poll: Duration::from_millis(5),
        since: 0,
    }
}

async fn wait(
    cloud: &Scripted,
    expected: &[Expected],
    timeout_ms: u64,
) -> (learntrac::Result<Vec<RolledOut>>, Vec<Report>) {
    let (reporter, events) = Reporter::memory();
    let r = wait_all(
        cloud,
        "learntrac-dev-cluster",
        expected,
        &options(timeout_ms),
        &reporter,
    )
    .await;
    let events = events.lock().expect("lock").clone();
    (r, events)
}

fn messages(events: &[Report], kind: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.kind == kind)
        .map(|e| e.message.clone())
        .collect()
}

fn failure(r: learntrac::Result<Vec<RolledOut>>) -> Error {
    match r {
        Ok(done) => panic!("expected a failure, got {done:?}"),
        Err(e) => e,
    }
}

#[tokio::test]
async fn a_completed_rollout_waits_for_running_to_reach_desired_and_prints_each_event_once() {
    let cloud = Scripted::new(vec![
        Ok(state(
            0,
            vec![deployment("PRIMARY", "d1", TD_NEW, "IN_PROGRESS", None)],
            &[(
                "e1",
                "(service learntrac-dev-learntrac) has started 2 tasks",
            )],
        )),
        Ok(state(
            1,
            vec![deployment("PRIMARY", "d1", TD_NEW, "COMPLETED", None)],
            &[(
                "e1",
                "(service learntrac-dev-learntrac) has started 2 tasks",
            )],
        )),
        Ok(state(
            2,
            vec![deployment("PRIMARY", "d1", TD_NEW, "COMPLETED", None)],
            &[
                (
                    "e1",
                    "(service learntrac-dev-learntrac) has started 2 tasks",
                ),
                (
                    "e2",
                    "(service learntrac-dev-learntrac) has reached a steady state.",
                ),
            ],
        )),
    ]);
    let (r, events) = wait(&cloud, &expected(None, TD_NEW), 5_000).await;
    let done = r.expect("rolled out");
    assert_eq!(done[0].task_definition, TD_NEW);
    assert_eq!((done[0].running, done[0].desired), (2, 2));
    assert_eq!(
        *cloud.calls.lock().expect("lock"),
        3,
        "not done while running < desired"
    );
    assert_eq!(
        messages(&events, "ecs_event"),
        vec![
            "(service learntrac-dev-learntrac) has started 2 tasks",
            "(service learntrac-dev-learntrac) has reached a steady state."
        ]
    );
}

#[tokio::test]
async fn a_failed_rollout_exits_6_with_its_reason_and_the_stopped_tasks() {
    let mut cloud = Scripted::new(vec![
        Ok(state(
            0,
            vec![deployment("PRIMARY", "d1", TD_NEW, "IN_PROGRESS", None)],
            &[],
        )),
        Ok(state(
            0,
            vec![deployment(
                "PRIMARY",
                "d1",
                TD_NEW,
                "FAILED",
                Some("ECS deployment circuit breaker: tasks failed to start."),
            )],
            &[],
        )),
    ]);
    cloud.stopped = vec![
        StoppedTask {
            id: "0f1e2d".into(),
            task_definition: TD_NEW.into(),
            reason: "Essential container in task exited".into(),
            containers: vec!["app: exit 2".into()],
        },
        // A task of the old revision stopping is not this rollout's news.
        StoppedTask {
            id: "old111".into(),
            task_definition: TD_OLD.into(),
            reason: "Scaling activity initiated by deployment".into(),
            containers: vec![],
        },
    ];
    cloud.logs = vec![(
        "0f1e2d".into(),
        vec![
            "starting LearnTrac".into(),
            "error: configuration: DATABASE_SSLMODE `require-full` is not a libpq sslmode".into(),
        ],
    )];
    let (r, events) = wait(&cloud, &expected(None, TD_NEW), 5_000).await;
    let e = failure(r);
    assert_eq!(e.exit_code(), exit::ROLLOUT);
    let text = e.to_string();
    // What the CLI prints after `error: ` (shown with `cargo test -- --nocapture`).
    println!("{text}");
    assert!(
        text.trim_end().ends_with(
            "| starting LearnTrac\n        | error: configuration: DATABASE_SSLMODE `require-full` is not a libpq sslmode"
        ),
        "the error ends with what the stopped task wrote last: {text}"
    );
    assert!(
        text.contains("the rollout of learntrac-dev-learntrac:4 FAILED"),
        "{text}"
    );
    assert!(
        text.contains("circuit breaker: tasks failed to start"),
        "{text}"
    );
    assert!(
        text.contains("task 0f1e2d stopped: Essential container in task exited (app: exit 2)"),
        "{text}"
    );
    assert_eq!(
        messages(&events, "task_stopped"),
        vec!["task 0f1e2d stopped: Essential container in task exited (app: exit 2)"],
        "printed once, old revision's task left out"
    );
}

#[tokio::test]
async fn a_circuit_breaker_rollback_is_a_failure_not_a_success() {
    // The rollback deployment is PRIMARY, COMPLETED and fully running — on the old revision.
    let cloud = Scripted::new(vec![
        Ok(state(
            0,
            vec![deployment("PRIMARY", "d4", TD_NEW, "IN_PROGRESS", None)],
            &[],
        )),
        Ok(state(
            2,
            vec![
                deployment("PRIMARY", "d5", TD_OLD, "COMPLETED", None),
                deployment(
                    "ACTIVE",
                    "d4",
                    TD_NEW,
                    "FAILED",
                    Some("ECS deployment circuit breaker: rolling back to deploymentId d3."),
                ),
            ],
            &[(
                "e9",
                "(service learntrac-dev-learntrac) rolling back to deployment d3",
            )],
        )),
    ]);
    let (r, events) = wait(&cloud, &expected(None, TD_NEW), 5_000).await;
    let e = failure(r);
    assert_eq!(e.exit_code(), exit::ROLLOUT);
    let text = e.to_string();
    assert!(
        text.contains("rolled back: the PRIMARY deployment runs learntrac-dev-learntrac:3 instead of learntrac-dev-learntrac:4"),
        "{text}"
    );
    assert!(text.contains("rolling back to deploymentId d3"), "{text}");
    assert_eq!(
        messages(&events, "ecs_event"),
        vec!["(service learntrac-dev-learntrac) rolling back to deployment d3"]
    );
}

#[tokio::test]
async fn a_forced_redeploy_replaced_by_another_deployment_is_a_rollback() {
    // Same task definition, but the PRIMARY is not the deployment we started.
    let cloud = Scripted::new(vec![Ok(state(
        2,
        vec![deployment(
            "PRIMARY",
            "ecs-svc/other",
            TD_NEW,
            "COMPLETED",
            None,
        )],
        &[],
    ))]);
    let (r, _) = wait(&cloud, &expected(Some("ecs-svc/ours"), TD_NEW), 5_000).await;
    let e = failure(r);
    assert_eq!(e.exit_code(), exit::ROLLOUT);
    assert!(e.to_string().contains("rolled back"), "{e}");
}

fn throttled() -> Error {
    Error::Aws {
        what: "describe the ECS services".into(),
        which: "learntrac-dev-cluster".into(),
        cause: "ThrottlingException: Rate exceeded".into(),
    }
}

#[tokio::test]
async fn throttling_is_retried_and_reported() {
    let cloud = Scripted::new(vec![
        Err(throttled()),
        Err(throttled()),
        Ok(state(
            2,
            vec![deployment("PRIMARY", "d1", TD_NEW, "COMPLETED", None)],
            &[],
        )),
    ]);
    let (r, events) = wait(&cloud, &expected(None, TD_NEW), 5_000).await;
    r.expect("rolled out after the throttling");
    let warnings = messages(&events, "warning");
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings[0].contains("ThrottlingException: Rate exceeded (attempt 1, retrying)"),
        "{warnings:?}"
    );
}

#[tokio::test]
async fn errors_that_do_not_stop_give_up_with_the_error() {
    let cloud = Scripted::new((0..10).map(|_| Err(throttled())).collect());
    let (r, _) = wait(&cloud, &expected(None, TD_NEW), 60_000).await;
    let e = failure(r);
    assert_eq!(e.exit_code(), exit::FAILURE);
    assert!(e.to_string().contains("ThrottlingException"), "{e}");
}

#[tokio::test]
async fn a_rollout_that_never_completes_times_out_with_exit_7_and_its_last_state() {
    let cloud = Scripted::new(vec![Ok(state(
        1,
        vec![
            deployment("PRIMARY", "d4", TD_NEW, "IN_PROGRESS", None),
            deployment("ACTIVE", "d3", TD_OLD, "COMPLETED", None),
        ],
        &[(
            "e5",
            "(service learntrac-dev-learntrac) is unable to consistently start tasks successfully.",
        )],
    ))]);
    let started = Instant::now();
    let (r, _) = wait(&cloud, &expected(None, TD_NEW), 300).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "gave up on time"
    );
    let e = failure(r);
    assert_eq!(e.exit_code(), exit::TIMEOUT);
    let text = e.to_string();
    assert!(text.contains("did not complete within 0s"), "{text}");
    assert!(
        text.contains("PRIMARY learntrac-dev-learntrac:4 IN_PROGRESS"),
        "{text}"
    );
    assert!(
        text.contains("unable to consistently start tasks"),
        "{text}"
    );
}

fn target(state: &str, reason: Option<&str>, description: Option<&str>) -> Target {
    Target {
        id: "10.0.1.17".into(),
        port: Some(8001),
        state: state.into(),
        reason: reason.map(String::from),
        description: description.map(String::from),
    }
}

async fn targets(cloud: &Scripted, timeout_ms: u64) -> (learntrac::Result<()>, Vec<Report>) {
    let (reporter, events) = Reporter::memory();
    let groups = vec![("learntrac".to_string(), "arn:tg/learntrac".to_string())];
    let r = verify::targets(
        cloud,
        &groups,
        Duration::from_millis(timeout_ms),
        Duration::from_millis(5),
        &reporter,
    )
    .await
    .map(|_| ());
    let events = events.lock().expect("lock").clone();
    (r, events)
}

#[tokio::test]
async fn unhealthy_targets_fail_verify_with_exit_6_and_the_reason_code() {
    let cloud = Scripted::default();
    *cloud.health.lock().expect("lock") = vec![
        vec![target("initial", Some("Elb.RegistrationInProgress"), None)],
        vec![target(
            "unhealthy",
            Some("Target.FailedHealthChecks"),
            Some("Health checks failed with these codes: [502]"),
        )],
    ]
    .into();
    let (r, events) = targets(&cloud, 200).await;
    let e = r.expect_err("unhealthy");
    assert_eq!(e.exit_code(), exit::ROLLOUT);
    let text = e.to_string();
    assert!(
        text.contains("target 10.0.1.17 unhealthy (Target.FailedHealthChecks): Health checks failed with these codes: [502]"),
        "{text}"
    );
    assert_eq!(
        messages(&events, "target"),
        vec![
            "target 10.0.1.17 initial (Elb.RegistrationInProgress)",
            "target 10.0.1.17 unhealthy (Target.FailedHealthChecks): Health checks failed with these codes: [502]"
        ],
        "each change printed once"
    );
}

#[tokio::test]
async fn targets_that_never_register_time_out_with_exit_7() {
    let cloud = Scripted::default();
    let (r, _) = targets(&cloud, 100).await;
    let e = r.expect_err("no targets");
    assert_eq!(e.exit_code(), exit::TIMEOUT);
    assert!(e.to_string().contains("no targets registered"), "{e}");
}

#[tokio::test]
async fn healthy_targets_pass() {
    let cloud = Scripted::default();
    *cloud.health.lock().expect("lock") = vec![vec![target("healthy", None, None)]].into();
    let (r, _) = targets(&cloud, 1_000).await;
    r.expect("healthy");
}

/// A load balancer with no healthy target answers 503: a routed path must not.
#[tokio::test]
async fn a_probe_answered_with_503_fails_with_exit_6_naming_the_path() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let served = Arc::new(Mutex::new(Vec::<String>::new()));
    let log = served.clone();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut s, _)) = listener.accept().await {
            let mut buf = [0u8; 2048];
            let n = s.read(&mut buf).await.unwrap_or(0);
            let req = String::from_utf8_lossy(&buf[..n]).to_string();
            let path = req.split_whitespace().nth(1).unwrap_or("").to_string();
            let status = if path.starts_with("/api/") {
                "503 Service Unavailable"
            } else {
                "404 Not Found"
            };
            log.lock().expect("lock").push(path);
            let _ = s
                .write_all(
                    format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                        .as_bytes(),
                )
                .await;
        }
    });
    let (reporter, _) = Reporter::memory();
    let paths = vec![
        ("/wiki/".to_string(), "trac".to_string()),
        ("/api/LearnTrac/".to_string(), "learntrac".to_string()),
    ];
    let e = verify::probe(
        &format!("http://{addr}"),
        &paths,
        &[],
        Instant::now(),
        &reporter,
    )
    .await
    .expect_err("503");
    assert_eq!(e.exit_code(), exit::ROLLOUT);
    let text = e.to_string();
    assert!(text.contains("/api/LearnTrac/ (learntrac) → 503"), "{text}");
    assert!(
        !text.contains("/wiki/"),
        "a 404 still reaches the application: {text}"
    );
    assert_eq!(served.lock().expect("lock").len(), 2);
}
