//! The test harness: a real PostgreSQL (one throwaway cluster per test run,
//! one fresh database per test) and real HTTP servers on port 0.

use std::future::Future;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Once;
use std::time::Duration;

use email_sessions::{Application, Lifecycle, Phase, Settings, Stats, run_migrations};
use loadtest::instance::Instance;
use pg_embedded::EmbeddedPostgres;
use reqwest::Response;
use serde_json::Value;
use tokio::sync::OnceCell;
use tokio_postgres::NoTls;

/// The maintenance database of the test cluster: `DATABASE_URL` when set,
/// else a cluster under `target/tmp/`, started once and left running so a
/// second run starts fast (`.ci/run` stops it).
async fn admin_config() -> tokio_postgres::Config {
    static ADMIN: OnceCell<tokio_postgres::Config> = OnceCell::const_new();
    ADMIN
        .get_or_init(|| async {
            if let Ok(url) = std::env::var("DATABASE_URL") {
                return url.parse().expect("DATABASE_URL parses");
            }
            let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("test-postgres");
            let cluster = EmbeddedPostgres::start(&root)
                .await
                .expect("starting the test PostgreSQL cluster");
            cluster.admin_url().parse().expect("embedded URL parses")
        })
        .await
        .clone()
}

fn init_logs() {
    static LOGS: Once = Once::new();
    LOGS.call_once(|| {
        if std::env::var("TEST_LOG").is_ok() {
            email_sessions::init_tracing();
        }
    });
}

/// A fresh database of its own.
pub struct TestDb {
    /// Connection settings for it.
    pub config: tokio_postgres::Config,
}

impl TestDb {
    pub async fn create() -> TestDb {
        TestDb::create_on(&admin_config().await).await
    }

    /// A fresh database with no schema at all.
    pub async fn create_empty() -> TestDb {
        TestDb::create_unmigrated(&admin_config().await).await
    }

    /// A fresh database on the cluster `admin` connects to.
    pub async fn create_on(admin: &tokio_postgres::Config) -> TestDb {
        let db = TestDb::create_unmigrated(admin).await;
        run_migrations(&db.config).await.expect("migrating");
        db
    }

    /// A fresh, empty database on the cluster `admin` connects to (for migration tests).
    pub async fn create_unmigrated(admin: &tokio_postgres::Config) -> TestDb {
        let name = format!("test_{}", hex::encode(rand::random::<[u8; 8]>()));
        let client = connect(admin).await;
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("creating the test database");
        let mut config = admin.clone();
        config.dbname(&name);
        TestDb { config }
    }

    /// Connection settings for child processes (`DATABASE_URL`).
    pub fn url(&self) -> String {
        pg_embedded::conninfo(&self.config)
    }

    /// A plain connection, for checking invariants in the database.
    pub async fn client(&self) -> tokio_postgres::Client {
        connect(&self.config).await
    }

    /// Creates a user and returns its token.
    pub async fn create_user(&self, name: &str) -> String {
        email_sessions::create_user(&Settings::defaults(), &self.config, name)
            .await
            .expect("creating a user")
    }

    /// How many session rows exist for this session ID (all users).
    pub async fn session_rows(&self, session_id: &str) -> i64 {
        let row = self
            .client()
            .await
            .query_one(
                "SELECT count(*) FROM email_sessions WHERE session_id = $1",
                &[&session_id],
            )
            .await
            .unwrap();
        row.get(0)
    }

    /// Holds the row lock of a session (of any user) until the returned client's transaction
    /// ends (`ROLLBACK`, or dropping the client), so writes of it wait deterministically.
    pub async fn lock_session(&self, session_id: &str) -> tokio_postgres::Client {
        let client = self.client().await;
        client.batch_execute("BEGIN").await.unwrap();
        client
            .execute(
                "SELECT 1 FROM email_sessions WHERE session_id = $1 FOR UPDATE",
                &[&session_id],
            )
            .await
            .unwrap();
        client
    }

