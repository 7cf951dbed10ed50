//! The jq sandbox: evaluation in a child process with an address-space limit, killed at the
//! run's deadline. What the in-thread worker ([`super::worker`]) cannot do, this does:
//!
//! * **memory** — jaq allocates freely (`"x" * 1e11`, `[range(1e9)]`, nested `.[] as $a | …`),
//!   and a failed allocation aborts the whole process: every execution in flight on the
//!   container dies with it. In the child, `RLIMIT_AS` bounds the address space to the child's
//!   own baseline + the evaluation stack + the policy's `max_memory_bytes`; an evaluation that
//!   needs more aborts *the child* and the run fails with `MEMORY_LIMIT`;
//! * **time, pre-emptively** — checkpoints only stop a program at the next generator step; the
//!   parent kills the child (`SIGKILL`) when the deadline passes, so nothing computes on after
//!   its request has been answered and the next tenant's run gets the CPU back at once
//!   (`TIME_LIMIT`);
//! * **stack** — deep recursion overflows the child's stack, not the function's.
//!
//! Why a process and not a thread or `fork`: a thread cannot be killed nor its allocations
//! bounded; `fork` without `exec` in a multi-threaded (tokio) process may deadlock in `malloc`.
//! So the host re-executes its own binary (`<exe> --nectar-jq-worker <memory bytes>`; see
//! [`worker_main`]) or a dedicated worker binary. Children are kept warm in a small pool per
//! memory limit, one per concurrent run, so a run's many expressions cost a pipe round trip
//! each, not a spawn (measured in `workflow/benches/engine.rs`).
//!
//! Protocol: one JSON object per line each way — `{"p": program, "i": input, "t": take}` →
//! `{"ok": [values]}` or `{"err": message}`.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::worker::{EvalError, Take, evaluate};
use super::{Jq, lock};

/// The argument that makes a host binary run as a jq worker (see [`worker_main`]).
pub const WORKER_ARG: &str = "--nectar-jq-worker";

/// Stack of the child's evaluation thread (counted in its address space).
const CHILD_STACK_BYTES: usize = 64 * 1024 * 1024;

/// Warm children kept per memory limit.
const MAX_IDLE: usize = 8;

/// How the host starts a worker: a program and the arguments before the memory limit.
#[derive(Debug, Clone)]
pub struct SandboxCommand {
    /// The worker executable.
    pub program: PathBuf,
    /// Arguments before the memory limit (e.g. [`WORKER_ARG`] when re-executing the host).
    pub args: Vec<String>,
}

impl SandboxCommand {
    /// The running executable itself, with [`WORKER_ARG`]: its `main` must call
    /// [`worker_main`] first (see [`run_worker_if_requested`]).
    pub fn current_exe() -> std::io::Result<Self> {
        Ok(Self {
            program: std::env::current_exe()?,
            args: vec![WORKER_ARG.to_owned()],
        })
    }
}

fn configured() -> &'static OnceLock<SandboxCommand> {
    static SANDBOX: OnceLock<SandboxCommand> = OnceLock::new();
    &SANDBOX
}

/// Turns the process sandbox on for every later run in this process (once; later calls are
/// ignored). Without it, expressions run on an in-process thread — fine for trusted workflows
/// and tests, not for customers' (see the module docs).
pub fn enable(command: SandboxCommand) {
    let _ = configured().set(command);
}

/// Whether the process sandbox is on.
pub fn enabled() -> bool {
    configured().get().is_some()
}

/// For a host binary's `main`, before anything else: if this process was started as a jq worker,
/// runs as one and exits.
pub fn run_worker_if_requested() {
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() == Some(WORKER_ARG) {
        let memory = args.next().and_then(|m| m.parse().ok()).unwrap_or(0);
        std::process::exit(worker_main(memory));
    }
}

