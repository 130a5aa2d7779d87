//! Runtime configuration: command-line flags, each with an environment variable.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Args, ValueEnum};

mod abuse;

pub use abuse::{AbuseLimits, CorsOrigins, TrustedProxies};

/// Settings shared by every command that talks to the database.
#[derive(Debug, Clone, Args)]
pub struct DatabaseConfig {
    /// PostgreSQL connection URL. When unset, casefile runs its own embedded cluster in the data dir.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Folder for casefile's own files: the embedded cluster, the admin token, stored evidence.
    #[arg(long, env = "CASEFILE_DATA_DIR", default_value = ".casefile")]
    pub data_dir: PathBuf,

    /// Most connections the pool opens.
    #[arg(long, env = "CASEFILE_POOL_SIZE", default_value_t = 16)]
    pub pool_size: usize,

    /// How long a request waits for a free pooled connection, in milliseconds.
    #[arg(long, env = "CASEFILE_POOL_WAIT_MS", default_value_t = 5_000)]
    pub pool_wait_ms: u64,

    /// `statement_timeout` set on every connection, in milliseconds.
    #[arg(long, env = "CASEFILE_STATEMENT_TIMEOUT_MS", default_value_t = 30_000)]
    pub statement_timeout_ms: u64,
}

impl DatabaseConfig {
    pub fn pool_wait(&self) -> Duration {
        Duration::from_millis(self.pool_wait_ms)
    }

    pub fn statement_timeout(&self) -> Duration {
        Duration::from_millis(self.statement_timeout_ms)
    }
}

/// Settings of `casefile serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    /// Address the HTTP server listens on.
    #[arg(long, env = "CASEFILE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Time limit for one HTTP request (WebSockets excepted), in seconds.
    #[arg(long, env = "CASEFILE_REQUEST_TIMEOUT_SECS", default_value_t = 60)]
    pub request_timeout_secs: u64,

    /// The Ed25519 key that signs audit checkpoints: a file holding the 32-byte secret
    /// seed in standard base64 (`openssl rand -base64 32`). Every replica must read the
    /// same file. Unset: `<data dir>/audit-signing-key`, generated at first start (0600).
    #[arg(long, env = "CASEFILE_AUDIT_SIGNING_KEY_FILE")]
    pub audit_signing_key_file: Option<PathBuf>,

    #[command(flatten)]
    pub limits: Limits,

    #[command(flatten)]
    pub abuse: AbuseLimits,

    #[command(flatten)]
    pub files: FileLimits,

    #[command(flatten)]
    pub mail: MailConfig,

    /// Seconds between two runs of the retention jobs on this server (archive, delete,
    /// the sweeper of stored contents); 0 turns them off on this server.
    #[arg(long, env = "CASEFILE_JOBS_INTERVAL_SECS", default_value_t = 300)]
    pub jobs_interval_secs: u64,

    #[command(flatten)]
    pub webhooks: WebhookConfig,
}

/// How webhooks are delivered.
#[derive(Debug, Clone, Args)]
pub struct WebhookConfig {
    /// Allow webhook URLs whose host is loopback, private, link-local or otherwise not
    /// public (off: such URLs are refused at registration and at every delivery).
    #[arg(long, env = "CASEFILE_WEBHOOK_ALLOW_PRIVATE", default_value_t = false, action = clap::ArgAction::Set)]
    pub webhook_allow_private: bool,

    /// Failures in a row after which an endpoint is disabled.
    #[arg(long, env = "CASEFILE_WEBHOOK_MAX_ATTEMPTS", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub webhook_max_attempts: u32,

    /// The first retry's wait in milliseconds; it doubles per failure, up to 10 minutes.
    #[arg(long, env = "CASEFILE_WEBHOOK_RETRY_BASE_MS", default_value_t = 1_000)]
    pub webhook_retry_base_ms: u64,

    /// Time limit, in seconds, to connect to an endpoint and, again, for its answer.
    #[arg(long, env = "CASEFILE_WEBHOOK_TIMEOUT_SECS", default_value_t = 10)]
    pub webhook_timeout_secs: u64,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            webhook_allow_private: false,
            webhook_max_attempts: 10,
            webhook_retry_base_ms: 1_000,
            webhook_timeout_secs: 10,
        }
    }
}

/// The default of `CASEFILE_SMTP_FROM`.
pub const DEFAULT_SMTP_FROM: &str = "casefile <casefile@localhost>";

/// Mail notifications (see the README's Mail section).
#[derive(Debug, Clone, Args)]
pub struct MailConfig {
    /// The SMTP server casefile sends mail through, in lettre's URL form:
    /// `smtp://user:pass@host:587?tls=required` (STARTTLS), `smtps://user:pass@host:465`
    /// (TLS from the start), `smtp://127.0.0.1:2525` (plain, for a relay on loopback).
    /// Unset: no mail is sent, and none is owed for the time it was unset.
    #[arg(long, env = "CASEFILE_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,

    /// The sender of casefile's mail: `name@example.com` or `Name <name@example.com>`.
    #[arg(long, env = "CASEFILE_SMTP_FROM", default_value = DEFAULT_SMTP_FROM)]
    pub smtp_from: String,
}

impl Default for MailConfig {
    fn default() -> Self {
        Self { smtp_url: None, smtp_from: DEFAULT_SMTP_FROM.to_owned() }
    }
}

/// Where evidence file contents are kept.
#[derive(Debug, Clone, Default, Args)]
pub struct StorageConfig {
    /// `s3://bucket[/prefix]` for S3-compatible storage (credentials, region and endpoint
    /// from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_DEFAULT_REGION`,
    /// `AWS_ENDPOINT`, `AWS_ALLOW_HTTP`); unset: the folder `evidence` in the data dir.
    #[arg(long, env = "CASEFILE_OBJECT_STORE_URL")]
    pub object_store_url: Option<String>,
}