    /// How many backends of this database wait for a lock right now.
    pub async fn lock_waiters(&self) -> i64 {
        self.client()
            .await
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
                &[],
            )
            .await
            .unwrap()
            .get(0)
    }

    /// The user an API token belongs to.
    pub async fn user_of(&self, token: &str) -> i64 {
        user_of_token(&self.client().await, token).await
    }

    /// The stored (version, subject, recipient emails) of a user's session.
    pub async fn stored(&self, token: &str, session_id: &str) -> Option<StoredSession> {
        let client = self.client().await;
        let user_id = user_of_token(&client, token).await;
        let row = client
            .query_opt(
                "SELECT version, subject, emails FROM email_sessions
                 WHERE user_id = $1 AND session_id = $2",
                &[&user_id, &session_id],
            )
            .await
            .unwrap()?;
        Some(StoredSession {
            version: row.get(0),
            subject: row.get(1),
            recipients: row.get(2),
        })
    }
}

/// A session as the database holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSession {
    pub version: i64,
    pub subject: Option<String>,
    pub recipients: Vec<String>,
}

async fn connect(config: &tokio_postgres::Config) -> tokio_postgres::Client {
    let (client, connection) = config.connect(NoTls).await.expect("connecting");
    tokio::spawn(connection);
    client
}

/// One running service instance.
pub struct TestApp {
    pub address: String,
    pub stats: Stats,
    pub lifecycle: Lifecycle,
    pub http: reqwest::Client,
}

impl TestApp {
    /// An instance on `db` with test settings changed by `tweak`.
    pub async fn spawn_on(db: &TestDb, tweak: impl FnOnce(&mut Settings)) -> TestApp {
        TestApp::spawn_in_phase(db, Phase::Serving, tweak).await
    }

    /// `count` instances on `db` with test settings changed by `tweak`: several registries, so
    /// a session's requests meet in several actors and only the database lines them up.
    pub async fn spawn_several(
        db: &TestDb,
        count: usize,
        tweak: impl Fn(&mut Settings),
    ) -> Vec<TestApp> {
        let mut apps = Vec::with_capacity(count);
        for _ in 0..count {
            apps.push(TestApp::spawn_on(db, &tweak).await);
        }
        apps
    }

    /// An instance on the database `config` names (which may be unreachable).
    pub async fn spawn_on_config(
        config: &tokio_postgres::Config,
        tweak: impl FnOnce(&mut Settings),
    ) -> TestApp {
        TestApp::spawn_with(config, Phase::Serving, tweak).await
    }

    /// Like [`TestApp::spawn_on`], starting in `phase`; `lifecycle` moves it.
    pub async fn spawn_in_phase(
        db: &TestDb,
        phase: Phase,
        tweak: impl FnOnce(&mut Settings),
    ) -> TestApp {
        TestApp::spawn_with(&db.config, phase, tweak).await
    }

    async fn spawn_with(
        config: &tokio_postgres::Config,
        phase: Phase,
        tweak: impl FnOnce(&mut Settings),
    ) -> TestApp {
        init_logs();
        let mut settings = Settings::defaults();
        settings.server.bind = "127.0.0.1:0".parse().unwrap();
        settings.server.workers = 2;
        tweak(&mut settings);
        let application = Application::build(&settings, config, phase).expect("building the app");
        let port = application.port();
        let stats = application.stats();
        let lifecycle = application.lifecycle();
        actix_web::rt::spawn(application.run_until_stopped());
        TestApp {
            address: format!("http://127.0.0.1:{port}"),
            stats,
            lifecycle,
            http: reqwest::Client::new(),
        }
    }

