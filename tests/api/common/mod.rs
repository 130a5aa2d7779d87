//! The test harness: one throwaway PostgreSQL cluster per test run (or the server at
//! `CASEFILE_TEST_DATABASE_URL`), a template database migrated once, and a fresh database
//! cloned from it for every test (dropped when the test ends), so tests run in parallel.
//! `TestApp` serves the real router on a loopback port and talks to it over real HTTP.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

pub mod contents;
pub mod fixtures;
pub mod ws;

use casefile::config::{AbuseLimits, FileLimits, Limits};
use casefile::db::embedded::EmbeddedPostgres;
use casefile::db::{DbPool, migrations, pool};
use casefile::models::ids::{TenantId, UserId};
use casefile::models::tenants::{self, License, NewTenant};
use casefile::models::users::{self, NewUser, Role};
use casefile::models::{ids::TokenId, tokens};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::{Value, json};

const TEMPLATE: &str = "casefile_test_template";

/// The server every test database lives on.
struct Server {
    /// URL of a database to run `CREATE DATABASE` from.
    admin_url: String,
    /// Builds the URL of a database on this server.
    url_for: Box<dyn Fn(&str) -> String + Send + Sync>,
    /// Keeps the embedded cluster (and its supervisor) alive for the whole run.
    _cluster: Option<EmbeddedPostgres>,
}

static SERVER: OnceLock<Server> = OnceLock::new();
static CREATE_DB: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn server() -> &'static Server {
    SERVER.get_or_init(|| {
        // Start (and migrate) on a thread of its own: tests each run their own runtime.
        std::thread::spawn(start_server).join().expect("test database server thread panicked")
    })
}

fn start_server() -> Server {
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let server =
            match std::env::var("CASEFILE_TEST_DATABASE_URL").ok().filter(|u| !u.is_empty()) {
                Some(url) => external_server(&url),
                None => embedded_server().await,
            };
        // A fresh template for this run, migrated once.
        let mut admin = AsyncPgConnection::establish(&server.admin_url)
            .await
            .expect("connect to the test server");
        let template = template_name();
        diesel::sql_query(format!("DROP DATABASE IF EXISTS {template} WITH (FORCE)"))
            .execute(&mut admin)
            .await
            .expect("drop old template");
        diesel::sql_query(format!("CREATE DATABASE {template}"))
            .execute(&mut admin)
            .await
            .expect("create template");
        migrations::run(&(server.url_for)(&template)).await.expect("migrate the template");
        server
    })
}

/// With an external server, runs of several checkouts must not share a template.
fn template_name() -> String {
    format!("{TEMPLATE}_{}", std::process::id())
}

fn external_server(url: &str) -> Server {
    let parsed = url::Url::parse(url).expect("CASEFILE_TEST_DATABASE_URL must be a URL");
    let base = parsed.clone();
    Server {
        admin_url: url.to_owned(),
        url_for: Box::new(move |db| {
            let mut u = base.clone();
            u.set_path(&format!("/{db}"));
            u.to_string()
        }),
        _cluster: None,
    }
}

async fn embedded_server() -> Server {
    let dir = test_cluster_dir();
    let cluster = EmbeddedPostgres::start(&dir).await.expect("start the throwaway test cluster");
    let admin_url = cluster.database_url("postgres");
    let base = cluster.database_url("DBNAME_PLACEHOLDER");
    Server {
        admin_url,
        url_for: Box::new(move |db| base.replace("DBNAME_PLACEHOLDER", db)),
        _cluster: Some(cluster),
    }
}

/// A folder for this run's cluster; folders of earlier runs whose process is gone are removed.
fn test_cluster_dir() -> PathBuf {
    let root = std::env::temp_dir();
    if let Ok(entries) = std::fs::read_dir(&root) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(pid) =
                name.strip_prefix("casefile-test-").and_then(|p| p.parse::<u32>().ok())
                && !PathBuf::from(format!("/proc/{pid}")).exists()
            {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    let dir = root.join(format!("casefile-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create the test cluster folder");
    let _ = std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755));
    dir
}

/// A database of its own, cloned from the migrated template, and dropped (connections
/// still open to it included) when this value is dropped at the end of the test.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
}

