//! jq expressions (via jaq): compilation with a process-wide cache, `{{ jq }}` string templates,
//! and evaluation on a per-run worker thread so that a runaway program can be given up at the
//! run's deadline.
//!
//! jaq evaluates synchronously and has no fuel or interruption hook, so evaluation happens on a
//! dedicated OS thread (one per run, reused for every expression of that run and pooled for
//! later runs). The async side waits for the answer only until the deadline, then gives up (the
//! run fails with `TIME_LIMIT`) and raises the job's cancel flag. The worker stops at the next
//! of these checkpoints:
//!
//! * between results (with the result cap of collecting expressions);
//! * inside every unbounded generator of the language — `range`, `repeat`, `recurse`, `while`,
//!   `until` are redefined to pass through a native checkpoint, so `last(range(1e12))` or
//!   `reduce repeat(.) as $x (0; .)` stop within one iteration instead of computing on.
//!
//! Without `def`, every other construct is bounded by the sizes of its input and program, but
//! that bound can be huge (nested iteration over a large array: `[.[] as $a | .[] as $b | .[]]`).
//! Such a program still ends the run at the deadline; its thread computes on until it reaches a
//! checkpoint or ends, and [`runaway_evaluations`] counts it meanwhile, so a host can recycle the
//! process. A function definition could recurse without end — and jaq does not bound recursion
//! depth, so a stack overflow would abort the whole process — hence `def` is refused unless the
//! policy allows it. The worker has a large stack (reserved; only touched pages are committed)
//! for deep but finite recursion.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::Instant;

use jaq_core::box_iter::box_once;
use jaq_core::load::lex::{StrPart, Tok, Token};
use jaq_core::load::{Arena, File, Loader, lex};
use jaq_core::native::{self, v};
use jaq_core::{Compiler, Ctx, Cv, DataT, Error, Exn, RunPtr, ValT, ValXs, Vars, data};
use jaq_json::{Num, Val};
use serde_json::{Map, Number, Value};

type Data = data::JustLut<Val>;
type Filter = jaq_core::Filter<Data>;

/// Compiled programs kept for reuse across runs of a warm process; cleared when full.
const CACHE_CAPACITY: usize = 1024;
/// Nesting depth beyond which a jq result is refused rather than converted (conversion recurses).
const MAX_DEPTH: usize = 128;
/// Stack of the evaluation thread: deep but finite jq recursion must not abort the process.
const WORKER_STACK_BYTES: usize = 256 * 1024 * 1024;

static RUNAWAY: AtomicUsize = AtomicUsize::new(0);

const GIVEN_UP: &str = "evaluation given up at the deadline";

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

fn cancelled() -> bool {
    CURRENT.with(|c| {
        c.borrow()
            .as_ref()
            .is_some_and(|state| state.load(Ordering::Relaxed) == ABANDONED)
    })
}

/// Generators redefined to pass through a checkpoint on every iteration; the originals are in
/// jaq-core's `defs.jq`. Later definitions shadow earlier ones.
const GUARDED_DEFS: &str = r#"
def range(from; upto; by): __nectar_range(from; upto; by);
def range(from; upto): range(from; upto; 1);
def range(upto): range(0; upto);
def repeat(f): def rec: f, (__nectar_checkpoint | rec); rec;
def recurse(f): def rec: ., (f | __nectar_checkpoint | rec); rec;
def recurse: recurse(.[]?);
def recurse(f; cond): recurse(f | select(cond));
def while(cond; update): def rec: if cond then ., (update | __nectar_checkpoint | rec) else empty end; rec;
def until(cond; update): def rec: if cond then . else update | __nectar_checkpoint | rec end; rec;
"#;

fn given_up<'a, V: ValT>() -> Exn<'a, V> {
    Exn::from(Error::str(GIVEN_UP))
}

fn checkpoint<'a, D: DataT>(cv: Cv<'a, D>) -> ValXs<'a, D::V<'a>>
where
    for<'b> D::V<'b>: ValT,
{
    if cancelled() {
        box_once(Err(given_up()))
    } else {
        box_once(Ok(cv.1))
    }
}

