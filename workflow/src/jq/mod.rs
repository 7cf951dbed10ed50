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
//!
//! Compilation and templates live here; the checkpoint natives in `guard.rs`, the evaluation
//! threads and the deadline in `worker.rs`, and the JSON ↔ jaq value conversion in `value.rs`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, OnceLock};

use jaq_core::load::lex::{StrPart, Tok, Token};
use jaq_core::load::{Arena, File, Loader, lex};
use jaq_core::{Compiler, data};
use jaq_json::Val;

mod guard;
pub mod process;
mod value;
mod worker;

pub use worker::runaway_evaluations;
pub(crate) use worker::{EvalError, JqWorker, Take};

type Data = data::JustLut<Val>;
type Filter = jaq_core::Filter<Data>;

/// Compiled programs kept for reuse across runs of a warm process; cleared when full.
const CACHE_CAPACITY: usize = 1024;

/// A compiled jq program together with its source.
#[derive(Clone)]
pub struct Jq {
    source: Arc<str>,
    filter: Arc<Filter>,
    /// Provably bounded in memory and time (see [`is_bounded`]): evaluated in-process even when
    /// the sandbox is on.
    bounded: bool,
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
        if let Some((filter, bounded)) = lock(cache).get(source) {
            return Ok(Self {
                source: source.into(),
                filter: Arc::clone(filter),
                bounded: *bounded,
            });
        }
        let filter = Arc::new(compile_uncached(source)?);
        // Classified once per program, like compilation (it lexes the source again).
        let bounded = is_bounded(source);
        let mut cached = lock(cache);
        if cached.len() >= CACHE_CAPACITY {
            cached.clear();
        }
        cached.insert(source.to_owned(), (Arc::clone(&filter), bounded));
        Ok(Self {
            source: source.into(),
            filter,
            bounded,
        })
    }

    /// Whether the program is provably cheap (see [`is_bounded`]).
    pub fn is_bounded(&self) -> bool {
        self.bounded
    }

    /// The program text as written in the workflow.
    pub fn source(&self) -> &str {
        &self.source
    }
}

/// Compiled programs by source, with whether each is provably bounded.
type Cache = Mutex<HashMap<String, (Arc<Filter>, bool)>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(Mutex::default)
}

/// A poisoned cache only means another thread panicked mid-insert; the map is still usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn compile_uncached(code: &str) -> Result<Filter, String> {
    let guarded = jaq_core::load::parse(guard::GUARDED_DEFS, |p| p.defs()).unwrap_or_default();
    let defs = jaq_core::defs()
        .chain(jaq_std::defs())
        .chain(jaq_json::defs())
        .chain(guarded);
    let funs = jaq_core::funs()
        .chain(jaq_std::funs())
        .chain(jaq_json::funs())
        .chain(guard::guards());
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

/// Builtins that neither generate without bound nor grow their output beyond a constant factor
/// of their input: `length`, `keys`, `select`, `map`, `sort_by`, … (not `range`, `repeat`,
/// `recurse`, `limit`, `reduce`, `foreach`, `tojson`/`tostring` — each application can double
/// the escapes —, `split`/`join` — a separator multiplies the size —, nor any binding).
const BOUNDED_WORDS: &[&str] = &[
    "and",
    "or",
    "not",
    "if",
    "then",
    "elif",
    "else",
    "end",
    "true",
    "false",
    "null",
    "length",
    "utf8bytelength",
    "type",
    "keys",
    "has",
    "in",
    "select",
    "empty",
    "error",
    "floor",
    "ceil",
    "round",
    "fabs",
    "abs",
    "min",
    "max",
    "min_by",
    "max_by",
    "add",
    "first",
    "map",
    "values",
    "to_entries",
    "from_entries",
    "startswith",
    "endswith",
    "ltrimstr",
    "rtrimstr",
    "ascii_downcase",
    "ascii_upcase",
    "contains",
    "inside",
    "sort",
    "sort_by",
    "group_by",
    "unique",
    "unique_by",
    "reverse",
    "any",
    "all",
    "test",
    "tonumber",
    "isvalid",
    "arrays",
    "objects",
    "iterables",
    "booleans",
    "numbers",
    "strings",
    "nulls",
    "scalars",
    "now",
    "try",
    "catch",
];

