//! The client's network side: fetching endorsements of the server's keys, heartbeats (installing leases and
//! locking on conclusive verdicts), online validation, usage submission, and the background
//! tasks that beat and persist on a schedule. The offline check API in [`super`] never waits on
//! any of it; both meet only in the shared state behind the client's locks.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{ClientError, HeartbeatReport, LicenseClient, accept_lease, guard, read, write};
use crate::decision::LockReason;
use crate::server::{
    HeartbeatRequest, NetError, Signal, UsageEvent, UsageOutcome, UsageRequest, ValidateRequest,
    ValidateResponse,
};
use crate::state::Lock;
use crate::token::TokenError;

/// How often the trusted-time high-water mark is persisted between heartbeats, so a rollback
/// made while the installation is stopped is still noticed on restart.
const PERSIST_EVERY: Duration = Duration::from_secs(300);

impl LicenseClient {
    fn count_call(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }

    /// Makes sure the license key's signing key is trusted: if it is not yet (first start, or
    /// Nectar rotated keys), fetches the server's endorsements. Fetching adds no trust by itself:
    /// only endorsements a compiled-in root signed are kept, so a fake server gains nothing.
    pub async fn ensure_keys(&self) -> Result<(), ClientError> {
        if read(&self.inner).license.as_ref().err() != Some(&TokenError::UnknownKey) {
            return Ok(());
        }
        self.refresh_endorsements().await
    }

    /// Fetches `/.well-known/jwks.json` and keeps the endorsements in it that a root signed, then
    /// verifies the license key again.
    pub async fn refresh_endorsements(&self) -> Result<(), ClientError> {
        self.count_call();
        let jwks = self.server.jwks().await?;
        let (now, _) = self.observe_time();
        {
            let mut inner = write(&self.inner);
            inner.keys.endorse_all(&jwks.endorsements, now);
            inner.license = inner.keys.verify_license(&self.config.license_key, now);
            tracing::info!(keys = ?inner.keys, "endorsements refreshed");
        }
        self.save()?;
        Ok(())
    }

    /// Installs an offline activation (a signed long-lived lease and the endorsements of its
    /// keys): accepted only under the same rules as a lease from a heartbeat, and only if it
    /// runs longer than the lease already held.
    pub fn install_activation(
        &self,
        file: &nectar_protocol::token::ActivationFile,
    ) -> Result<bool, ClientError> {
        let (now, _) = self.observe_time();
        let installed = {
            let mut inner = write(&self.inner);
            inner.keys.endorse_all(&file.endorsements, now);
            if inner.license.is_err() {
                inner.license = inner.keys.verify_license(&self.config.license_key, now);
            }
            let lease = accept_lease(&inner, &self.installation_id, &file.lease, now)
                .map_err(ClientError::LeaseRejected)?;
            let longer = inner
                .lease
                .as_ref()
                .is_none_or(|held| held.claims.exp < lease.claims.exp);
            if longer {
                // Signed time is trusted time.
                self.high_water
                    .fetch_max(lease.claims.ts, Ordering::Relaxed);
                inner.lease = Some(lease);
            }
            longer
        };
        self.save()?;
        Ok(installed)
    }

