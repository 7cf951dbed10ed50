//! `nectar-admin`: operator CLI. `bootstrap` creates the AWS resources of a local (emulated) stack;
//! the other commands run license operations through the same shared services as the functions.
//! Output is JSON on stdout; diagnostics go to stderr.

mod front;
mod operator;
mod relay;
mod seed;
mod trust;

use anyhow::{Context, Result, bail};
use aws_sdk_sqs::types::QueueAttributeName;
use clap::{Args, Parser, Subcommand};
use serde_json::json;
use shared::adapters::dynamo::{DynamoStore, schema};
use shared::adapters::kms::KmsSigner;
use shared::api::{
    CustomerLicensesResponse, CustomerView, IssueLicenseRequest, LicenseDetailView, LicenseView,
};
use shared::config::AdminAuth;
use shared::domain::ports::{Clock, RandomIds, SystemClock};
use shared::domain::{Actor, CustomerId, LicenseId};
use shared::service::admin::{
    IssueCommand, NewCustomer, StatusAction, change_status, create_customer, issue_license,
    lookup_customer,
};
use shared::token::TokenKind;

#[derive(Parser)]
#[command(name = "nectar-admin", version, about = "Nectar Cloud operator CLI")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the table, the license, lease and root keys (+ aliases; the signing keys endorsed by
    /// the root), usage queues and events topic if missing (idempotent).
    Bootstrap(Bootstrap),
    /// Print the SHA-256 (hex) of the admin token read from stdin (never from the command line,
    /// where `ps` and shell history would show it), for ADMIN_TOKEN_SHA256 / the secret.
    HashToken,
    /// Create a customer.
    CreateCustomer {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        name: String,
        #[arg(long)]
        email: String,
    },
    /// Issue a license and print its key.
    Issue {
        #[command(flatten)]
        store: StoreArgs,
        /// SIGNING_KEY_ID: KMS key id, ARN or alias.
        #[arg(long, env = "SIGNING_KEY_ID")]
        signing_key: String,
        #[arg(long, env = "TOKEN_ISSUER", default_value = shared::config::DEFAULT_ISSUER)]
        issuer: String,
        #[arg(long)]
        customer: String,
        #[arg(long)]
        plan: String,
        /// Term in days (default 365).
        #[arg(long, conflicts_with = "expires_at")]
        days: Option<i64>,
        /// End of term, RFC 3339.
        #[arg(long)]
        expires_at: Option<String>,
        /// Replace the plan's features (repeatable).
        #[arg(long = "feature")]
        features: Vec<String>,
        /// Restrict to a domain or `*.domain` (repeatable).
        #[arg(long = "domain")]
        domains: Vec<String>,
        /// Override the installation seat limit.
        #[arg(long)]
        installations: Option<u64>,
        #[command(flatten)]
        contract: ContractArgs,
    },
    /// Revoke, suspend or reinstate a license.
    Status {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(value_parser = ["revoke", "suspend", "reinstate"])]
        action: String,
        license: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Renew a license: a new expiry and a re-signed key (same id); prints the new key.
    Renew {
        #[command(flatten)]
        store: StoreArgs,
        /// SIGNING_KEY_ID: KMS key id, ARN or alias.
        #[arg(long, env = "SIGNING_KEY_ID")]
        signing_key: String,
        #[arg(long, env = "TOKEN_ISSUER", default_value = shared::config::DEFAULT_ISSUER)]
        issuer: String,
        license: String,
        /// New term in days from now (default 365).
        #[arg(long, conflicts_with = "expires_at")]
        days: Option<i64>,
        /// New end of term, RFC 3339.
        #[arg(long)]
        expires_at: Option<String>,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Change a license's plan, features, limits, domains or contract, or move it to another
    /// customer (the API's `PATCH /api/admin/licenses/{id}`, same rules); prints the new key and
    /// what changed.
    Change {
        #[command(flatten)]
        store: StoreArgs,
        /// SIGNING_KEY_ID: KMS key id, ARN or alias.
        #[arg(long, env = "SIGNING_KEY_ID")]
        signing_key: String,
        #[arg(long, env = "TOKEN_ISSUER", default_value = shared::config::DEFAULT_ISSUER)]
        issuer: String,
        license: String,
        /// Move the license to this customer (revokes the previous key).
        #[arg(long = "move-to")]
        customer: Option<String>,
        /// New plan (features and limits start again from its defaults).
        #[arg(long)]
        plan: Option<String>,
        /// Replace the features (repeatable).
        #[arg(long = "feature")]
        features: Vec<String>,
        /// Replace the allowed domains (repeatable); `--any-domain` lifts every restriction.
        #[arg(long = "domain", conflicts_with = "any_domain")]
        domains: Vec<String>,
        #[arg(long)]
        any_domain: bool,
        /// Seat limit.
        #[arg(long)]
        installations: Option<u64>,
        /// Monthly workflow executions.
        #[arg(long)]
        workflows_per_month: Option<u64>,
        /// Named users.
        #[arg(long)]
        users: Option<u64>,
        /// Storage in GB.
        #[arg(long)]
        storage_gb: Option<u64>,
        #[command(flatten)]
        contract: ContractArgs,
        /// Remove the price override (the price list applies).
        #[arg(long, conflicts_with = "price")]
        list_price: bool,
        /// Make every earlier key answer REVOKED.
        #[arg(long)]
        revoke_previous_key: bool,
        #[arg(long)]
        reason: Option<String>,
    },
    /// A page of a license's audit trail, newest first (`--before`: the previous page's `next`).
    Audit {
        #[command(flatten)]
        store: StoreArgs,
        license: String,
        #[arg(long)]
        before: Option<String>,
        /// Entries per page (1–200).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u16).range(1..=200))]
        limit: u16,
    },
    /// Search customers (`--filter namePrefix=acme`, `email=…`, `createdAfter=…`, `createdBefore=…`).
    Customers(ListArgs),
    /// Search licenses (`--filter status=active`, `plan=…`, `customerId=…`, `expiresAfter=…`,
    /// `expiresBefore=…`).
    Licenses(ListArgs),
    /// Search installations (`--filter licenseId=…`, `status=active|inactive`, `version=…`,
    /// `seenBefore=…`).
    Installations(ListArgs),
    /// What needs attention (`--filter kind=expiring|silent|seat_limit|clock_tamper|usage`,
    /// `withinDays=…`, `silentHours=…`).
    Attention(ListArgs),
    /// Fill the table with a realistic demo book (customers, licenses in every status,
    /// installations, three months of usage, flags, 90 days of metrics); once per table.
    SeedDemo {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Record today's metrics snapshot now (what the scheduled job does daily) and print it.
    Metrics {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// A month's usage and overage per license, as CSV on standard output (for invoicing).
    UsageReport {
        #[command(flatten)]
        store: StoreArgs,
        /// The month, YYYY-MM.
        #[arg(long)]
        period: String,
    },
    /// Free one installation's seat now (a machine that is gone); audited with the reason.
    Release {
        #[command(flatten)]
        store: StoreArgs,
        license: String,
        installation: String,
        #[arg(long)]
        reason: String,
    },
    /// Local stand-in for the SQS → Lambda trigger: drain a queue into a function served by
    /// `cargo lambda watch`, deleting only the messages the function did not report as failed.
    RelaySqs {
        #[arg(long, env = "USAGE_QUEUE_URL")]
        queue_url: String,
        #[arg(long, default_value = "usage-processor")]
        function: String,
        /// Base URL of `cargo lambda watch` (its Lambda Invoke API).
        #[arg(long, default_value = "http://127.0.0.1:9000")]
        invoke_url: String,
        /// Messages per invocation (template.yaml: BatchSize 100).
        #[arg(long, default_value_t = 100)]
        batch_size: i32,
        /// Seconds a received message stays hidden (template.yaml's queue: 180).
        #[arg(long, default_value_t = 180)]
        visibility_timeout: i32,
        /// Exit after the queue has been empty this many seconds (default: run until stopped).
        #[arg(long)]
        idle_exit_seconds: Option<u64>,
    },
    /// Local stand-in for API Gateway's HTTP edge in front of `cargo lambda watch`: forwards every
    /// request, handing a non-UTF-8 body on as binary (base64 to the function) as API Gateway does.
    Front {
        /// Address to serve on.
        #[arg(long, default_value = "127.0.0.1:9000")]
        listen: std::net::SocketAddr,
        /// Base URL of `cargo lambda watch`.
        #[arg(long)]
        upstream: String,
    },
    /// Installation trust: export the root keys, endorse signing keys.
    #[command(subcommand)]
    Trust(TrustCommand),
    /// Issue an offline activation file for an air-gapped installation (prints the file).
    Activate {
        #[command(flatten)]
        store: StoreArgs,
        /// LEASE_SIGNING_KEY_ID: the lease key (id, ARN or alias).
        #[arg(long, env = "LEASE_SIGNING_KEY_ID")]
        lease_key: String,
        #[arg(long, env = "TOKEN_ISSUER", default_value = shared::config::DEFAULT_ISSUER)]
        issuer: String,
        #[arg(long)]
        license: String,
        /// The installation id the agent uses (`NECTAR_INSTALLATION_ID`).
        #[arg(long)]
        installation: String,
        /// Days the activation runs (1–365; never past the license's expiry).
        #[arg(long, default_value_t = 90)]
        days: i64,
    },
    /// Operator accounts: create, list, rotate, disable.
    #[command(subcommand)]
    Operator(operator::OperatorCommand),
    /// Show a customer's licenses, installations and audit trail.
    Show {
        #[command(flatten)]
        store: StoreArgs,
        customer: String,
    },
}

#[derive(Subcommand)]
enum TrustCommand {
    /// Print the root public keys as a JWKS (build the agent with it: NECTAR_TRUST_ROOTS_FILE).
    Roots {
        /// The root KMS key(s) (id, ARN or alias); repeat to ship the next root alongside.
        #[arg(long = "root-key", required = true)]
        root_keys: Vec<String>,
    },
    /// Print the public keys of signing keys as a JWKS: the `LicenseKeysJwks` deployment
    /// parameter (verifying functions then start without calling KMS).
    Jwks {
        /// The license signing key(s) (id, ARN or alias): the signing key first, then any kept
        /// for a rotation.
        #[arg(long = "key", required = true)]
        keys: Vec<String>,
    },
    /// Endorse a signing key with the root key and store the endorsement for the JWKS.
    Endorse {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long = "root-key")]
        root_key: String,
        /// The signing key to endorse (id, ARN or alias).
        #[arg(long)]
        key: String,
        /// What it may sign: `license` or `lease`.
        #[arg(long = "use")]
        use_: String,
        /// Days the endorsement runs.
        #[arg(long, default_value_t = 365)]
        days: i64,
        #[arg(long, env = "TOKEN_ISSUER", default_value = shared::config::DEFAULT_ISSUER)]
        issuer: String,
    },
}

