//! `nectar-admin operator create|list|rotate|disable`: operator accounts, through the same service
//! as the `operators` function, directly against the table (the CLI's AWS credentials are its
//! authority; the audit trail names it `system:nectar-admin`). Tokens are printed once, in the
//! JSON on stdout; the table keeps only their hashes.

use anyhow::{Result, anyhow};
use clap::Subcommand;
use serde_json::Value;
use shared::api::{
    CreateOperatorRequest, DisableOperatorRequest, OperatorChangeResponse, OperatorListResponse,
    OperatorTokenResponse, OperatorView, RotateOperatorRequest,
};
use shared::domain::ports::RandomIds;
use shared::domain::{Actor, OperatorId};
use shared::service::operators::{
    DEFAULT_PAGE, NewOperator, create_operator, disable_operator, list_operators, rotate_operator,
};
use time::OffsetDateTime;

use super::StoreArgs;

/// The operator subcommands.
#[derive(Subcommand)]
pub enum OperatorCommand {
    /// Create an operator and print its token (shown this once).
    Create {
        #[command(flatten)]
        store: StoreArgs,
        /// A handle: 1–64 of A-Z a-z 0-9 . _ @ -, unique among active operators.
        #[arg(long)]
        name: String,
        /// viewer, support or admin.
        #[arg(long)]
        role: String,
        #[arg(long)]
        email: Option<String>,
    },
    /// List operators, a page at a time, in creation order.
    List {
        #[command(flatten)]
        store: StoreArgs,
        /// The `next` of an earlier page.
        #[arg(long)]
        after: Option<String>,
        /// Operators per page (1–100).
        #[arg(long, default_value_t = DEFAULT_PAGE)]
        limit: usize,
    },
    /// Give an operator a new token (printed once); the old one stops working at once.
    Rotate {
        #[command(flatten)]
        store: StoreArgs,
        /// The operator's id.
        operator: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Disable an operator for good; its token stops working at once.
    Disable {
        #[command(flatten)]
        store: StoreArgs,
        /// The operator's id.
        operator: String,
        #[arg(long)]
        reason: String,
    },
}

/// Runs `command` as `actor` at `now`; the JSON to print.
pub async fn run(
    sdk: &aws_config::SdkConfig,
    command: OperatorCommand,
    actor: Actor,
    now: OffsetDateTime,
) -> Result<Value> {
    let id = |raw: &str| OperatorId::parse(raw).map_err(|e| anyhow!("operator: {e}"));
    Ok(match command {
        OperatorCommand::Create {
            store,
            name,
            role,
            email,
        } => {
            let new = NewOperator::try_from(CreateOperatorRequest { name, role, email })?;
            let (operator, token) =
                create_operator(&store.open(sdk), &RandomIds, new, actor, now).await?;
            eprintln!("the token is shown this once: hand it to its operator now");
            serde_json::to_value(OperatorTokenResponse {
                operator: OperatorView::from(&operator),
                token: token.expose().to_owned(),
            })?
        }
        OperatorCommand::List {
            store,
            after,
            limit,
        } => {
            let after = after.as_deref().map(id).transpose()?;
            let page = list_operators(&store.open(sdk), after.as_ref(), limit).await?;
            serde_json::to_value(OperatorListResponse::from(&page))?
        }
        OperatorCommand::Rotate {
            store,
            operator,
            reason,
        } => {
            let reason = RotateOperatorRequest { reason }.reason()?;
            let (operator, token) = rotate_operator(
                &store.open(sdk),
                &RandomIds,
                &id(&operator)?,
                reason,
                actor,
                now,
            )
            .await?;
            eprintln!("the old token no longer works; the new one is shown this once");
            serde_json::to_value(OperatorTokenResponse {
                operator: OperatorView::from(&operator),
                token: token.expose().to_owned(),
            })?
        }
        OperatorCommand::Disable {
            store,
            operator,
            reason,
        } => {
            let reason = DisableOperatorRequest { reason }.reason()?;
            let (operator, changed) =
                disable_operator(&store.open(sdk), &id(&operator)?, reason, actor, now).await?;
            serde_json::to_value(OperatorChangeResponse {
                operator: OperatorView::from(&operator),
                changed,
            })?
        }
    })
}