#[derive(Serialize, Deserialize)]
struct Request {
    p: String,
    i: Value,
    t: WireTake,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum WireTake {
    First,
    All(usize),
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Response {
    Ok(Vec<Value>),
    Err(String),
}

/// The worker's loop: limits its own address space to its baseline + the evaluation stack +
/// `memory` bytes (0: no limit), then answers requests from stdin until it closes. Returns the
/// exit code.
pub fn worker_main(memory: u64) -> i32 {
    if memory > 0 {
        let limit = baseline_bytes()
            .saturating_add(CHILD_STACK_BYTES as u64)
            .saturating_add(memory);
        if let Err(e) = rlimit::setrlimit(rlimit::Resource::AS, limit, limit) {
            eprintln!("nectar-jq-worker: cannot limit memory: {e}");
            return 2;
        }
    }
    let spawned = std::thread::Builder::new()
        .name("nectar-jq-child".into())
        .stack_size(CHILD_STACK_BYTES)
        .spawn(serve);
    match spawned.map(std::thread::JoinHandle::join) {
        Ok(Ok(())) => 0,
        _ => 3,
    }
}

/// The address space the worker already uses (`VmSize` in `/proc/self/status`): the limit is
/// added on top, so a large host binary is not mistaken for a large evaluation.
fn baseline_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmSize:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(256 * 1024 * 1024, |kb| kb * 1024)
}

fn serve() {
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout().lock();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { return };
        let response = match serde_json::from_str::<Request>(&line) {
            Ok(req) => answer(req),
            Err(e) => Response::Err(format!("bad request to the jq worker: {e}")),
        };
        let Ok(text) = serde_json::to_string(&response) else {
            return;
        };
        if writeln!(stdout, "{text}")
            .and_then(|()| stdout.flush())
            .is_err()
        {
            return;
        }
    }
}

fn answer(req: Request) -> Response {
    // The parent validated the program against the workflow's policy; here it only runs.
    let jq = match Jq::compile(&req.p, true) {
        Ok(jq) => jq,
        Err(e) => return Response::Err(e),
    };
    let take = match req.t {
        WireTake::First => Take::First,
        WireTake::All(max) => Take::All { max },
    };
    // No deadline here: the parent kills this process when the run's deadline passes.
    let far = std::time::Instant::now() + std::time::Duration::from_secs(24 * 3_600);
    match evaluate(&jq.filter, &req.i, take, far) {
        Ok(values) => Response::Ok(values),
        Err(e) => Response::Err(e),
    }
}

/// A warm worker process. Plain `std` pipes, driven from tokio's blocking pool: pooled workers
/// outlive the runtime of the request that started them (tests have one runtime each; tokio's
/// own process I/O is bound to the runtime that spawned it).
pub(crate) struct Worker {
    child: Arc<Mutex<std::process::Child>>,
    pipes: Option<Pipes>,
    memory: u64,
}

struct Pipes {
    stdin: std::process::ChildStdin,
    stdout: std::io::BufReader<std::process::ChildStdout>,
}

impl Drop for Worker {
    fn drop(&mut self) {
        let mut child = lock(&self.child);
        let _ = child.kill();
        let _ = child.wait();
    }
}

fn idle() -> &'static Mutex<HashMap<u64, Vec<Worker>>> {
    static IDLE: OnceLock<Mutex<HashMap<u64, Vec<Worker>>>> = OnceLock::new();
    IDLE.get_or_init(Mutex::default)
}