/// jaq-core's native `range/3` with a checkpoint per element.
fn guarded_range<'a, D: DataT>(mut cv: Cv<'a, D>) -> ValXs<'a, D::V<'a>>
where
    for<'b> D::V<'b>: ValT,
{
    use std::cmp::Ordering::{Equal, Greater, Less};
    let by = cv.0.pop_var();
    let upto = cv.0.pop_var();
    let from = cv.0.pop_var();
    let direction = by.partial_cmp(&0isize.into()).unwrap_or(Equal);
    let mut next = Some(from);
    Box::new(std::iter::from_fn(move || {
        let x = next.take()?;
        if cancelled() {
            return Some(Err(given_up()));
        }
        let more = match direction {
            Greater => x < upto,
            Less => x > upto,
            Equal => x != upto,
        };
        if !more {
            return None;
        }
        match x.clone() + by.clone() {
            Ok(following) => next = Some(following),
            Err(e) => return Some(Err(Exn::from(e))),
        }
        Some(Ok(x))
    }))
}

/// Generic like jaq's own natives: with a concrete data type the compiler cannot match the fn
/// items against the higher-ranked `RunPtr`.
fn guards<D: DataT>() -> [jaq_core::native::Fun<D>; 2]
where
    for<'a> D::V<'a>: ValT,
{
    [
        native::run(("__nectar_range", v(3), guarded_range::<D> as RunPtr<D>)),
        native::run(("__nectar_checkpoint", v(0), checkpoint::<D> as RunPtr<D>)),
    ]
}

/// A compiled jq program together with its source.
#[derive(Clone)]
pub struct Jq {
    source: Arc<str>,
    filter: Arc<Filter>,
}

impl std::fmt::Debug for Jq {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Jq").field(&self.source).finish()
    }
}

impl Jq {
    /// Compiles `source`; the error is a human-readable compiler message with a 1-based column.
    ///
    /// `def` is refused unless `allow_definitions` (see the module docs for why).
    pub fn compile(source: &str, allow_definitions: bool) -> Result<Self, String> {
        if !allow_definitions && defines_functions(source)? {
            return Err(
                "function definitions (`def`) are not allowed in workflow expressions".into(),
            );
        }
        let cache = cache();
        if let Some(filter) = lock(cache).get(source) {
            return Ok(Self {
                source: source.into(),
                filter: Arc::clone(filter),
            });
        }
        let filter = Arc::new(compile_uncached(source)?);
        let mut cached = lock(cache);
        if cached.len() >= CACHE_CAPACITY {
            cached.clear();
        }
        cached.insert(source.to_owned(), Arc::clone(&filter));
        Ok(Self {
            source: source.into(),
            filter,
        })
    }

    /// The program text as written in the workflow.
    pub fn source(&self) -> &str {
        &self.source
    }
}

fn cache() -> &'static Mutex<HashMap<String, Arc<Filter>>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<Filter>>>> = OnceLock::new();
    CACHE.get_or_init(Mutex::default)
}

/// A poisoned cache only means another thread panicked mid-insert; the map is still usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn compile_uncached(code: &str) -> Result<Filter, String> {
    let guarded = jaq_core::load::parse(GUARDED_DEFS, |p| p.defs()).unwrap_or_default();
    let defs = jaq_core::defs()
        .chain(jaq_std::defs())
        .chain(jaq_json::defs())
        .chain(guarded);
    let funs = jaq_core::funs()
        .chain(jaq_std::funs())
        .chain(jaq_json::funs())
        .chain(guards());
    let arena = Arena::default();
    let modules = Loader::new(defs)
        .load(&arena, File { code, path: () })
        .map_err(|errs| {
            let msgs = errs.into_iter().flat_map(|(_, e)| load_messages(code, e));
            join(msgs)
        })?;
    Compiler::default()
        .with_funs(funs)
        .compile(modules)
        .map_err(|errs| {
            let msgs = errs
                .into_iter()
                .flat_map(|(_, es)| es)
                .map(|(name, undefined)| {
                    let arity = match undefined {
                        jaq_core::compile::Undefined::Filter(n) => format!("/{n}"),
                        _ => String::new(),
                    };
                    format!("undefined {} `{name}{arity}`", undefined.as_str())
                });
            join(msgs)
        })
}

fn join(msgs: impl Iterator<Item = String>) -> String {
    let msgs: Vec<String> = msgs.collect();
    if msgs.is_empty() {
        "invalid jq program".into()
    } else {
        msgs.join("; ")
    }
}