/// A license's commercial terms (defaults: self-hosted, yearly, the price list's currency and
/// price, billing from the issue date).
#[derive(Args, Default)]
struct ContractArgs {
    /// `self_hosted` or `saas`.
    #[arg(long)]
    channel: Option<String>,
    /// `monthly` or `yearly`.
    #[arg(long)]
    interval: Option<String>,
    /// ISO 4217 code.
    #[arg(long)]
    currency: Option<String>,
    /// Price per interval in minor units (overrides the price list).
    #[arg(long)]
    price: Option<u64>,
    /// Billing start, YYYY-MM-DD.
    #[arg(long)]
    start: Option<String>,
}

impl ContractArgs {
    fn terms(self) -> shared::api::ContractTerms {
        shared::api::ContractTerms {
            channel: self.channel,
            interval: self.interval,
            currency: self.currency,
            price: self.price,
            start: self.start,
        }
    }
}

/// A fleet listing's page: the API's query parameters, by the same names and rules.
#[derive(Args)]
struct ListArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// A filter as `name=value` (the API's query parameter names); repeatable.
    #[arg(long = "filter", value_name = "NAME=VALUE")]
    filters: Vec<String>,
    /// Items per page (1–200).
    #[arg(long)]
    limit: Option<u16>,
    /// The previous page's `next`.
    #[arg(long)]
    cursor: Option<String>,
}