    pub async fn put_form(&self, token: &str, session_id: &str, body: &str) -> Response {
        self.http
            .put(format!("{}/api/email/update/{session_id}", self.address))
            .bearer_auth(token)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body.to_owned())
            .send()
            .await
            .expect("PUT failed")
    }

    pub async fn put_json(&self, token: &str, session_id: &str, body: &Value) -> Response {
        self.http
            .put(format!("{}/api/email/update/{session_id}", self.address))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("PUT failed")
    }

    pub async fn get_session(&self, token: &str, session_id: &str) -> Response {
        self.http
            .get(format!("{}/api/email/sessions/{session_id}", self.address))
            .bearer_auth(token)
            .send()
            .await
            .expect("GET failed")
    }

    /// `GET /api/email/sessions?<query>`.
    pub async fn list_sessions(&self, token: &str, query: &str) -> Response {
        self.http
            .get(format!("{}/api/email/sessions?{query}", self.address))
            .bearer_auth(token)
            .send()
            .await
            .expect("GET failed")
    }

    pub async fn mint(&self, token: &str) -> Response {
        self.http
            .post(format!("{}/api/email/sessions", self.address))
            .bearer_auth(token)
            .send()
            .await
            .expect("POST failed")
    }

    pub async fn get(&self, path: &str) -> Response {
        self.http
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("GET failed")
    }
}

/// `email-sessions serve` as a child process on `db`, with extra settings.
pub async fn start_process(db: &TestDb, settings: &[(&str, &str)]) -> Instance {
    start_process_on(db, settings, "127.0.0.1:0").await
}

/// Like [`start_process`], listening on `bind`.
pub async fn start_process_on(db: &TestDb, settings: &[(&str, &str)], bind: &str) -> Instance {
    let mut environment = vec![(
        "RUST_LOG",
        if std::env::var("TEST_LOG").is_ok() {
            "info"
        } else {
            "warn"
        },
    )];
    environment.extend_from_slice(settings);
    Instance::start_on(
        Path::new(env!("CARGO_BIN_EXE_email-sessions")),
        &db.url(),
        &environment,
        bind,
    )
    .await
    .expect("starting email-sessions serve")
}

/// Waits until `condition` holds, looking every 5 ms; panics naming `what` after 10 s, so a test
/// whose fix is broken goes red instead of hanging.
pub async fn wait_until<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let waited = actix_web::rt::time::timeout(Duration::from_secs(10), async {
        while !condition().await {
            actix_web::rt::time::sleep(Duration::from_millis(5)).await;
        }
    });
    waited
        .await
        .unwrap_or_else(|_| panic!("waited 10 s for {what}"));
}

/// A fresh database, one instance on it, and one user's token.
pub async fn spawn_app() -> (TestApp, TestDb, String) {
    spawn_app_with(|_| {}).await
}

/// Like [`spawn_app`], with settings changed by `tweak`.
pub async fn spawn_app_with(tweak: impl FnOnce(&mut Settings)) -> (TestApp, TestDb, String) {
    let db = TestDb::create().await;
    let app = TestApp::spawn_on(&db, tweak).await;
    let token = db.create_user("alice").await;
    (app, db, token)
}

/// Status and JSON body of a response.
pub async fn status_and_json(response: Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

/// The recipient emails of a session JSON body.
pub fn emails(session: &Value) -> Vec<String> {
    session["recipients"]
        .as_array()
        .expect("recipients array")
        .iter()
        .map(|r| r["email"].as_str().unwrap().to_owned())
        .collect()
}

/// The user API token `token` (`<token id>.<secret>`) belongs to.
async fn user_of_token(client: &tokio_postgres::Client, token: &str) -> i64 {
    let token_id: i64 = token
        .split_once('.')
        .and_then(|(id, _)| id.parse().ok())
        .expect("token is <token id>.<secret>");
    client
        .query_one("SELECT user_id FROM api_tokens WHERE id = $1", &[&token_id])
        .await
        .expect("the token exists")
        .get(0)
}

/// `email-sessions <args>` on `db`.
pub fn cli(db: &TestDb, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_email-sessions"))
        .args(args)
        .env("DATABASE_URL", db.url())
        .env("RUST_LOG", "warn")
        .output()
        .expect("running email-sessions")
}

/// The first cell of a command's tab-separated table's first row (after the header): an ID.
pub fn first_id(table: &str) -> String {
    table
        .lines()
        .nth(1)
        .unwrap_or_default()
        .split('\t')
        .next()
        .unwrap_or_default()
        .to_owned()
}

pub fn stdout_of(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}