/// A database of its own, cloned from the migrated template.
pub async fn fresh_database() -> TestDatabase {
    let server = server();
    let name = format!("casefile_test_{}", uuid::Uuid::new_v4().simple());
    {
        // CREATE DATABASE … TEMPLATE needs the template to be idle: one at a time.
        let _guard = CREATE_DB.lock().await;
        let mut admin = AsyncPgConnection::establish(&server.admin_url)
            .await
            .expect("connect to the test server");
        diesel::sql_query(format!("CREATE DATABASE {name} TEMPLATE {}", template_name()))
            .execute(&mut admin)
            .await
            .expect("clone the template database");
    }
    let url = (server.url_for)(&name);
    TestDatabase { name, url }
}

/// An empty database of its own (no migrations run), dropped like [`fresh_database`]'s.
pub async fn empty_database() -> TestDatabase {
    let server = server();
    let name = format!("casefile_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin =
        AsyncPgConnection::establish(&server.admin_url).await.expect("connect to the test server");
    diesel::sql_query(format!("CREATE DATABASE {name} TEMPLATE template0"))
        .execute(&mut admin)
        .await
        .expect("create an empty database");
    let url = (server.url_for)(&name);
    TestDatabase { name, url }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime, which cannot wait for a future: the
        // statement runs on a thread (and a runtime) of its own, waited for, so the
        // database is gone when the test ends. A failure here is reported, never a panic
        // (this may run while a failed test unwinds).
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?
                .block_on(drop_database(&name))
        })
        .join()
        .unwrap_or_else(|_| Err("the thread dropping it panicked".to_owned()));
        if let Err(error) = dropped {
            eprintln!("could not drop test database {}: {error}", self.name);
        }
    }
}

/// Drops a test database, ending the connections still open to it.
async fn drop_database(name: &str) -> Result<(), String> {
    let mut admin =
        AsyncPgConnection::establish(&server().admin_url).await.map_err(|e| e.to_string())?;
    diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Whether the test server has a database of this name.
pub async fn database_exists(name: &str) -> bool {
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        count: i64,
    }
    let mut admin = AsyncPgConnection::establish(&server().admin_url)
        .await
        .expect("connect to the test server");
    let found: Count =
        diesel::sql_query("SELECT count(*) AS count FROM pg_database WHERE datname = $1")
            .bind::<diesel::sql_types::Text, _>(name)
            .get_result(&mut admin)
            .await
            .expect("query pg_database");
    found.count > 0
}

/// The real router on a loopback port, with its own database, bootstrapped like a first start.
pub struct TestApp {
    pub addr: SocketAddr,
    pub db: DbPool,
    pub database_url: String,
    /// The database of this app, dropped with it.
    pub database: TestDatabase,
    /// The server's data directory, removed when the app is dropped.
    pub data_dir: tempfile::TempDir,
    /// The evidence storage the app uses (a folder in the data directory).
    pub storage: casefile::storage::Storage,
    /// The bootstrap admin's token.
    pub admin_token: String,
    pub tenant_id: TenantId,
    pub admin_id: UserId,
    pub http: reqwest::Client,
    /// SQL statements run by every connection of `db` (the app's pool) so far.
    pub statements: Arc<AtomicU64>,
    /// The server's fan-out of the change record.
    pub events: casefile::events::EventHub,
    /// The delivery worker's stop switch and task, when the app runs one
    /// ([`TestApp::with_webhooks`]); dropping the switch stops it too.
    pub delivery: Option<(tokio::sync::watch::Sender<bool>, tokio::task::JoinHandle<()>)>,
}

/// Another server on a [`TestApp`]'s database.
pub struct Replica {
    pub addr: SocketAddr,
    pub events: casefile::events::EventHub,
    _data_dir: tempfile::TempDir,
}

impl Replica {
    pub fn ws_url(&self) -> String {
        format!("ws://{}/graphql/ws", self.addr)
    }
}

impl TestApp {
    pub async fn new() -> Self {
        Self::with_limits(Limits::default()).await
    }

    pub async fn with_limits(limits: Limits) -> Self {
        Self::build(limits, FileLimits::default(), 8, Duration::from_secs(5)).await
    }