impl ListArgs {
    /// The query string pairs the API would get.
    fn pairs(&self) -> Result<Vec<(String, String)>> {
        let mut pairs = Vec::new();
        for f in &self.filters {
            let (k, v) = f
                .split_once('=')
                .with_context(|| format!("--filter {f}: expected NAME=VALUE"))?;
            pairs.push((k.to_owned(), v.to_owned()));
        }
        if let Some(limit) = self.limit {
            pairs.push(("limit".into(), limit.to_string()));
        }
        if let Some(cursor) = &self.cursor {
            pairs.push(("cursor".into(), cursor.clone()));
        }
        Ok(pairs)
    }
}

#[derive(Args)]
struct StoreArgs {
    /// TABLE_NAME: the DynamoDB table.
    #[arg(long = "table", env = "TABLE_NAME")]
    table: String,
}

#[derive(Args)]
struct Bootstrap {
    #[arg(long, env = "TABLE_NAME", default_value = "nectar-licenses")]
    table: String,
    #[arg(
        long,
        env = "SIGNING_KEY_ALIAS",
        default_value = "alias/nectar-license-signing"
    )]
    key_alias: String,
    #[arg(long, env = "USAGE_QUEUE_NAME", default_value = "nectar-usage")]
    usage_queue: String,
    /// SNS topic lifecycle notices are published to.
    #[arg(long, env = "EVENTS_TOPIC_NAME", default_value = "nectar-events")]
    events_topic: String,
    /// Receives before a message moves to the DLQ (template.yaml: 5).
    #[arg(long, default_value_t = 5)]
    max_receive_count: u32,
    /// Alias of the lease signing key (default: the license key's alias + `-lease`).
    #[arg(long)]
    lease_key_alias: Option<String>,
    /// Alias of the root key (default: the license key's alias + `-root`).
    #[arg(long)]
    root_key_alias: Option<String>,
    /// Issuer named in the endorsements.
    #[arg(long, env = "TOKEN_ISSUER", default_value = shared::config::DEFAULT_ISSUER)]
    issuer: String,
    /// Days the bootstrap endorsements of the two signing keys run.
    #[arg(long, default_value_t = 365)]
    endorse_days: i64,
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let sdk = shared::aws::sdk_config_for(shared::aws::Deadline::Background).await;
    let actor = Actor::system("nectar-admin");
    let now = SystemClock.now();
    let out = match cli.command {
        Command::Bootstrap(b) => bootstrap(&sdk, b).await?,
        Command::HashToken => {
            let mut token = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut token)?;
            let token = token.trim_end_matches(['\r', '\n']);
            if token.is_empty() {
                bail!("pipe the admin token on stdin");
            }
            json!({ "sha256": AdminAuth::hash_token(token) })
        }
        Command::CreateCustomer { store, name, email } => {
            let store = store.open(&sdk);
            let c = create_customer(&store, &RandomIds, NewCustomer { name, email }, actor, now)
                .await?;
            json!({ "customer": CustomerView::from(&c) })
        }
        Command::Issue {
            store,
            signing_key,
            issuer,
            customer,
            plan,
            days,
            expires_at,
            features,
            domains,
            installations,
            contract,
        } => {
            let store = store.open(&sdk);
            let signer = KmsSigner::connect(aws_sdk_kms::Client::new(&sdk), &signing_key).await?;
            let request = IssueLicenseRequest {
                customer_id: customer,
                plan,
                expires_at,
                valid_days: days,
                features: (!features.is_empty()).then_some(features),
                limits: Some(shared::domain::LimitOverrides {
                    installations,
                    ..Default::default()
                }),
                domain_restrictions: Some(domains),
                contract: Some(contract.terms()),
            };
            let cmd = IssueCommand::try_from(request)?;
            let (license, key) =
                issue_license(&store, &signer, &RandomIds, &issuer, cmd, actor, now).await?;
            json!({ "license": LicenseView::from(&license), "licenseKey": key.expose() })
        }
        Command::Status {
            store,
            action,
            license,
            reason,
        } => {
            let store = store.open(&sdk);
            let action = match action.as_str() {
                "revoke" => StatusAction::Revoke,
                "suspend" => StatusAction::Suspend,
                _ => StatusAction::Reinstate,
            };
            let id = LicenseId::parse(&license)?;
            let (license, changed) = change_status(&store, &id, action, reason, actor, now).await?;
            json!({ "license": LicenseView::from(&license), "changed": changed })
        }
        Command::Renew {
            store,
            signing_key,
            issuer,
            license,
            days,
            expires_at,
            reason,
        } => {
            let store = store.open(&sdk);
            let signer = KmsSigner::connect(aws_sdk_kms::Client::new(&sdk), &signing_key).await?;
            use shared::api::Parse as _;
            let (term, reason) = shared::api::RenewLicenseRequest {
                expires_at,
                valid_days: days,
                reason,
            }
            .parse()?;
            let cmd = shared::service::admin::RenewCommand {
                id: LicenseId::parse(&license)?,
                term,
                reason,
            };
            let (license, key) =
                shared::service::admin::renew_license(&store, &signer, &issuer, cmd, actor, now)
                    .await?;
            json!({ "license": LicenseView::from(&license), "licenseKey": key.expose() })
        }
        Command::Change {
            store,
            signing_key,
            issuer,
            license,
            customer,
            plan,
            features,
            domains,
            any_domain,
            installations,
            workflows_per_month,
            users,
            storage_gb,
            contract,
            list_price,
            revoke_previous_key,
            reason,
        } => {
            let store = store.open(&sdk);
            let signer = KmsSigner::connect(aws_sdk_kms::Client::new(&sdk), &signing_key).await?;
            let limits = shared::domain::LimitOverrides {
                workflows_per_month,
                users,
                storage_gb,
                installations,
            };
            let terms = contract.terms();
            let contract = shared::api::ContractChange {
                channel: terms.channel,
                interval: terms.interval,
                currency: terms.currency,
                price: if list_price {
                    Some(None)
                } else {
                    terms.price.map(Some)
                },
                start: terms.start,
            };
            // The request the API would get, parsed by the API's own rules.
            let request = shared::api::ChangeLicenseRequest {
                customer_id: customer,
                plan,
                features: (!features.is_empty()).then_some(features),
                limits: (limits != Default::default()).then_some(limits),
                domain_restrictions: (any_domain || !domains.is_empty()).then_some(domains),
                contract: (contract != Default::default()).then_some(contract),
                revoke_previous_key,
                reason,
            };
            let cmd = shared::service::changes::ChangeCommand::try_from(request)?;
            let changed = shared::service::changes::change_license(
                &store,
                &signer,
                &issuer,
                &LicenseId::parse(&license)?,
                &cmd,
                actor,
                now,
            )
            .await?;
            json!(shared::api::LicenseChangedResponse::from(&changed))
        }
        Command::Audit {
            store,
            license,
            before,
            limit,
        } => {
            use shared::domain::ports::AuditLog as _;
            let store = store.open(&sdk);
            let id = LicenseId::parse(&license)?;
            let page = store
                .audit_page(&id, before.as_deref(), usize::from(limit))
                .await?;
            json!({
                "licenseId": id.to_string(),
                "entries": page.entries.iter().map(shared::api::AuditView::from).collect::<Vec<_>>(),
                "next": page.next,
            })
        }
        Command::SeedDemo { store } => {
            let store = store.open(&sdk);
            let prices = shared::config::Config::from_env()?.price_list().clone();
            match seed::seed_demo(&store, &prices, now).await? {
                Some(summary) => summary,
                None => json!({"seeded": false, "why": "the demo book is already in this table"}),
            }
        }
        Command::Metrics { store } => {
            let store = store.open(&sdk);
            let prices = shared::config::Config::from_env()?.price_list().clone();
            serde_json::to_value(
                shared::service::metrics::record_daily(&store, &prices, now).await?,
            )?
        }
        Command::UsageReport { store, period } => {
            let store = store.open(&sdk);
            let prices = shared::config::Config::from_env()?.price_list().clone();
            let period = shared::api::parse_period(Some(&period), now)?;
            let rows = shared::service::metrics::usage_report(&store, &prices, period).await?;
            print!(
                "{}",
                shared::service::metrics::usage_csv(period, &rows, &prices)
            );
            return Ok(());
        }
        Command::Customers(args) => {
            use shared::api::fleet::{Params, customer_query, customer_view, page_view};
            use shared::domain::ports::FleetIndex as _;
            let pairs = args.pairs()?;
            let (filter, page) = customer_query(&Params::new(&pairs))?;
            let found = args
                .store
                .open(&sdk)
                .list_customers(&filter, page.cursor.as_ref(), page.limit)
                .await?;
            serde_json::to_value(page_view(&found, customer_view))?
        }
        Command::Licenses(args) => {
            use shared::api::fleet::{FleetLicenseView, Params, license_query, page_view};
            use shared::domain::ports::FleetIndex as _;
            let pairs = args.pairs()?;
            let (filter, page) = license_query(&Params::new(&pairs))?;
            let found = args
                .store
                .open(&sdk)
                .list_licenses(&filter, page.cursor.as_ref(), page.limit)
                .await?;
            serde_json::to_value(page_view(&found, |l| FleetLicenseView::from(l)))?
        }
        Command::Installations(args) => {
            use shared::api::fleet::{
                FleetInstallationView, Params, installation_query, page_view,
            };
            use shared::domain::ports::FleetIndex as _;
            let pairs = args.pairs()?;
            let (filter, page) = installation_query(&Params::new(&pairs))?;
            let found = args
                .store
                .open(&sdk)
                .list_installations(&filter, page.cursor.as_ref(), page.limit)
                .await?;
            serde_json::to_value(page_view(&found, |i| FleetInstallationView::from(i)))?
        }
        Command::Attention(args) => {
            use shared::api::fleet::{AttentionView, Params, attention_query, page_view};
            let pairs = args.pairs()?;
            let (query, page) = attention_query(&Params::new(&pairs))?;
            let store = args.store.open(&sdk);
            let found = shared::service::fleet::attention(
                &store,
                query,
                now,
                page.cursor.as_ref(),
                page.limit,
            )
            .await?;
            serde_json::to_value(page_view(&found, |a| AttentionView::from(a)))?
        }
        Command::Release {
            store,
            license,
            installation,
            reason,
        } => {
            let store = store.open(&sdk);
            let (released, changed) = shared::service::installations::release_installation(
                &store,
                &LicenseId::parse(&license)?,
                &shared::domain::InstallationId::parse(&installation)?,
                reason,
                actor,
                now,
            )
            .await?;
            json!({ "installation": shared::api::InstallationView::from(&released), "changed": changed })
        }
        Command::RelaySqs {
            queue_url,
            function,
            invoke_url,
            batch_size,
            visibility_timeout,
            idle_exit_seconds,
        } => {
            let relay = relay::Relay {
                queue_url,
                function,
                invoke_url,
                batch_size,
                visibility_timeout,
            };
            let region = sdk.region().map(ToString::to_string).unwrap_or_default();
            eprintln!("relaying {} → {}", relay.queue_url, relay.function);
            relay
                .run(
                    &aws_sdk_sqs::Client::new(&sdk),
                    &region,
                    idle_exit_seconds.map(std::time::Duration::from_secs),
                )
                .await?;
            json!({ "relayed": true })
        }
        Command::Front { listen, upstream } => {
            eprintln!("serving {listen} → {upstream}");
            front::run(listen, upstream).await?;
            json!({ "served": true })
        }
        Command::Trust(TrustCommand::Jwks { keys }) => {
            serde_json::to_value(trust::roots(&aws_sdk_kms::Client::new(&sdk), &keys).await?)?
        }
        Command::Trust(TrustCommand::Roots { root_keys }) => {
            serde_json::to_value(trust::roots(&aws_sdk_kms::Client::new(&sdk), &root_keys).await?)?
        }
        Command::Trust(TrustCommand::Endorse {
            store,
            root_key,
            key,
            use_,
            days,
            issuer,
        }) => {
            let e = trust::endorse(
                &aws_sdk_kms::Client::new(&sdk),
                &store.open(&sdk),
                &issuer,
                &root_key,
                &key,
                trust::token_kind(&use_)?,
                days,
                now,
            )
            .await?;
            json!({ "kid": e.kid, "use": use_, "expiresAt": e.expires_at.to_string(), "endorsement": e.token })
        }
        Command::Activate {
            store,
            lease_key,
            issuer,
            license,
            installation,
            days,
        } => {
            let store = store.open(&sdk);
            let signer = KmsSigner::connect(aws_sdk_kms::Client::new(&sdk), &lease_key).await?;
            let cmd = shared::service::activation::ActivationCommand {
                license_id: LicenseId::parse(&license)?,
                installation_id: shared::domain::InstallationId::parse(&installation)?,
                days,
                actor: actor.clone(),
            };
            let file =
                shared::service::activation::activate_offline(&store, &signer, &issuer, &cmd, now)
                    .await?;
            serde_json::to_value(file)?
        }
        Command::Operator(command) => operator::run(&sdk, command, actor, now).await?,
        Command::Show { store, customer } => {
            let store = store.open(&sdk);
            let (customer, licenses) =
                lookup_customer(&store, &CustomerId::parse(&customer)?).await?;
            serde_json::to_value(CustomerLicensesResponse {
                customer: CustomerView::from(&customer),
                licenses: licenses.iter().map(LicenseDetailView::from).collect(),
            })?
        }
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

