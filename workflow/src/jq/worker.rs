//! Evaluation on a per-run worker thread with a deadline: the [`JqWorker`] handle, the pool
//! of idle threads, the job's cancel flag read by the checkpoints in [`super::guard`], and the
//! [`runaway_evaluations`] gauge. See [`super`] for why evaluation leaves the async runtime.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::Instant;

use jaq_core::{Ctx, Vars, data};
use jaq_json::Val;
use serde_json::Value;

use super::value::{from_val, to_val};
use super::{Filter, Jq, lock};

/// Stack of the evaluation thread: deep but finite jq recursion must not abort the process.
const WORKER_STACK_BYTES: usize = 256 * 1024 * 1024;

static RUNAWAY: AtomicUsize = AtomicUsize::new(0);

pub(super) const GIVEN_UP: &str = "evaluation given up at the deadline";

/// Evaluations given up at a deadline whose thread is still computing (it stops at its next
/// checkpoint, see the module docs). Stays above zero only for a program that computes long
/// without reaching one; a host may then want to recycle the process after responding.
pub fn runaway_evaluations() -> usize {
    RUNAWAY.load(Ordering::Relaxed)
}

/// Job states: the worker moves RUNNING → FINISHED, the waiting side RUNNING → ABANDONED;
/// whichever comes second knows the outcome, so the runaway gauge stays exact.
const RUNNING: u8 = 0;
const ABANDONED: u8 = 1;
const FINISHED: u8 = 2;

thread_local! {
    /// State of the job the current worker thread is evaluating.
    static CURRENT: RefCell<Option<Arc<AtomicU8>>> = const { RefCell::new(None) };
}

pub(super) fn cancelled() -> bool {
    CURRENT.with(|c| {
        c.borrow()
            .as_ref()
            .is_some_and(|state| state.load(Ordering::Relaxed) == ABANDONED)
    })
}

/// How many results of a program are wanted.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Take {
    /// The first result, or none.
    First,
    /// Every result; more than `max` fails the evaluation.
    All { max: usize },
}

/// Why an evaluation produced no value.
#[derive(Debug)]
pub(crate) enum EvalError {
    /// The program raised an error (the jq message).
    Runtime(String),
    /// The run's deadline passed first; the evaluation was abandoned (in the sandbox: killed).
    Deadline,
    /// The sandboxed evaluation needed more than its memory limit (bytes) and was stopped.
    Memory(u64),
}

struct Job {
    filter: Arc<Filter>,
    input: Value,
    take: Take,
    deadline: Instant,
    state: Arc<AtomicU8>,
    reply: tokio::sync::oneshot::Sender<Result<Vec<Value>, String>>,
}

/// Idle evaluation threads kept for later runs: starting one costs far more (hundreds of µs)
/// than a whole small run.
const MAX_IDLE_WORKERS: usize = 8;

fn idle_workers() -> &'static Mutex<Vec<mpsc::Sender<Job>>> {
    static IDLE: OnceLock<Mutex<Vec<mpsc::Sender<Job>>>> = OnceLock::new();
    IDLE.get_or_init(Mutex::default)
}

/// The evaluator of one run: a sandboxed worker process when the sandbox is enabled
/// ([`super::process`]), else an evaluation thread — either taken from its pool on first use
/// and returned to it when dropped, unless it was given up at a deadline.
#[derive(Default)]
pub(crate) struct JqWorker {
    jobs: Option<mpsc::Sender<Job>>,
    process: Option<super::process::Worker>,
    memory: u64,
}

impl JqWorker {
    /// An evaluator whose sandboxed evaluations may use `memory` bytes.
    pub(crate) fn with_memory(memory: u64) -> Self {
        Self {
            jobs: None,
            process: None,
            memory,
        }
    }
}

impl Drop for JqWorker {
    fn drop(&mut self) {
        super::process::release(&mut self.process);
        if let Some(jobs) = self.jobs.take() {
            let mut idle = lock(idle_workers());
            if idle.len() < MAX_IDLE_WORKERS {
                idle.push(jobs);
            }
        }
    }
}