fn load_messages(code: &str, e: jaq_core::load::Error<&str>) -> Vec<String> {
    use jaq_core::load::Error;
    match e {
        Error::Io(_) => vec!["modules cannot be loaded in workflow expressions".into()],
        Error::Lex(es) => es
            .into_iter()
            .map(|(expect, found)| {
                let what = match expect {
                    // `as_str` panics on delimiters other than these four.
                    lex::Expect::Delim(d) if !matches!(d, "(" | "[" | "{" | "\"") => {
                        format!("closing delimiter for `{d}`")
                    }
                    other => other.as_str().to_owned(),
                };
                format!("expected {what} at column {}", column(code, found))
            })
            .collect(),
        Error::Parse(es) => es
            .into_iter()
            .map(|(expect, found)| {
                let got = if found.is_empty() {
                    "end of input".to_owned()
                } else {
                    format!("`{found}`")
                };
                format!(
                    "expected {} but found {got} at column {}",
                    expect.as_str(),
                    column(code, found)
                )
            })
            .collect(),
    }
}

/// 1-based character column of `part`, a sub-slice of `code` produced by the jaq lexer.
fn column(code: &str, part: &str) -> usize {
    let offset = (part.as_ptr() as usize)
        .saturating_sub(code.as_ptr() as usize)
        .min(code.len());
    code.get(..offset).map_or(offset, |s| s.chars().count()) + 1
}

fn defines_functions(code: &str) -> Result<bool, String> {
    fn any_def(tokens: &[Token<&str>]) -> bool {
        tokens.iter().any(|Token(text, tok)| match tok {
            Tok::Word => *text == "def",
            Tok::Block(inner) => any_def(inner),
            Tok::Str(parts) => parts.iter().any(|p| match p {
                StrPart::Term(t) => any_def(std::slice::from_ref(t)),
                StrPart::Str(_) | StrPart::Char(_) => false,
            }),
            _ => false,
        })
    }
    match lex::Lexer::new(code).lex() {
        Ok(tokens) => Ok(any_def(&tokens)),
        // Lex errors are reported (with a better message) by the full compilation.
        Err(_) => compile_uncached(code).map(|_| false),
    }
}

/// A string with `{{ jq }}` placeholders, rendered like jq string interpolation: strings are
/// inserted as they are, any other value as compact JSON.
#[derive(Clone, Debug)]
pub enum Template {
    /// No placeholders: used verbatim, no evaluation.
    Literal(String),
    /// Compiled to one jq string-interpolation program (`"a{{ .x }}b"` → `"a\(.x)b"`).
    Program(Jq),
}

impl Template {
    /// Parses and compiles a template; errors name the placeholder problem or the jq message.
    pub fn parse(text: &str, allow_definitions: bool) -> Result<Self, String> {
        if !text.contains("{{") {
            return Ok(Self::Literal(text.to_owned()));
        }
        let mut program = String::from("\"");
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            escape_into(&mut program, &rest[..open]);
            let after = &rest[open + 2..];
            let close = after
                .find("}}")
                .ok_or("unclosed `{{` placeholder (missing `}}`)")?;
            let expr = after[..close].trim();
            if expr.is_empty() {
                return Err("empty `{{ }}` placeholder".into());
            }
            // Checked on its own so the error names the placeholder, not the generated program.
            Jq::compile(expr, allow_definitions)
                .map_err(|e| format!("in `{{{{ {expr} }}}}`: {e}"))?;
            let _ = write!(program, "\\({expr})");
            rest = &after[close + 2..];
        }
        escape_into(&mut program, rest);
        program.push('"');
        Jq::compile(&program, allow_definitions).map(Self::Program)
    }
}