impl StoreArgs {
    fn open(self, sdk: &aws_config::SdkConfig) -> DynamoStore {
        DynamoStore::new_with_table(aws_sdk_dynamodb::Client::new(sdk), self.table)
    }
}

async fn bootstrap(sdk: &aws_config::SdkConfig, b: Bootstrap) -> Result<serde_json::Value> {
    if !b.key_alias.starts_with("alias/") {
        bail!("--key-alias must start with alias/");
    }
    let dynamo = aws_sdk_dynamodb::Client::new(sdk);
    schema::ensure_table(&dynamo, &b.table)
        .await
        .map_err(|e| anyhow::anyhow!(e))
        .context("creating the table")?;

    let kms = aws_sdk_kms::Client::new(sdk);
    let key_id = trust::ensure_key(&kms, &b.key_alias, "Nectar license signing key").await?;
    let lease_alias = b
        .lease_key_alias
        .clone()
        .unwrap_or_else(|| format!("{}-lease", b.key_alias));
    let root_alias = b
        .root_key_alias
        .clone()
        .unwrap_or_else(|| format!("{}-root", b.key_alias));
    trust::ensure_key(&kms, &lease_alias, "Nectar lease signing key").await?;
    trust::ensure_key(&kms, &root_alias, "Nectar root key (endorsements only)").await?;
    let store = DynamoStore::new_with_table(dynamo.clone(), &b.table);
    let now = SystemClock.now();
    for (key, use_) in [
        (&b.key_alias, TokenKind::License),
        (&lease_alias, TokenKind::Lease),
    ] {
        trust::endorse(
            &kms,
            &store,
            &b.issuer,
            &root_alias,
            key,
            use_,
            b.endorse_days,
            now,
        )
        .await
        .with_context(|| format!("endorsing {key}"))?;
    }
    let root_jwks = trust::roots(&kms, std::slice::from_ref(&root_alias)).await?;

    // Mirrors template.yaml: the usage queue redrives to its DLQ after 5 receives.
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let dlq_url = sqs
        .create_queue()
        .queue_name(format!("{}-dlq", b.usage_queue))
        .attributes(QueueAttributeName::MessageRetentionPeriod, "1209600")
        .send()
        .await
        .context("creating the usage DLQ")?
        .queue_url
        .context("DLQ url")?;
    let dlq_arn = sqs
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .context("reading the DLQ arn")?
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .context("DLQ arn")?;
    let queue_url = sqs
        .create_queue()
        .queue_name(&b.usage_queue)
        .attributes(QueueAttributeName::VisibilityTimeout, "60")
        .attributes(
            QueueAttributeName::RedrivePolicy,
            json!({ "deadLetterTargetArn": dlq_arn, "maxReceiveCount": b.max_receive_count })
                .to_string(),
        )
        .send()
        .await
        .context("creating the usage queue")?
        .queue_url
        .context("queue url")?;

    // CreateTopic is idempotent: an existing topic of that name is returned.
    let topic_arn = aws_sdk_sns::Client::new(sdk)
        .create_topic()
        .name(&b.events_topic)
        .send()
        .await
        .context("creating the events topic")?
        .topic_arn
        .context("topic arn")?;

    eprintln!(
        "bootstrapped table {}, key {} ({key_id}), queue {}, topic {}",
        b.table, b.key_alias, b.usage_queue, b.events_topic
    );
    Ok(json!({
        "TABLE_NAME": b.table,
        "SIGNING_KEY_ID": b.key_alias,
        "SIGNING_KEY_UUID": key_id,
        "LEASE_SIGNING_KEY_ID": lease_alias,
        "ROOT_KEY_ID": root_alias,
        "ROOT_JWKS": root_jwks,
        "USAGE_QUEUE_URL": queue_url,
        "USAGE_DLQ_URL": dlq_url,
        "EVENTS_TOPIC_ARN": topic_arn,
    }))
}