    /// The app with these webhook settings, and a delivery worker with the webhook handler
    /// running beside it (as `casefile serve` runs one).
    pub async fn with_webhooks(config: casefile::config::WebhookConfig) -> Self {
        let pool_wait = Duration::from_secs(5);
        let limits = Limits::default();
        let abuse = AbuseLimits::default();
        let mut app =
            Self::build_with(limits, FileLimits::default(), 8, pool_wait, Some(&config), &abuse)
                .await;
        app.start_delivery(config);
        app
    }

    /// Starts a delivery worker with the webhook handler on this app's database (stopping
    /// the one it had).
    pub fn start_delivery(&mut self, config: casefile::config::WebhookConfig) {
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let handlers: Vec<Arc<dyn casefile::delivery::Handler>> =
            vec![casefile::delivery::webhooks::WebhookHandler::new(self.db.clone(), config)];
        let worker = casefile::delivery::Config {
            poll: Duration::from_millis(500),
            ..casefile::delivery::Config::default()
        };
        let task = casefile::delivery::spawn(
            self.db.clone(),
            self.events.wakeups(),
            handlers,
            worker,
            stop_rx,
        )
        .expect("a delivery worker");
        self.delivery = Some((stop, task));
    }

    /// Stops the delivery worker (it finishes what is in flight and gives up its leases).
    pub async fn stop_delivery(&mut self) {
        if let Some((stop, task)) = self.delivery.take() {
            let _ = stop.send(true);
            task.await.expect("the delivery worker ends cleanly");
        }
    }

    /// The app with these rate limits, WebSocket caps, trusted proxies and CORS origins.
    pub async fn with_abuse_limits(abuse: AbuseLimits) -> Self {
        let (limits, files) = (Limits::default(), FileLimits::default());
        Self::build_with(limits, files, 8, Duration::from_secs(5), None, &abuse).await
    }

    /// The app with these limits of the file routes.
    pub async fn with_file_limits(files: FileLimits) -> Self {
        Self::build(Limits::default(), files, 8, Duration::from_secs(5)).await
    }

    /// The app with a pool of `size` connections that waits `wait` for one.
    pub async fn with_pool(size: usize, wait: Duration) -> Self {
        Self::build(Limits::default(), FileLimits::default(), size, wait).await
    }

    async fn build(
        limits: Limits,
        files: FileLimits,
        pool_size: usize,
        pool_wait: Duration,
    ) -> Self {
        Self::build_with(limits, files, pool_size, pool_wait, None, &AbuseLimits::default()).await
    }

    async fn build_with(
        limits: Limits,
        files: FileLimits,
        pool_size: usize,
        pool_wait: Duration,
        webhooks: Option<&casefile::config::WebhookConfig>,
        abuse: &AbuseLimits,
    ) -> Self {
        let database = fresh_database().await;
        let database_url = database.url.clone();
        let statements = Arc::new(AtomicU64::new(0));
        let db = pool::build_counting(
            &database_url,
            pool_size,
            pool_wait,
            Duration::from_secs(30),
            Some(statements.clone()),
        )
        .expect("pool");
        let mut conn = pool::get(&db).await.expect("connection");
        let admin_token =
            casefile::bootstrap::run(&mut conn).await.expect("bootstrap").expect("a first token");
        let (token, admin) =
            tokens::find_by_secret(&mut conn, &admin_token).await.expect("query").expect("token");
        drop(conn);
        let data_dir = tempfile::tempdir().expect("data dir");
        let storage = casefile::storage::Storage::local(&data_dir.path().join("evidence"))
            .expect("evidence storage");
        let state = casefile::AppState::new(
            db.clone(),
            limits,
            files,
            data_dir.path().to_owned(),
            storage.clone(),
        )
        .expect("app state")
        .with_abuse_limits(abuse);
        let state = match webhooks {
            Some(config) => state.with_webhooks(config.clone()),
            None => state,
        };
        state.events.listen(database_url.clone());
        let events = state.events.clone();
        let idle = state.files.idle_timeout();
        let app = casefile::router(state, Duration::from_secs(30));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        // Served as `casefile serve` serves: a client that stops reading is cut.
        let listener = casefile::http::stall::listener(listener, idle);
        tokio::spawn(async move {
            let _ = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .await;
        });
        Self {
            addr,
            db,
            database_url,
            database,
            data_dir,
            storage,
            admin_token,
            tenant_id: token.tenant_id,
            admin_id: admin.id,
            http: reqwest::Client::new(),
            statements,
            events,
            delivery: None,
        }
    }