    /// One heartbeat: reports the installation (and a pending clock-tamper signal), installs the
    /// returned lease, and locks on a conclusive verdict (`REVOKED`, `SUSPENDED`, …).
    pub async fn heartbeat(&self) -> Result<HeartbeatReport, ClientError> {
        let _one_at_a_time = self.beat_lock.lock().await;
        self.ensure_keys().await?;
        let (_, tampered) = self.observe_time();
        let signals: Vec<String> = if tampered || self.tamper_pending.load(Ordering::Relaxed) {
            vec![Signal::ClockTampered.as_str().to_owned()]
        } else {
            Vec::new()
        };
        let request = HeartbeatRequest {
            license_key: self.config.license_key.clone(),
            installation_id: self.installation_id.clone(),
            version: self.config.version.clone(),
            domain: self.config.domain.clone(),
            gauges: *guard(&self.gauges),
            signals: signals.clone(),
        };
        self.count_call();
        let response = self.server.heartbeat(&request).await?;
        // The response's `ts` is unsigned: it never moves the clock state. Only the signed `ts`
        // of an accepted lease does (below).
        let (mut trusted, _) = self.observe_time();
        if !signals.is_empty() {
            // Delivered; while the clock stays behind, later beats signal again anyway.
            self.tamper_pending.store(false, Ordering::Relaxed);
        }

        let mut rejected = None;
        let mut lease_installed = false;
        let mut token = response.lease.as_ref().map(|l| l.token.clone());
        if response.ok
            && let Some(t) = &token
        {
            let unknown_key = matches!(
                accept_lease(&read(&self.inner), &self.installation_id, t, trusted),
                Err(TokenError::UnknownKey)
            );
            if unknown_key {
                // Nectar rotated its lease key since the endorsements were fetched.
                tracing::info!(
                    "lease signed by a key not endorsed here yet; fetching endorsements"
                );
                self.refresh_endorsements().await?;
            }
        }
        {
            let mut inner = write(&self.inner);
            inner.last_heartbeat_at = Some(trusted);
            inner.interval = Some(response.heartbeat.interval_seconds);
            if response.ok {
                if inner.lock.take().is_some() {
                    tracing::info!(code = %response.code, "license server lifted the lock");
                }
                if let Some(t) = token.take() {
                    match accept_lease(&inner, &self.installation_id, &t, trusted) {
                        Ok(lease) => {
                            self.high_water
                                .fetch_max(lease.claims.ts, Ordering::Relaxed);
                            trusted = trusted.max(lease.claims.ts);
                            inner.last_heartbeat_at = Some(trusted);
                            inner.lease = Some(lease);
                            lease_installed = true;
                        }
                        Err(e) => rejected = Some(e),
                    }
                }
            } else if let Some(reason) = LockReason::from_code(response.code) {
                tracing::warn!(code = %response.code, detail = %response.detail, "license server locked this installation");
                inner.lock = Some(Lock {
                    reason,
                    detail: response.detail.clone(),
                    at: trusted,
                });
                inner.lease = None;
            } else {
                tracing::warn!(code = %response.code, detail = %response.detail, "heartbeat refused; the current lease runs out on its own");
            }
        }
        self.save()?;
        if let Some(e) = rejected {
            tracing::warn!(error = %e, "lease from the server rejected");
            return Err(ClientError::LeaseRejected(e));
        }
        Ok(HeartbeatReport {
            ok: response.ok,
            code: response.code.as_str().to_owned(),
            detail: response.detail,
            interval: Duration::from_secs(
                u64::try_from(response.heartbeat.interval_seconds)
                    .unwrap_or(3_600)
                    .max(1),
            ),
            lease_installed,
            signals,
        })
    }

    /// Asks the server to validate the key (optionally for a feature): the online check.
    pub async fn validate_online(
        &self,
        feature: Option<&str>,
    ) -> Result<ValidateResponse, NetError> {
        self.count_call();
        self.server
            .validate(&ValidateRequest {
                license_key: self.config.license_key.clone(),
                installation_id: self.installation_id.clone(),
                domain: self.config.domain.clone(),
                feature: feature.map(str::to_owned),
                version: Some(self.config.version.clone()),
            })
            .await
    }

    /// Sends usage events (1..=100) to the server; resending is safe (deduplicated by id).
    pub async fn submit_usage(&self, events: Vec<UsageEvent>) -> Result<UsageOutcome, NetError> {
        self.count_call();
        self.server
            .usage(&UsageRequest {
                license_key: self.config.license_key.clone(),
                events,
            })
            .await
    }

    /// How long to wait before the first heartbeat: none on a cold start, else what remains of
    /// the interval since the last answered beat (a restart does not cost a network call).
    fn initial_delay(&self) -> Duration {
        let (trusted, tampered) = self.observe_time();
        let inner = read(&self.inner);
        if tampered || inner.lease.is_none() || inner.lock.is_some() {
            return Duration::ZERO;
        }
        match (inner.last_heartbeat_at, inner.interval) {
            (Some(last), Some(interval)) => {
                let remaining = last.saturating_add(interval).saturating_sub(trusted);
                Duration::from_secs(u64::try_from(remaining.clamp(0, interval)).unwrap_or(0))
            }
            _ => Duration::ZERO,
        }
    }

    /// Starts the background tasks: heartbeats (interval ±10 %, capped exponential backoff on
    /// failure) and periodic persistence of trusted time. They stop when the handle is dropped.
    pub fn spawn_background(self: &Arc<Self>) -> Background {
        let beats = {
            let client = Arc::clone(self);
            tokio::spawn(async move { client.heartbeat_loop().await })
        };
        let persist = {
            let client = Arc::clone(self);
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(PERSIST_EVERY).await;
                    client.observe_time();
                    if let Err(e) = client.save() {
                        tracing::warn!(error = %e, "could not persist the state");
                    }
                }
            })
        };
        Background {
            tasks: vec![beats, persist],
        }
    }

    async fn heartbeat_loop(&self) {
        let schedule = self.config.schedule;
        let mut delay = self.initial_delay();
        let mut failures = 0u32;
        loop {
            tokio::time::sleep(delay).await;
            delay = match self.heartbeat().await {
                Ok(report) => {
                    failures = 0;
                    tracing::debug!(code = %report.code, "heartbeat answered");
                    schedule.after_success(report.interval, rand::random())
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    let retry = schedule.after_failure(failures, rand::random());
                    tracing::warn!(error = %e, failures, retry_in_secs = retry.as_secs(), "heartbeat failed");
                    retry
                }
            };
        }
    }
}

/// Background tasks of a client; dropping it stops them.
#[derive(Debug)]
pub struct Background {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Background {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}