impl Worker {
    /// A warm worker for `memory` from the pool, or a new one.
    fn take(memory: u64) -> Result<Self, EvalError> {
        if let Some(w) = lock(idle()).get_mut(&memory).and_then(Vec::pop) {
            return Ok(w);
        }
        let command = configured()
            .get()
            .ok_or_else(|| EvalError::Runtime("the jq sandbox is not enabled".into()))?;
        let mut child = std::process::Command::new(&command.program)
            .args(&command.args)
            .arg(memory.to_string())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| EvalError::Runtime(format!("cannot start the jq sandbox: {e}")))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(EvalError::Runtime("the jq sandbox has no pipes".into()));
        };
        Ok(Self {
            child: Arc::new(Mutex::new(child)),
            pipes: Some(Pipes {
                stdin,
                stdout: std::io::BufReader::new(stdout),
            }),
            memory,
        })
    }

    /// Back to the pool (when healthy), for the next run.
    fn give_back(self) {
        if self.pipes.is_none() {
            return;
        }
        let mut pool = lock(idle());
        let slot = pool.entry(self.memory).or_default();
        if slot.len() < MAX_IDLE {
            slot.push(self);
        }
    }

    /// One request and its answer, or the deadline: then the worker is killed at once.
    async fn ask(
        &mut self,
        request: String,
        deadline: tokio::time::Instant,
    ) -> std::io::Result<String> {
        let Some(mut pipes) = self.pipes.take() else {
            return Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        };
        let exchange = tokio::task::spawn_blocking(move || {
            let result = (|| {
                pipes.stdin.write_all(request.as_bytes())?;
                pipes.stdin.write_all(b"\n")?;
                pipes.stdin.flush()?;
                let mut line = String::new();
                if pipes.stdout.read_line(&mut line)? == 0 {
                    return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof));
                }
                Ok(line)
            })();
            (pipes, result)
        });
        match tokio::time::timeout_at(deadline, exchange).await {
            Ok(Ok((pipes, Ok(line)))) => {
                self.pipes = Some(pipes);
                Ok(line)
            }
            Ok(Ok((_, Err(e)))) => Err(e),
            Ok(Err(join)) => Err(std::io::Error::other(join.to_string())),
            Err(_) => {
                // Pre-emptive: the evaluation stops now, not at its next checkpoint; the blocked
                // read then sees the pipe close and its task ends.
                let _ = lock(&self.child).kill();
                Err(std::io::Error::from(std::io::ErrorKind::TimedOut))
            }
        }
    }

    /// Why the child ended: `MEMORY_LIMIT` for an abort (a failed allocation under the limit, or
    /// a stack overflow), else a crash. Polls its exit for up to 0.5 s without blocking the
    /// runtime's thread (its pipe closed, so it is exiting).
    async fn died(&self, memory: u64) -> EvalError {
        let started = std::time::Instant::now();
        let status = loop {
            let polled = lock(&self.child).try_wait();
            match polled {
                Ok(Some(status)) => break Some(status),
                Ok(None) if started.elapsed() < std::time::Duration::from_millis(500) => {
                    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                }
                _ => break None,
            }
        };
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt;
            if status.and_then(|s| s.signal()) == Some(6) {
                return EvalError::Memory(memory);
            }
        }
        let _ = status;
        EvalError::Runtime("the expression's evaluation crashed".into())
    }
}

/// Evaluates `jq` in a sandboxed worker (the run's own, else one from the pool) with the
/// address space bounded by `memory` bytes and the deadline enforced by killing the worker.
pub(crate) async fn eval(
    slot: &mut Option<Worker>,
    jq: &Jq,
    input: Value,
    take: Take,
    memory: u64,
    deadline: tokio::time::Instant,
) -> Result<Vec<Value>, EvalError> {
    let mut worker = match slot.take() {
        Some(w) if w.memory == memory => w,
        Some(other) => {
            other.give_back();
            Worker::take(memory)?
        }
        None => Worker::take(memory)?,
    };
    let request = serde_json::to_string(&Request {
        p: jq.source().to_owned(),
        i: input,
        t: match take {
            Take::First => WireTake::First,
            Take::All { max } => WireTake::All(max),
        },
    })
    .map_err(|e| EvalError::Runtime(e.to_string()))?;
    match worker.ask(request, deadline).await {
        Ok(line) => {
            let response: Response = serde_json::from_str(&line)
                .map_err(|e| EvalError::Runtime(format!("bad answer from the jq sandbox: {e}")))?;
            *slot = Some(worker);
            match response {
                Response::Ok(values) => Ok(values),
                Response::Err(m) => Err(EvalError::Runtime(m)),
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
            replenish(memory);
            Err(EvalError::Deadline)
        }
        Err(_) => {
            replenish(memory);
            Err(worker.died(memory).await)
        }
    }
}

/// Starts a worker in the background for the pool, so the run after a killed one does not pay
/// for a process start.
fn replenish(memory: u64) {
    let _ = std::thread::Builder::new()
        .name("nectar-jq-spawn".into())
        .spawn(move || {
            if let Ok(w) = Worker::take(memory) {
                w.give_back();
            }
        });
}

/// Returns a run's worker to the pool.
pub(crate) fn release(slot: &mut Option<Worker>) {
    if let Some(w) = slot.take() {
        w.give_back();
    }
}
