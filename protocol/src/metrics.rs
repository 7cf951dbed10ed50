//! The dashboard's figures: `GET /api/admin/metrics` (the latest daily snapshot) and
//! `GET /api/admin/metrics/history` (one snapshot per day). A snapshot is computed by the daily
//! metrics job and stored as is, so the routes read precomputed items only.
//!
//! Money is an integer count of the currency's minor unit; figures are per currency (never
//! converted).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// One day's figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricsSnapshot {
    /// The UTC day, `YYYY-MM-DD`.
    pub date: String,
    /// When the job computed it.
    #[serde(with = "time::serde::rfc3339")]
    pub computed_at: OffsetDateTime,
    /// License counts.
    pub licenses: LicenseCounts,
    /// Installation counts.
    pub installations: InstallationCounts,
    /// This month's metered use of active licenses.
    pub usage: UsageTotals,
    /// Revenue figures, one entry per currency (sorted by code).
    pub revenue: Vec<CurrencyFigures>,
    /// Active licenses without a price in their currency (no override, no list price).
    pub unpriced_licenses: u64,
}

/// License counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LicenseCounts {
    /// Every license by status.
    pub by_status: BTreeMap<String, u64>,
    /// Active licenses by plan.
    pub active_by_plan: BTreeMap<String, u64>,
    /// Active licenses by channel.
    pub active_by_channel: BTreeMap<String, u64>,
}

/// Installation counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstallationCounts {
    /// Installations holding a seat.
    pub active: u64,
    /// Active installations by reported product version.
    pub versions: BTreeMap<String, u64>,
}

/// A month's metered use against allowances.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageTotals {
    /// `YYYY-MM`.
    pub period: String,
    /// Workflow executions counted this month.
    pub workflows_used: u64,
    /// The sum of the active licenses' monthly allowances.
    pub workflows_included: u64,
    /// Licenses past their allowance.
    pub licenses_over: u64,
}

/// Revenue in one currency.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CurrencyFigures {
    /// ISO 4217 code.
    pub currency: String,
    /// Monthly recurring revenue (ARR / 12, rounded half up).
    pub mrr: u64,
    /// Annual recurring revenue.
    pub arr: u64,
    /// MRR by plan.
    pub mrr_by_plan: BTreeMap<String, u64>,
    /// MRR by channel (`self_hosted`, `saas`).
    pub mrr_by_channel: BTreeMap<String, u64>,
    /// Renewals due within 30, 60 and 90 days (cumulative windows).
    pub renewals: Vec<RenewalWindow>,
    /// Licenses lost this month (revoked, or expired and not renewed), with their MRR.
    pub churn: Movement,
    /// Licenses whose plan or contract changes this month raised their MRR, and by how much.
    /// (Absent from snapshots recorded before changes existed: zero.)
    #[serde(default)]
    pub expansion: Movement,
    /// Licenses whose plan or contract changes this month lowered their MRR, and by how much.
    #[serde(default)]
    pub contraction: Movement,
    /// Usage overage this month (list currency only).
    pub overage: u64,
}

/// Renewals due within `days`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RenewalWindow {
    /// The window.
    pub days: u32,
    /// Licenses due.
    pub count: u64,
    /// What they bill at renewal (one interval's price each).
    pub value: u64,
}

/// A count of licenses and the MRR they moved.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Movement {
    /// Licenses.
    pub count: u64,
    /// Their MRR.
    pub mrr: u64,
}

/// `GET /api/admin/metrics/history` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricsHistory {
    /// First day asked.
    pub from: String,
    /// Last day asked.
    pub to: String,
    /// One snapshot per day that has one, oldest first.
    pub days: Vec<MetricsSnapshot>,
}