fn escape_into(out: &mut String, literal: &str) {
    for c in literal.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
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
    /// The run's deadline passed first; the evaluation was abandoned.
    Deadline,
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

/// The evaluation thread of one run: taken from the idle pool (or started) on first use and
/// returned to it when dropped, unless it was given up at a deadline.
#[derive(Default)]
pub(crate) struct JqWorker {
    jobs: Option<mpsc::Sender<Job>>,
}

impl Drop for JqWorker {
    fn drop(&mut self) {
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
    let input = to_val(&job.input);
    let ctx = Ctx::<data::JustLut<Val>>::new(&job.filter.lut, Vars::new([]));
    let mut results = Vec::new();
    for item in job.filter.id.run((ctx, input)) {
        if cancelled() || Instant::now() >= job.deadline {
            return Err(GIVEN_UP.into());
        }
        let val = item.map_err(|exn| match exn.get_err() {
            Ok(err) => err.to_string(),
            Err(_) => "`halt` is not supported in workflow expressions".to_owned(),
        })?;
        results.push(from_val(&val, 0)?);
        match job.take {
            Take::First => break,
            Take::All { max } if results.len() > max => {
                return Err(format!("the expression produced more than {max} results"));
            }
            Take::All { .. } => {}
        }
    }
    Ok(results)
}

/// Converts JSON into a jaq value.
pub(crate) fn to_val(v: &Value) -> Val {
    match v {
        Value::Null => Val::Null,
        Value::Bool(b) => Val::Bool(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Val::Num(Num::from_integral(i))
            } else if let Some(u) = n.as_u64() {
                Val::Num(Num::from_integral(u))
            } else {
                Val::from(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Value::String(s) => Val::from(s.clone()),
        Value::Array(a) => a.iter().map(to_val).collect(),
        Value::Object(o) => Val::obj(
            o.iter()
                .map(|(k, v)| (Val::from(k.clone()), to_val(v)))
                .collect(),
        ),
    }
}

/// Converts a jaq value into JSON: non-finite numbers become `null` (as jq prints them),
/// byte strings and non-string keys become strings.
pub(crate) fn from_val(v: &Val, depth: usize) -> Result<Value, String> {
    if depth > MAX_DEPTH {
        return Err(format!(
            "the result is nested deeper than {MAX_DEPTH} levels"
        ));
    }
    Ok(match v {
        Val::Null => Value::Null,
        Val::Bool(b) => Value::Bool(*b),
        Val::Num(n) => num_to_json(n),
        Val::TStr(b) | Val::BStr(b) => Value::String(String::from_utf8_lossy(b).into_owned()),
        Val::Arr(a) => Value::Array(
            a.iter()
                .map(|x| from_val(x, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        Val::Obj(o) => {
            let mut map = Map::new();
            for (k, x) in o.iter() {
                let key = match k {
                    Val::TStr(b) | Val::BStr(b) => String::from_utf8_lossy(b).into_owned(),
                    other => other.to_string(),
                };
                map.insert(key, from_val(x, depth + 1)?);
            }
            Value::Object(map)
        }
    })
}

fn num_to_json(n: &Num) -> Value {
    match n {
        Num::Int(i) => Value::Number(Number::from(*i as i64)),
        Num::Float(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
        other => {
            let text = other.to_string();
            serde_json::from_str::<Number>(&text)
                .ok()
                .or_else(|| text.parse::<f64>().ok().and_then(Number::from_f64))
                .map_or(Value::Null, Value::Number)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    fn deadline(ms: u64) -> tokio::time::Instant {
        tokio::time::Instant::now() + Duration::from_millis(ms)
    }

    #[test]
    fn a_syntax_error_names_what_was_expected_and_where() {
        let err = Jq::compile(".a | ", false).expect_err("incomplete pipe");
        assert_eq!(err, "expected term but found end of input at column 6");
        let err = Jq::compile("[.a", false).expect_err("unclosed bracket");
        assert!(err.starts_with("expected closing bracket"), "{err}");
        let err = Jq::compile("nosuchfn(1)", false).expect_err("undefined filter");
        assert_eq!(err, "undefined filter `nosuchfn/1`");
    }

    #[test]
    fn function_definitions_are_refused_unless_allowed() {
        assert!(Jq::compile("def f: 1 + f; f", false).is_err());
        assert!(Jq::compile("[.[] | (def g: 2; g)]", false).is_err());
        assert!(Jq::compile("def f: 1; f", true).is_ok());
        assert!(Jq::compile("\"define\" | .", false).is_ok());
    }

    #[test]
    fn templates_render_strings_raw_and_other_values_as_json() {
        let Template::Program(jq) = Template::parse("id={{ .id }} tags={{ .tags }} \"q\"\\", false)
            .expect("valid template")
        else {
            panic!("placeholders compile to a program");
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        let out = rt
            .block_on(JqWorker::default().eval(
                &jq,
                json!({"id": "x1", "tags": [1, "a"]}),
                Take::First,
                deadline(5_000),
            ))
            .expect("renders");
        assert_eq!(out, vec![json!("id=x1 tags=[1,\"a\"] \"q\"\\")]);
    }

    #[test]
    fn values_round_trip_between_json_and_jaq() {
        let v = json!({"i": -3, "big": 18_446_744_073_709_551_615u64, "f": 1.5, "s": "é", "a": [null, true], "o": {}});
        assert_eq!(from_val(&to_val(&v), 0).expect("converts"), v);
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