impl JqWorker {
    /// Evaluates `jq` on `input`, giving up at `deadline`.
    pub(crate) async fn eval(
        &mut self,
        jq: &Jq,
        input: Value,
        take: Take,
        deadline: tokio::time::Instant,
    ) -> Result<Vec<Value>, EvalError> {
        if super::process::enabled() && !jq.bounded {
            return super::process::eval(&mut self.process, jq, input, take, self.memory, deadline)
                .await;
        }
        let state = Arc::new(AtomicU8::new(RUNNING));
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job = Job {
            filter: Arc::clone(&jq.filter),
            input,
            take,
            deadline: deadline.into_std(),
            state: Arc::clone(&state),
            reply,
        };
        if let Err(mpsc::SendError(job)) = self.sender()?.send(job) {
            // A pooled thread that has died (a panic inside jaq): start a fresh one.
            self.jobs = None;
            self.sender()?.send(job).map_err(|_| worker_gone())?;
        }
        // Most evaluations take microseconds: wait for them briefly on this thread before
        // parking it, since parking and waking cost more than the evaluation itself.
        let mut answer = answer;
        let spin_until = std::time::Instant::now() + HANDOFF_SPIN;
        loop {
            match answer.try_recv() {
                Ok(result) => return result.map_err(EvalError::Runtime),
                Err(tokio::sync::oneshot::error::TryRecvError::Closed) => {
                    return Err(worker_gone());
                }
                Err(tokio::sync::oneshot::error::TryRecvError::Empty)
                    if std::time::Instant::now() < spin_until =>
                {
                    std::hint::spin_loop();
                }
                Err(tokio::sync::oneshot::error::TryRecvError::Empty) => break,
            }
        }
        match tokio::time::timeout_at(deadline, answer).await {
            Ok(Ok(result)) => result.map_err(EvalError::Runtime),
            Ok(Err(_)) => Err(worker_gone()),
            Err(_) => {
                // Counted first so that the worker's decrement can never precede it.
                RUNAWAY.fetch_add(1, Ordering::SeqCst);
                if state
                    .compare_exchange(RUNNING, ABANDONED, Ordering::SeqCst, Ordering::SeqCst)
                    .is_err()
                {
                    RUNAWAY.fetch_sub(1, Ordering::SeqCst); // it had just finished
                }
                // The thread may be stuck in this job; later evaluations get a fresh one.
                self.jobs = None;
                Err(EvalError::Deadline)
            }
        }
    }

    fn sender(&mut self) -> Result<&mpsc::Sender<Job>, EvalError> {
        if self.jobs.is_none() {
            self.jobs = lock(idle_workers()).pop();
        }
        if self.jobs.is_none() {
            let (tx, rx) = mpsc::channel::<Job>();
            std::thread::Builder::new()
                .name("nectar-jq".into())
                .stack_size(WORKER_STACK_BYTES)
                .spawn(move || {
                    while let Some(job) = next_job(&rx) {
                        CURRENT.with(|c| *c.borrow_mut() = Some(Arc::clone(&job.state)));
                        let result = run(&job);
                        if job
                            .state
                            .compare_exchange(RUNNING, FINISHED, Ordering::SeqCst, Ordering::SeqCst)
                            .is_err()
                        {
                            RUNAWAY.fetch_sub(1, Ordering::SeqCst);
                        }
                        let _ = job.reply.send(result);
                    }
                })
                .map_err(|e| EvalError::Runtime(format!("cannot start jq evaluation: {e}")))?;
            self.jobs = Some(tx);
        }
        self.jobs.as_ref().ok_or_else(worker_gone)
    }
}

/// How long either side of a hand-off polls before parking its thread. A run's nodes follow one
/// another within microseconds; waking a parked thread costs tens of microseconds on an idle
/// machine, more than most evaluations.
const HANDOFF_SPIN: std::time::Duration = std::time::Duration::from_micros(40);