    /// A second server on this app's database (another replica behind a load balancer):
    /// its own pool, its own `LISTEN` connection, its own port.
    pub async fn replica(&self) -> Replica {
        let db =
            pool::build(&self.database_url, 4, Duration::from_secs(5), Duration::from_secs(30))
                .expect("pool");
        let data_dir = tempfile::tempdir().expect("data dir");
        let storage = casefile::storage::Storage::local(&data_dir.path().join("evidence"))
            .expect("evidence storage");
        let state = casefile::AppState::new(
            db,
            Limits::default(),
            casefile::config::FileLimits::default(),
            data_dir.path().to_owned(),
            storage,
        )
        .expect("app state");
        state.events.listen(self.database_url.clone());
        let events = state.events.clone();
        let app = casefile::router(state, Duration::from_secs(30));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .await;
        });
        Replica { addr, events, _data_dir: data_dir }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/graphql/ws", self.addr)
    }

    /// POSTs one operation as JSON with the token; returns the status and the body.
    pub async fn graphql(&self, token: &str, query: &str, variables: Value) -> (u16, Value) {
        let response = self
            .http
            .post(self.url("/graphql"))
            .bearer_auth(token)
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Runs a query as the admin and returns `data`, failing the test on any error.
    pub async fn query_ok(&self, query: &str) -> Value {
        let (status, body) = self.graphql(&self.admin_token, query, json!({})).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.get("errors").is_none(), "unexpected errors: {body}");
        body["data"].clone()
    }

    /// Runs one operation and returns its body with the number of SQL statements the
    /// server ran for it (nothing else may use this app's pool meanwhile).
    pub async fn graphql_counting(
        &self,
        token: &str,
        query: &str,
        variables: Value,
    ) -> (Value, u64) {
        let before = AtomicU64::load(&self.statements, Ordering::SeqCst);
        let (status, body) = self.graphql(token, query, variables).await;
        assert_eq!(status, 200, "{body}");
        (body, AtomicU64::load(&self.statements, Ordering::SeqCst) - before)
    }

    pub async fn conn(&self) -> casefile::db::DbConn {
        pool::get(&self.db).await.expect("connection")
    }

    /// A new tenant with the given extra licenses.
    pub async fn create_tenant(&self, name: &str, licenses: &[License]) -> TenantId {
        let mut conn = self.conn().await;
        tenants::insert(&mut conn, &NewTenant::new(name, licenses)).await.expect("tenant").id
    }

    /// A user of `tenant` with `role`, and a token for it.
    pub async fn create_user(&self, tenant: TenantId, role: Role) -> (UserId, String) {
        let mut conn = self.conn().await;
        let email = format!(
            "{}-{}@example.test",
            role.as_str().to_lowercase(),
            uuid::Uuid::new_v4().simple()
        );
        let user = users::insert(
            &mut conn,
            &NewUser {
                id: UserId::new(),
                tenant_id: tenant,
                email: &email,
                display_name: "Test user",
                role,
            },
        )
        .await
        .expect("user");
        let (_, token) = tokens::create(&mut conn, &user, "test", None).await.expect("token");
        (user.id, token)
    }

    /// A token of the bootstrap admin with an expiry.
    pub async fn admin_token_expiring(
        &self,
        at: chrono::DateTime<chrono::Utc>,
    ) -> (TokenId, String) {
        let mut conn = self.conn().await;
        let admin = users::find(&mut conn, self.tenant_id, self.admin_id)
            .await
            .expect("query")
            .expect("admin");
        tokens::create(&mut conn, &admin, "expiring", Some(at)).await.expect("token")
    }
}

impl TestApp {
    /// The tenant's change record, oldest first, read straight from the database.
    pub async fn events(&self, tenant: TenantId) -> Vec<casefile::models::events::Event> {
        let mut conn = self.conn().await;
        casefile::models::events::after(&mut conn, tenant, 0, 100_000).await.expect("events")
    }

    /// The events of the tenant after `sequence`, oldest first.
    pub async fn events_after(
        &self,
        tenant: TenantId,
        sequence: i64,
    ) -> Vec<casefile::models::events::Event> {
        let mut conn = self.conn().await;
        casefile::models::events::after(&mut conn, tenant, sequence, 100_000).await.expect("events")
    }
}
