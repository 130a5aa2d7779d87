//! The command line: `serve` (the default), `migrate`, `schema`, and the create commands,
//! each of which prints one JSON object on stdout.

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use serde_json::json;
use uuid::Uuid;

use crate::config::{DatabaseConfig, LogFormat, ServeConfig, StorageConfig};
use crate::db::{Database, migrations};
use crate::domain::seed::Scale;
use crate::graphql::ids::{self, Kind};
use diesel_async::AsyncConnection as _;

use crate::domain::admin;
use crate::models::events::{self, Origin};
use crate::models::ids::{TenantId, UserId};
use crate::models::tenants::{self, License};
use crate::models::tokens;
use crate::models::users::{self, NewUser, Role};

/// casefile: case management for security investigations, over one GraphQL API.
#[derive(Debug, Parser)]
#[command(name = "casefile", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub database: DatabaseConfig,

    #[command(flatten)]
    pub storage: StorageConfig,

    #[command(flatten)]
    pub serve: ServeConfig,

    /// Log line format.
    #[arg(long, env = "CASEFILE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default command).
    Serve,
    /// Apply pending database migrations, then exit.
    Migrate,
    /// Print the GraphQL schema (SDL); `schema.graphql` holds exactly this.
    Schema,
    /// Manage tenants.
    Tenant {
        #[command(subcommand)]
        action: TenantAction,
    },
    /// Manage users.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Retention jobs (archive, delete, the sweeper of stored contents).
    Jobs {
        #[command(subcommand)]
        action: JobsAction,
    },
    /// Fill the database with realistic data, deterministic from `--seed`; prints one
    /// JSON object with an ADMIN token per tenant.
    Seed(SeedArgs),
}

#[derive(Debug, Subcommand)]
pub enum JobsAction {
    /// Run the jobs once and exit; prints `{"archived", "deleted", "objectsPurged", "failures"}`.
    Run {
        /// The time to run them as of (RFC 3339); now when absent.
        #[arg(long, value_parser = parse_time)]
        now: Option<chrono::DateTime<chrono::Utc>>,
    },
}

fn parse_time(value: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(value)
        .map(|t| t.to_utc())
        .map_err(|e| format!("expected an RFC 3339 time such as 2027-01-31T00:00:00Z: {e}"))
}

/// What `casefile seed` writes.
#[derive(Debug, clap::Args)]
pub struct SeedArgs {
    /// small: one tenant to explore in seconds; medium: 10 tenants, 100,000 cases,
    /// 1,000,000 detections; large: 1,000,000 cases in one tenant.
    #[arg(long, value_enum, default_value_t = Scale::Small)]
    pub scale: Scale,
    /// The random seed: the same seed (and day) writes the same data.
    #[arg(long, default_value_t = crate::domain::seed::DEFAULT_SEED)]
    pub seed: u64,
    /// Cases per tenant instead of the scale's (the growth curve seeds 10k, 100k, 1M).
    #[arg(long)]
    pub cases: Option<usize>,
    /// Detections per tenant instead of the scale's.
    #[arg(long)]
    pub detections: Option<usize>,
    /// Times are relative to this instant (RFC 3339); default: the start of today (UTC).
    #[arg(long)]
    pub anchor: Option<chrono::DateTime<chrono::Utc>>,
    /// Rows per insert statement and per committed batch.
    #[arg(long, default_value_t = 10_000)]
    pub batch: usize,
}

