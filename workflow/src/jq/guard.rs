//! The checkpoints that make a runaway program stoppable: jq's unbounded generators redefined
//! over natives that check the evaluating job's cancel flag on every iteration (see [`super`]
//! for why jaq needs them). Compiled into every program by [`super::Jq::compile`].

use jaq_core::box_iter::box_once;
use jaq_core::native::{self, v};
use jaq_core::{Cv, DataT, Error, Exn, RunPtr, ValT, ValXs};

use super::worker::{GIVEN_UP, cancelled};

/// Generators redefined to pass through a checkpoint on every iteration; the originals are in
/// jaq-core's `defs.jq`. Later definitions shadow earlier ones.
pub(super) const GUARDED_DEFS: &str = r#"
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
pub(super) fn guards<D: DataT>() -> [jaq_core::native::Fun<D>; 2]
where
    for<'a> D::V<'a>: ValT,
{
    [
        native::run(("__nectar_range", v(3), guarded_range::<D> as RunPtr<D>)),
        native::run(("__nectar_checkpoint", v(0), checkpoint::<D> as RunPtr<D>)),
    ]
}
