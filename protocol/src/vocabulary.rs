//! How a reader types the ids inside claims and views.
//!
//! The same JSON is read by two kinds of readers: the server, which wants its validated domain
//! newtypes (a `LicenseId` that is known to be well-formed), and installations, which only carry
//! the values along and read plain strings. Rather than declaring each claim and view twice, the
//! types that carry ids are generic over a [`Vocabulary`]; [`Wire`] (the default) is the
//! plain-string one, and the server defines its own with its newtypes.

use std::fmt::Debug;
use std::hash::Hash;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Bounds every id type of a vocabulary meets, so generic claims and views can derive the usual
/// traits (their serde impls hold for every vocabulary: `#[serde(bound = "")]`).
pub trait WireValue: Debug + Clone + PartialEq + Eq + Hash + Serialize + DeserializeOwned {}

impl<T: Debug + Clone + PartialEq + Eq + Hash + Serialize + DeserializeOwned> WireValue for T {}

/// The types a reader uses for each kind of id. Each serializes as the string the API shows.
pub trait Vocabulary: Debug + Clone + Copy + PartialEq + Eq {
    /// `NECTAR-<PLAN>-<YEAR>-<SUFFIX>`.
    type LicenseId: WireValue;
    /// A UUID.
    type CustomerId: WireValue;
    /// A client-chosen id (see [`crate::rules::is_client_id`]).
    type InstallationId: WireValue;
    /// A feature name (see [`crate::rules::is_feature_name`]).
    type Feature: WireValue;
    /// A lower-case host name.
    type Hostname: WireValue;
    /// A host name or `*.` wildcard.
    type DomainPattern: WireValue;
    /// `starter`, `professional` or `enterprise`.
    type Plan: WireValue;
}

/// Plain strings: what installations read (they pass values along, they do not police them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wire;

impl Vocabulary for Wire {
    type LicenseId = String;
    type CustomerId = String;
    type InstallationId = String;
    type Feature = String;
    type Hostname = String;
    type DomainPattern = String;
    type Plan = String;
}
