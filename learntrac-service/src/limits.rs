//! What one student, and all students together, may hold of one task at once: answers in
//! flight, voice sockets, speech-engine processes. The daily quotas (questions, tokens) are
//! counted in the database (tutor/store.rs) because they span tasks; these bound what a
//! single task spends right now, so one student cannot starve a class.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Answers one student may have the model writing at once (two tabs, or a tab and voice).
pub const ANSWERS_PER_STUDENT: usize = 2;
/// Voice sockets one student may hold open at once.
pub const SOCKETS_PER_STUDENT: usize = 2;
/// Speech-engine runs one student may have at once (their sockets share it): a student
/// with two tabs cannot hold both of a two-core task's engines.
pub const ENGINES_PER_STUDENT: usize = 1;
/// Voice sockets one task holds at once. Each may buffer up to a 30 s utterance (~1 MB), so
/// this bounds the memory voice can take (docs/service.md states the figure).
pub const SOCKETS_PER_TASK: usize = 100;
/// A voice socket with no message from the page for this long is closed (the default of
/// VOICE_IDLE_SECONDS).
pub const SOCKET_IDLE: Duration = Duration::from_secs(120);
/// A voice socket is closed after this long whatever it does; the page reconnects.
pub const SOCKET_LIFETIME: Duration = Duration::from_secs(30 * 60);
/// How long an utterance waits for a free speech engine before the student is told the
/// tutor is busy (the request is not lost: they ask again).
pub const ENGINE_WAIT: Duration = Duration::from_secs(15);

pub struct Limits {
    answers: Arc<PerStudent>,
    sockets: Arc<PerStudent>,
    all_sockets: Arc<Semaphore>,
    engines_of: Arc<PerStudent>,
    /// Speech-engine runs at once: for engines on this machine one per core, so recognition
    /// never takes the cores the API's other requests need; for engines elsewhere (OpenAI,
    /// AWS: a request or a stream costs this task almost nothing) one per socket.
    engines: Arc<Semaphore>,
    /// How long a voice socket may stay quiet.
    pub socket_idle: Duration,
}

impl Limits {
    /// One engine slot per core when the engines run here (`local_engines`), else one per
    /// voice socket: a class talking to Transcribe at once must not queue behind two cores.
    pub fn for_this_machine(socket_idle: Duration, local_engines: bool) -> Self {
        let slots = if local_engines {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            SOCKETS_PER_TASK
        };
        Limits {
            socket_idle,
            ..Limits::new(slots)
        }
    }

    pub fn new(engine_slots: usize) -> Self {
        Limits {
            socket_idle: SOCKET_IDLE,
            answers: PerStudent::new(ANSWERS_PER_STUDENT),
            sockets: PerStudent::new(SOCKETS_PER_STUDENT),
            all_sockets: Arc::new(Semaphore::new(SOCKETS_PER_TASK)),
            engines_of: PerStudent::new(ENGINES_PER_STUDENT),
            engines: Arc::new(Semaphore::new(engine_slots.max(1))),
        }
    }

    /// A slot for one more answer of `student`'s, held until the answer is saved.
    pub fn answer(&self, student: &str) -> Option<Held> {
        self.answers.take(student)
    }

    /// A slot for one more voice socket: the student's own and the task's.
    pub fn socket(&self, student: &str) -> Result<SocketSlot, Refused> {
        let mine = self.sockets.take(student).ok_or(Refused::Student)?;
        let task = self
            .all_sockets
            .clone()
            .try_acquire_owned()
            .map_err(|_| Refused::Task)?;
        Ok(SocketSlot {
            _mine: mine,
            _task: task,
        })
    }

    /// A speech engine for `student`: their own share first (refused at once if another
    /// of their sockets is using it), then the task's, waited for at most [`ENGINE_WAIT`].
    /// None when either stayed busy.
    pub async fn engine(&self, student: &str) -> Option<EngineSlot> {
        let mine = self.engines_of.take(student)?;
        let task = tokio::time::timeout(ENGINE_WAIT, self.engines.clone().acquire_owned())
            .await
            .ok()?
            .ok()?;
        Some(EngineSlot {
            _mine: mine,
            _task: task,
        })
    }
}

/// Why a socket was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// The student already holds their share.
    Student,
    /// The task holds all it can.
    Task,
}

pub struct EngineSlot {
    _mine: Held,
    _task: OwnedSemaphorePermit,
}

pub struct SocketSlot {
    _mine: Held,
    _task: OwnedSemaphorePermit,
}

/// A count per student, each at most `max`.
struct PerStudent {
    max: usize,
    held: Mutex<HashMap<String, usize>>,
}

impl PerStudent {
    fn new(max: usize) -> Arc<Self> {
        Arc::new(PerStudent {
            max,
            held: Mutex::new(HashMap::new()),
        })
    }

    fn take(self: &Arc<Self>, student: &str) -> Option<Held> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let n = held.entry(student.to_string()).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(Held {
            owner: self.clone(),
            student: student.to_string(),
        })
    }
}

/// One of a student's slots; given back when dropped.
pub struct Held {
    owner: Arc<PerStudent>,
    student: String,
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut held = self.owner.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = held.get_mut(&self.student) {
            *n -= 1;
            if *n == 0 {
                // Students who hold nothing take no memory.
                held.remove(&self.student);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_student_holds_at_most_their_share_and_gets_it_back() {
        let limits = Limits::new(1);
        let a = limits.answer("alice");
        let b = limits.answer("alice");
        assert!(a.is_some() && b.is_some());
        assert!(limits.answer("alice").is_none(), "a third answer in flight");
        assert!(limits.answer("bob").is_some(), "bob is not held by alice's");
        drop(a);
        assert!(limits.answer("alice").is_some(), "a slot comes back");
        drop(b);
        assert!(
            limits
                .answers
                .held
                .lock()
                .map(|h| !h.contains_key("alice"))
                .unwrap_or(false),
            "nothing kept for a student who holds nothing"
        );
    }

    #[test]
    fn sockets_are_bounded_per_student_and_per_task() {
        let limits = Limits::new(1);
        let mut open = Vec::new();
        for i in 0..SOCKETS_PER_TASK {
            open.push(limits.socket(&format!("s{}", i / 2)).ok());
        }
        assert!(open.iter().all(Option::is_some));
        assert_eq!(limits.socket("s0").err(), Some(Refused::Student));
        assert_eq!(limits.socket("someone-new").err(), Some(Refused::Task));
        open.pop();
        assert!(limits.socket("someone-new").is_ok());
    }

    #[tokio::test]
    async fn a_student_holds_one_engine_and_others_get_theirs() {
        let limits = Limits::new(2);
        let a = limits.engine("alice").await;
        assert!(a.is_some());
        assert!(
            limits.engine("alice").await.is_none(),
            "her second tab is refused at once"
        );
        let b = limits.engine("bob").await;
        assert!(b.is_some(), "bob gets the other engine");
        drop(a);
        assert!(limits.engine("alice").await.is_some());
    }

    #[tokio::test]
    async fn engines_elsewhere_do_not_queue_a_class_behind_the_cores() {
        let limits = Limits::for_this_machine(SOCKET_IDLE, false);
        let mut held = Vec::new();
        for i in 0..30 {
            held.push(limits.engine(&format!("student-{i}")).await);
        }
        assert!(held.iter().all(Option::is_some), "30 students talk at once");
        assert!(limits.engine("student-0").await.is_none(), "still one each");
    }
}