/// The next job: polled briefly (the next node of the same run usually follows at once), then
/// waited for. `None` once the run's handle is gone.
fn next_job(rx: &mpsc::Receiver<Job>) -> Option<Job> {
    let spin_until = std::time::Instant::now() + HANDOFF_SPIN;
    loop {
        match rx.try_recv() {
            Ok(job) => return Some(job),
            Err(mpsc::TryRecvError::Disconnected) => return None,
            Err(mpsc::TryRecvError::Empty) if std::time::Instant::now() < spin_until => {
                std::hint::spin_loop();
            }
            Err(mpsc::TryRecvError::Empty) => return rx.recv().ok(),
        }
    }
}

fn worker_gone() -> EvalError {
    EvalError::Runtime("jq evaluation thread stopped unexpectedly".into())
}

fn run(job: &Job) -> Result<Vec<Value>, String> {
    evaluate(&job.filter, &job.input, job.take, job.deadline)
}

/// Runs `filter` on `input` on the current thread, collecting what `take` asks for, stopping at
/// the checkpoints once `deadline` passes or the job is cancelled.
pub(super) fn evaluate(
    filter: &Filter,
    input: &Value,
    take: Take,
    deadline: Instant,
) -> Result<Vec<Value>, String> {
    let input = to_val(input);
    let ctx = Ctx::<data::JustLut<Val>>::new(&filter.lut, Vars::new([]));
    let mut results = Vec::new();
    for item in filter.id.run((ctx, input)) {
        if cancelled() || Instant::now() >= deadline {
            return Err(GIVEN_UP.into());
        }
        let val = item.map_err(|exn| match exn.get_err() {
            Ok(err) => err.to_string(),
            Err(_) => "`halt` is not supported in workflow expressions".to_owned(),
        })?;
        results.push(from_val(&val, 0)?);
        match take {
            Take::First => break,
            Take::All { max } if results.len() > max => {
                return Err(format!("the expression produced more than {max} results"));
            }
            Take::All { .. } => {}
        }
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    fn deadline(ms: u64) -> tokio::time::Instant {
        tokio::time::Instant::now() + Duration::from_millis(ms)
    }

    #[tokio::test]
    async fn guarded_generators_keep_their_jq_meaning() {
        let cases = [
            ("[range(5)]", json!([0, 1, 2, 3, 4])),
            ("[range(0; 10; 3)]", json!([0, 3, 6, 9])),
            ("[range(5; 0; -2)]", json!([5, 3, 1])),
            ("[range(1; 3)]", json!([1, 2])),
            ("[limit(3; repeat(1))]", json!([1, 1, 1])),
            ("[1 | while(. < 8; . * 2)]", json!([1, 2, 4])),
            ("0 | until(. > 3; . + 1)", json!(4)),
            (
                "[2 | recurse(if . < 20 then . * . else empty end)]",
                json!([2, 4, 16, 256]),
            ),
            ("[[1, [2]] | recurse] | length", json!(4)),
        ];
        let mut worker = JqWorker::default();
        for (program, expected) in cases {
            let jq = Jq::compile(program, false).expect("compiles");
            let out = worker
                .eval(&jq, Value::Null, Take::First, deadline(5_000))
                .await
                .expect("evaluates");
            assert_eq!(out, vec![expected], "{program}");
        }
    }

    #[tokio::test]
    async fn an_endless_generator_is_stopped_at_the_deadline() {
        let jq = Jq::compile("last(range(1e12))", false).expect("compiles");
        let started = std::time::Instant::now();
        let result = JqWorker::default()
            .eval(&jq, Value::Null, Take::First, deadline(200))
            .await;
        assert!(matches!(result, Err(EvalError::Deadline)), "{result:?}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn collecting_an_endless_generator_hits_the_result_cap() {
        let jq = Jq::compile("range(1e12)", false).expect("compiles");
        let result = JqWorker::default()
            .eval(&jq, Value::Null, Take::All { max: 1000 }, deadline(5_000))
            .await;
        match result {
            Err(EvalError::Runtime(m)) => {
                assert_eq!(m, "the expression produced more than 1000 results")
            }
            other => panic!("expected the cap, got {other:?}"),
        }
    }
}