/// Operators that can multiply a value's size by a constant (`+`: concatenation; `,`: more
/// outputs, e.g. `[.[], .[]]`): at most this many per program, so its intermediate values stay
/// within 2^4 = 16 × its input (itself bounded by the policy's value size).
const MAX_GROWTH_OPERATORS: usize = 4;

/// Whether `code` is provably bounded in memory and time: only [`BOUNDED_WORDS`], no variables,
/// formats, `*`, `..` or `?//`, and at most [`MAX_GROWTH_OPERATORS`] of `+`, `+=`, `,`. Such a
/// program runs in-process even when the sandbox is on — a pipe round trip costs ten times what
/// a typical `.total += .n` does. Anything else (or anything the lexer rejects) is not.
pub fn is_bounded(code: &str) -> bool {
    fn walk(tokens: &[Token<&str>], growth: &mut usize) -> bool {
        tokens
            .iter()
            .enumerate()
            .all(|(i, Token(text, tok))| match tok {
                // An object key (`{total: …}`) is a name, not a call.
                Tok::Word if matches!(tokens.get(i + 1), Some(Token(":", Tok::Sym))) => true,
                Tok::Word => BOUNDED_WORDS.contains(text),
                Tok::Var | Tok::Fmt => false,
                Tok::Num => true,
                Tok::Str(parts) => parts.iter().all(|p| match p {
                    StrPart::Term(t) => walk(std::slice::from_ref(t), growth),
                    StrPart::Str(_) | StrPart::Char(_) => true,
                }),
                Tok::Sym => match *text {
                    "+" | "+=" | "," => {
                        *growth += 1;
                        *growth <= MAX_GROWTH_OPERATORS
                    }
                    "*" | "*=" | ".." | "?//" => false,
                    _ => true,
                },
                Tok::Block(inner) => walk(inner, growth),
            })
    }
    match lex::Lexer::new(code).lex() {
        Ok(tokens) => walk(&tokens, &mut 0),
        Err(_) => false,
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
}

#[cfg(test)]
mod bounded_tests {
    use super::is_bounded;

    #[test]
    fn plain_path_arithmetic_and_filters_are_bounded() {
        for code in [
            ".n += 1 | .sum += .n",
            ".n > 0",
            ".ok = false",
            "[.[] | select(.price > 10) | .name] | sort",
            "{total: (map(.qty) | add), n: length}",
            "if .a then .b else .c end",
            r#""order \(.id) for \(.customer)""#,
            ".items | map(.qty) | add",
        ] {
            assert!(is_bounded(code), "{code}");
        }
    }

    #[test]
    fn anything_that_can_grow_or_run_without_bound_is_not() {
        for code in [
            r#""x" * 100000000000"#,
            "[range(1e9)]",
            "last(range(1e12))",
            "reduce range(40) as $i (\"x\"; . + .)",
            "[limit(1e9; repeat(.))]",
            "[.[] as $a | .[] as $b | [$a, $b]]",
            "[..]",
            "tojson | tojson | tojson",
            "tostring",
            r#"split("") | join("xxxxxxxxxxxxxxxx")"#,
            ". + . | . + . | . + . | . + . | . + .",
            "[.[], .[]] | [.[], .[]] | [.[], .[]] | [.[], .[]] | [.[], .[]]",
            "@base64",
            "$__loc__",
            "def f: f; f",
            "recurse",
            "paths",
            "not valid jq (",
        ] {
            assert!(!is_bounded(code), "{code}");
        }
    }
}