/// The default of `CASEFILE_MAX_UPLOAD_BYTES`: 1 GiB.
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 1024 * 1024 * 1024;

/// The default of `CASEFILE_MAX_EXPORT_BYTES`: 7 GiB.
pub const DEFAULT_MAX_EXPORT_BYTES: u64 = 7 * 1024 * 1024 * 1024;

/// Limits of the streaming file routes (evidence upload and download, export).
#[derive(Debug, Clone, Args)]
pub struct FileLimits {
    /// Largest evidence file upload, in bytes (above it: 413 `LIMIT_EXCEEDED`).
    #[arg(long, env = "CASEFILE_MAX_UPLOAD_BYTES", default_value_t = DEFAULT_MAX_UPLOAD_BYTES)]
    pub max_upload_bytes: u64,

    /// Seconds a file upload or download may go without moving a byte before it is cut
    /// (an idle timeout: a long transfer that keeps moving is never cut).
    #[arg(long, env = "CASEFILE_FILE_IDLE_TIMEOUT_SECS", default_value_t = 60)]
    pub file_idle_timeout_secs: u64,

    /// Most bytes of file contents one case export may hold (above it: 413
    /// `EXPORT_TOO_LARGE`, before any byte is sent). 7 GiB by default.
    #[arg(long, env = "CASEFILE_MAX_EXPORT_BYTES", default_value_t = DEFAULT_MAX_EXPORT_BYTES)]
    pub max_export_bytes: u64,
}

impl FileLimits {
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.file_idle_timeout_secs.max(1))
    }
}

impl Default for FileLimits {
    fn default() -> Self {
        Self {
            max_upload_bytes: DEFAULT_MAX_UPLOAD_BYTES,
            file_idle_timeout_secs: 60,
            max_export_bytes: DEFAULT_MAX_EXPORT_BYTES,
        }
    }
}

/// The default of `CASEFILE_MAX_DEPTH`.
pub const DEFAULT_MAX_DEPTH: usize = 15;
/// The default of `CASEFILE_MAX_COMPLEXITY`.
pub const DEFAULT_MAX_COMPLEXITY: usize = 25_000;
/// The default of `CASEFILE_MAX_ALIASES`.
pub const DEFAULT_MAX_ALIASES: usize = 30;
/// The default of `CASEFILE_MAX_ROOT_FIELDS`.
pub const DEFAULT_MAX_ROOT_FIELDS: usize = 20;
/// The default of `CASEFILE_MAX_DIRECTIVES`.
pub const DEFAULT_MAX_DIRECTIVES: usize = 50;

/// Limits the GraphQL endpoint enforces.
#[derive(Debug, Clone, Args)]
pub struct Limits {
    /// Deepest nesting of fields a query may have (introspection queries need 14 or 15).
    #[arg(long, env = "CASEFILE_MAX_DEPTH", default_value_t = DEFAULT_MAX_DEPTH)]
    pub max_depth: usize,

    /// Highest cost a query may have: 1 a field, and a list's items times their selection
    /// (a connection's page size, see `graphql::limits::measure`). 25,000 lets a page of
    /// 100 cases with 50 detections each of a few fields, a case page with 100
    /// detections, and introspection through; three nested pages of 100 cost a million.
    #[arg(long, env = "CASEFILE_MAX_COMPLEXITY", default_value_t = DEFAULT_MAX_COMPLEXITY)]
    pub max_complexity: usize,

    /// Most fields one operation may ask under an alias (counted as its fragments expand):
    /// aliases are how one request asks the same expensive field many times.
    #[arg(long, env = "CASEFILE_MAX_ALIASES", default_value_t = DEFAULT_MAX_ALIASES)]
    pub max_aliases: usize,

    /// Most root fields one operation may select (queries, mutations or subscriptions).
    #[arg(long, env = "CASEFILE_MAX_ROOT_FIELDS", default_value_t = DEFAULT_MAX_ROOT_FIELDS)]
    pub max_root_fields: usize,

    /// Most directives one operation may carry (`@include`, `@skip` and the like).
    #[arg(long, env = "CASEFILE_MAX_DIRECTIVES", default_value_t = DEFAULT_MAX_DIRECTIVES)]
    pub max_directives: usize,

    /// Answer introspection (`__schema`, `__type`) and suggest field names in validation
    /// errors. Off: both are refused, for servers whose schema should not be explored;
    /// GraphiQL and code generators then need the schema file instead.
    #[arg(long, env = "CASEFILE_INTROSPECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub introspection: bool,

    /// Most operations in one batched request.
    #[arg(long, env = "CASEFILE_MAX_BATCH", default_value_t = 10)]
    pub max_batch: usize,

    /// Largest request body accepted, in bytes.
    #[arg(long, env = "CASEFILE_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Most subscriptions one WebSocket connection may run at once; the next one answers
    /// `LIMIT_EXCEEDED`.
    #[arg(long, env = "CASEFILE_WS_MAX_SUBSCRIPTIONS", default_value_t = 100)]
    pub ws_max_subscriptions: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_depth: DEFAULT_MAX_DEPTH,
            max_complexity: DEFAULT_MAX_COMPLEXITY,
            max_aliases: DEFAULT_MAX_ALIASES,
            max_root_fields: DEFAULT_MAX_ROOT_FIELDS,
            max_directives: DEFAULT_MAX_DIRECTIVES,
            introspection: true,
            max_batch: 10,
            max_body_bytes: 1024 * 1024,
            ws_max_subscriptions: 100,
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object a line.
    Json,
}