#[derive(Debug, Subcommand)]
pub enum TenantAction {
    /// Create a tenant; prints `{"tenantId": …}`.
    Create {
        /// The tenant's name.
        #[arg(long)]
        name: String,
        /// An extra license (XDR is always held); repeat for several.
        #[arg(long = "license", value_parser = parse_license)]
        licenses: Vec<License>,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserAction {
    /// Create a user; prints `{"userId": …}`.
    Create {
        /// The tenant's id (as `tenant create` printed it).
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        email: String,
        /// ADMIN, ANALYST, SUPER_ADMIN, READ_ONLY, PROVIDER_ANALYST or INGEST.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Name shown to people; defaults to the email.
        #[arg(long)]
        display_name: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenAction {
    /// Create an API token for a user; prints `{"token": …, "tokenId": …}`. The token is shown only now.
    Create {
        /// The user's id (as `user create` printed it).
        #[arg(long)]
        user: String,
        /// A name to recognise the token by.
        #[arg(long, default_value = "cli")]
        name: String,
        /// Days until the token expires; never when absent.
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
}

fn parse_license(value: &str) -> Result<License, String> {
    License::parse(&value.to_ascii_uppercase())
        .ok_or_else(|| "expected XDR, MDR or MANAGED_RISK".to_owned())
}

fn parse_role(value: &str) -> Result<Role, String> {
    Role::parse(&value.to_ascii_uppercase()).ok_or_else(|| {
        let names: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
        format!("expected one of {}", names.join(", "))
    })
}

/// Accepts a global id of `kind` or a bare UUID.
fn parse_id(kind: Kind, value: &str, what: &str) -> anyhow::Result<Uuid> {
    if let Ok(uuid) = Uuid::parse_str(value.trim()) {
        return Ok(uuid);
    }
    ids::expect(kind, value.trim(), what)
        .map_err(|_| anyhow::anyhow!("`{value}` is not a {what} id"))
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        None | Some(Command::Serve) => {
            crate::server::serve(&cli.database, &cli.storage, &cli.serve).await
        }
        Some(Command::Jobs { action: JobsAction::Run { now } }) => {
            let storage = crate::storage::Storage::from_config(
                cli.storage.object_store_url.as_deref(),
                &cli.database.data_dir,
            )?;
            let now = now.unwrap_or_else(chrono::Utc::now);
            let report = with_database(&cli.database, |mut conn| async move {
                let metrics = crate::jobs::JobMetrics::default();
                Ok(crate::jobs::run_once(&mut conn, &storage, now, &metrics).await)
            })
            .await?;
            println!("{}", serde_json::to_string(&report)?);
            if report.failures > 0 {
                bail!(
                    "{} job steps failed (see the log); they are retried on the next run",
                    report.failures
                );
            }
            Ok(())
        }
        Some(Command::Schema) => {
            print!("{}", crate::graphql::sdl());
            Ok(())
        }
        Some(Command::Migrate) => {
            with_database(&cli.database, |_| async { Ok(()) }).await?;
            Ok(())
        }
        Some(Command::Tenant { action: TenantAction::Create { name, licenses } }) => {
            let name = bounded_text(&name, "--name", 100)?;
            let tenant = with_database(&cli.database, |mut conn| async move {
                Ok(conn
                    .transaction(async |conn| {
                        let tenant =
                            tenants::insert(conn, &tenants::NewTenant::new(&name, &licenses))
                                .await?;
                        let event = admin::tenant_created(&tenant);
                        events::append(conn, tenant.id, &Origin::system(), vec![event]).await?;
                        Ok::<_, diesel::result::Error>(tenant)
                    })
                    .await?)
            })
            .await
            .context("creating the tenant (names are unique, ignoring case)")?;
            println!("{}", json!({ "tenantId": ids::encode(Kind::Tenant, tenant.id.0).0 }));
            Ok(())
        }
        Some(Command::User {
            action: UserAction::Create { tenant, email, role, display_name },
        }) => {
            let tenant_id = TenantId(parse_id(Kind::Tenant, &tenant, "tenant")?);
            let email = email.trim().to_owned();
            if !crate::domain::is_email(&email) {
                bail!("--email must be an email address");
            }
            let display_name =
                bounded_text(display_name.as_deref().unwrap_or(&email), "--display-name", 200)?;
            let user = with_database(&cli.database, |mut conn| async move {
                if tenants::find(&mut conn, tenant_id).await?.is_none() {
                    bail!("no tenant has the id {tenant}");
                }
                let new = NewUser {
                    id: UserId::new(),
                    tenant_id,
                    email: &email,
                    display_name: &display_name,
                    role,
                };
                conn.transaction(async |conn| {
                    let user = users::insert(conn, &new).await?;
                    let event = admin::user_created(&user);
                    events::append(conn, tenant_id, &Origin::system(), vec![event]).await?;
                    Ok::<_, diesel::result::Error>(user)
                })
                .await
                .context("creating the user (emails are unique per tenant)")
            })
            .await?;
            println!("{}", json!({ "userId": ids::encode(Kind::User, user.id.0).0 }));
            Ok(())
        }
        Some(Command::Seed(args)) => seed(&cli.database, args).await,
        Some(Command::Token { action: TokenAction::Create { user, name, expires_in_days } }) => {
            let user_id = UserId(parse_id(Kind::User, &user, "user")?);
            let name = bounded_text(&name, "--name", 100)?;
            if expires_in_days == Some(0) {
                bail!("--expires-in-days must be at least 1");
            }
            let expires_at =
                expires_in_days.map(|d| chrono::Utc::now() + chrono::Duration::days(i64::from(d)));
            let (token_id, secret) = with_database(&cli.database, |mut conn| async move {
                let Some(user) = users::find_any(&mut conn, user_id).await? else {
                    bail!("no user has the id {user}");
                };
                conn.transaction(async |conn| {
                    let (id, secret) = tokens::create(conn, &user, &name, expires_at).await?;
                    let event = admin::token_created(id, &user, &name, expires_at);
                    events::append(conn, user.tenant_id, &Origin::system(), vec![event]).await?;
                    Ok::<_, diesel::result::Error>((id, secret))
                })
                .await
                .map_err(Into::into)
            })
            .await?;
            println!(
                "{}",
                json!({ "token": secret, "tokenId": ids::encode(Kind::ApiToken, token_id.0).0 })
            );
            Ok(())
        }
    }
}

/// `casefile seed`: writes the data, then creates one ADMIN token per tenant.
async fn seed(config: &DatabaseConfig, args: SeedArgs) -> anyhow::Result<()> {
    use crate::domain::seed::{self, SeedOptions};
    let mut plan = args.scale.plan();
    if let Some(cases) = args.cases {
        plan.cases = cases;
    }
    if let Some(detections) = args.detections {
        plan.detections = detections;
    }
    let options = SeedOptions {
        plan,
        seed: args.seed,
        anchor: args.anchor.unwrap_or_else(seed::today),
        batch: args.batch,
    };
    let started = std::time::Instant::now();
    let scale = args.scale;
    let report = with_database(config, |mut conn| async move {
        let mut progress = |line: &str| {
            eprintln!("[{:>6.1} s] {line}", started.elapsed().as_secs_f64());
        };
        let seeded = seed::run(&mut conn, &options, &mut progress).await?;
        let mut tenants = Vec::new();
        for t in seeded {
            let Some(admin) = users::find_any(&mut conn, UserId(t.admin_id)).await? else {
                bail!("the seeded admin of {} is missing", t.name);
            };
            let (_, token) = tokens::create(&mut conn, &admin, "seed", None).await?;
            tenants.push(json!({
                "name": t.name,
                "tenantId": ids::encode(Kind::Tenant, t.id).0,
                "tenantUuid": t.id,
                "adminToken": token,
                "cases": t.cases,
                "openCases": t.open_cases,
                "detections": t.detections,
                "links": t.links,
                "largestCase": { "number": t.largest_case.0, "detections": t.largest_case.1 },
            }));
        }
        Ok(json!({
            "scale": format!("{scale:?}").to_lowercase(),
            "seed": options.seed,
            "anchor": options.anchor,
            "seconds": (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
            "tenants": tenants,
        }))
    })
    .await?;
    println!("{report}");
    Ok(())
}

/// The trimmed value of `flag`, which must have 1 to `max` characters (the columns' CHECKs).
fn bounded_text(value: &str, flag: &str, max: usize) -> anyhow::Result<String> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > max {
        bail!("{flag} must have 1 to {max} characters");
    }
    Ok(value.to_owned())
}

/// Opens the database as `serve` would (attaching to a running embedded cluster, or
/// starting it for the duration of the command), migrates it, and runs `f` on one connection.
async fn with_database<F, Fut, T>(config: &DatabaseConfig, f: F) -> anyhow::Result<T>
where
    F: FnOnce(diesel_async::AsyncPgConnection) -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let database = Database::open(config).await?;
    let result = async {
        migrations::run(&database.url).await?;
        let conn = crate::db::pool::connect(&database.url).await?;
        f(conn).await
    }
    .await;
    database.close().await;
    result
}
