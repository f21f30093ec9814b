//! Identity tokens of a real OpenID Connect issuer on localhost (`oidc_issuer`): accepted beside
//! API tokens, refused with 401 `invalid_token` naming the failed check, keys fetched, rotated,
//! rate-limited and kept while the issuer is down, refreshed in the background, bounded in bytes
//! and keys and read off the HTTP workers, and first contact provisioning one user.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestDb, cli, first_id, status_and_json, stdout_of};
use crate::oidc_issuer::{Oversized, SigningKey, TestIssuer};

/// Keys are always stale and may always be refetched, so every request that needs them asks
/// the issuer.
fn keys_always_stale(settings: &mut email_sessions::Settings) {
    settings.auth.jwks_refetch_interval = Duration::ZERO;
    settings.auth.jwks_max_age = Duration::ZERO;
}

/// An issuer publishing `keys`, a fresh database, and an instance accepting the issuer's tokens
/// with settings changed by `tweak`.
async fn issuer_and_app(
    keys: &[&SigningKey],
    tweak: impl FnOnce(&mut email_sessions::Settings),
) -> (TestIssuer, TestDb, TestApp) {
    let issuer = TestIssuer::start(keys).await;
    let db = TestDb::create().await;
    let app = TestApp::spawn_on(&db, |settings| {
        issuer.configure(settings);
        tweak(settings);
    })
    .await;
    (issuer, db, app)
}

/// The first column of `sql`'s rows, given its one parameter.
async fn ids(db: &TestDb, sql: &str, parameter: &str) -> Vec<i64> {
    db.client()
        .await
        .query(sql, &[&parameter])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

async fn identity_users(db: &TestDb, subject: &str) -> Vec<i64> {
    ids(
        db,
        "SELECT user_id FROM identities WHERE subject = $1",
        subject,
    )
    .await
}

/// The owners of the sessions whose IDs are `LIKE pattern`, in the order they were created.
async fn session_owners(db: &TestDb, pattern: &str) -> Vec<i64> {
    let sql = "SELECT user_id FROM email_sessions WHERE session_id LIKE $1 ORDER BY id";
    ids(db, sql, pattern).await
}

#[actix_web::test]
async fn identity_tokens_work_beside_api_tokens_and_each_person_sees_only_their_sessions() {
    // Arrange
    let rsa = SigningKey::rsa(0, "rsa-1");
    let ec = SigningKey::p256("ec-1");
    let (issuer, db, app) = issuer_and_app(&[&rsa, &ec], |_| {}).await;
    let api_token = db.create_user("alice").await;
    let ada = rsa.sign(&issuer.claims("ada"));
    let ada_again = ec.sign(&issuer.claims("ada"));
    let bob = rsa.sign(&issuer.claims("bob"));

    // Act
    let minted = app.mint(&ada).await.status().as_u16();
    let written = app
        .put_form(&ada, "s1", "to=a@x.com&subject=hi")
        .await
        .status()
        .as_u16();
    let read_by_other_key = app.get_session(&ada_again, "s1").await.status().as_u16();
    let read_by_bob = app.get_session(&bob, "s1").await.status().as_u16();
    let read_by_api_token = app.get_session(&api_token, "s1").await.status().as_u16();
    let user_list = stdout_of(&cli(&db, &["user", "list", "--subject", "ada"]));
    let ada_user_id = first_id(&user_list);
    let ada_api_token = stdout_of(&cli(&db, &["token", "create", "--user-id", &ada_user_id]));
    let read_by_ada_api_token = app
        .get_session(ada_api_token.trim(), "s1")
        .await
        .status()
        .as_u16();
    let api_token_writes = app
        .put_form(&api_token, "s1", "to=b@x.com")
        .await
        .status()
        .as_u16();

    // Assert
    assert_eq!((minted, written), (201, 201));
    assert_eq!(read_by_other_key, 200, "an ES256 token of the same person");
    assert_eq!((read_by_bob, read_by_api_token), (404, 404));
    assert_eq!(api_token_writes, 201, "the API token's user has its own s1");
    let ada_users = identity_users(&db, "ada").await;
    assert_eq!(ada_users.len(), 1);
    assert_eq!(
        user_list.lines().count(),
        2,
        "a header and ada:\n{user_list}"
    );
    assert!(
        user_list.contains(&format!("\t{} ada", issuer.issuer)),
        "{user_list}"
    );
    assert_eq!(ada_user_id, ada_users[0].to_string());
    assert_eq!(
        read_by_ada_api_token, 200,
        "an API token of an identity user is that user"
    );
    let owners = session_owners(&db, "s1").await;
    assert_eq!(owners, vec![ada_users[0], db.user_of(&api_token).await]);
}

/// `claims` with `changes` merged in (a `null` removes the claim).
fn with(mut claims: Value, changes: Value) -> Value {
    for (name, value) in changes.as_object().unwrap() {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(name);
        } else {
            claims[name] = value.clone();
        }
    }
    claims
}

fn encode_part(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

#[actix_web::test]
async fn every_bad_identity_token_is_401_naming_the_check_and_provisions_nobody() {
    // Arrange
    let key = SigningKey::rsa(0, "rsa-1");
    let (issuer, db, app) = issuer_and_app(&[&key], |_| {}).await;
    let now = jsonwebtoken::get_current_timestamp();
    let claims = issuer.claims("mallory");
    let valid = key.sign(&claims);
    let mut parts: Vec<String> = valid.split('.').map(str::to_owned).collect();
    parts[1] = encode_part(&with(claims.clone(), json!({"sub": "ada"})));
    let tampered = parts.join(".");
    let unsigned = format!(
        "{}.{}.",
        encode_part(&json!({"alg": "none", "kid": "rsa-1"})),
        encode_part(&claims)
    );
    let impostor = SigningKey::rsa(2, "rsa-1");
    let cases = [
        (
            "expired",
            key.sign(&with(claims.clone(), json!({"exp": now - 120}))),
            "expired",
        ),
        (
            "not yet valid",
            key.sign(&with(claims.clone(), json!({"nbf": now + 120}))),
            "not valid yet",
        ),
        (
            "wrong audience",
            key.sign(&with(claims.clone(), json!({"aud": "api://other"}))),
            "(aud)",
        ),
        (
            "wrong issuer",
            key.sign(&with(
                claims.clone(),
                json!({"iss": "https://evil.example"}),
            )),
            "(iss)",
        ),
        (
            "no subject",
            key.sign(&with(claims.clone(), json!({"sub": null}))),
            "sub",
        ),
        (
            "no expiry",
            key.sign(&with(claims.clone(), json!({"exp": null}))),
            "exp",
        ),
        ("tampered payload", tampered, "signature"),
        ("alg: none", unsigned, "algorithm"),
        (
            "HS256 keyed with the public key",
            key.sign_hs256_with_public_key(&claims),
            "algorithm",
        ),
        (
            "unknown kid",
            SigningKey::rsa(0, "rsa-unknown").sign(&claims),
            "does not publish",
        ),
        ("right kid, other key", impostor.sign(&claims), "signature"),
    ];

    // Act
    let mut answers = Vec::new();
    for (label, token, _) in &cases {
        let response = app.mint(token).await;
        let challenge = response
            .headers()
            .get("www-authenticate")
            .map(|value| value.to_str().unwrap().to_owned());
        let (status, body) = status_and_json(response).await;
        answers.push((*label, status, body, challenge));
    }
    let within_leeway = app
        .mint(&key.sign(&with(
            claims.clone(),
            json!({"exp": now - 30, "sub": "late"}),
        )))
        .await
        .status()
        .as_u16();

    // Assert
    for ((label, status, body, challenge), (_, _, expected)) in answers.iter().zip(&cases) {
        assert_eq!(*status, 401, "{label}: {body}");
        assert_eq!(body["error"]["code"], "invalid_token", "{label}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(expected),
            "{label}: {message:?} should say {expected:?}"
        );
        assert!(
            !message.contains("BEGIN") && !message.contains("rsa-1"),
            "{label}: {message}"
        );
        assert_eq!(
            challenge.as_deref(),
            Some("Bearer error=\"invalid_token\""),
            "{label}"
        );
    }
    assert_eq!(identity_users(&db, "ada").await, Vec::<i64>::new());
    assert_eq!(identity_users(&db, "mallory").await, Vec::<i64>::new());
    assert_eq!(
        within_leeway, 201,
        "30 s past exp is inside the 60 s leeway"
    );
}

#[actix_web::test]
async fn a_key_added_by_rotation_is_fetched_when_a_token_names_it() {
    // Arrange
    let old = SigningKey::rsa(0, "2026-11");
    let new = SigningKey::rsa(1, "2026-12");
    let (issuer, _db, app) = issuer_and_app(&[&old], |settings| {
        settings.auth.jwks_refetch_interval = Duration::ZERO;
    })
    .await;
    assert_eq!(
        app.mint(&old.sign(&issuer.claims("ada"))).await.status(),
        201
    );

    // Act
    issuer.publish(&new);
    let with_new_key = app
        .mint(&new.sign(&issuer.claims("ada")))
        .await
        .status()
        .as_u16();
    let with_old_key = app
        .mint(&old.sign(&issuer.claims("bob")))
        .await
        .status()
        .as_u16();

    // Assert
    assert_eq!((with_new_key, with_old_key), (201, 201));
    assert_eq!(
        issuer.jwks_fetches(),
        2,
        "once at first use, once for the new kid"
    );
}

#[actix_web::test]
async fn a_flood_of_made_up_key_ids_fetches_the_keys_at_most_once_per_interval() {
    // Arrange
    let key = SigningKey::rsa(0, "real");
    let (issuer, _db, app) = issuer_and_app(&[&key], |settings| {
        settings.auth.jwks_refetch_interval = Duration::from_secs(60);
    })
    .await;
    assert_eq!(
        app.mint(&key.sign(&issuer.claims("ada"))).await.status(),
        201
    );

    // Act
    let flood = (0..50).map(|n| {
        let token = SigningKey::rsa(0, &format!("made-up-{n}")).sign(&issuer.claims("ada"));
        let app = &app;
        async move { app.mint(&token).await.status().as_u16() }
    });
    let statuses = join_all(flood).await;

    // Assert
    assert!(statuses.iter().all(|&status| status == 401), "{statuses:?}");
    assert!(
        issuer.jwks_fetches() <= 2,
        "{} JWKS fetches for 50 made-up kids",
        issuer.jwks_fetches()
    );
}

#[actix_web::test]
async fn cached_keys_keep_working_while_the_issuer_is_down_and_unknown_ones_get_503() {
    // Arrange: keys are always stale and may always be refetched, so every request below
    // tries the issuer and finds it gone.
    let key = SigningKey::rsa(0, "cached");
    let issuer = TestIssuer::start(&[&key]).await;
    let never_fetched = TestIssuer::start(&[&key]).await;
    let db = TestDb::create().await;
    let app = TestApp::spawn_on(&db, |settings| {
        issuer.configure(settings);
        never_fetched.configure(settings);
        keys_always_stale(settings);
    })
    .await;
    assert_eq!(
        app.mint(&key.sign(&issuer.claims("ada"))).await.status(),
        201
    );

    // Act
    issuer.stop().await;
    never_fetched.stop().await;
    let cached_key = app
        .mint(&key.sign(&issuer.claims("bob")))
        .await
        .status()
        .as_u16();
    let unknown_kid = app
        .mint(&SigningKey::rsa(1, "new").sign(&issuer.claims("bob")))
        .await;
    let retry_after = unknown_kid.headers().get("retry-after").cloned();
    let (unknown_status, unknown_body) = status_and_json(unknown_kid).await;
    let (cold_status, _) =
        status_and_json(app.mint(&key.sign(&never_fetched.claims("ada"))).await).await;

    // Assert
    assert_eq!(
        cached_key, 201,
        "a cached key stays in use while its issuer is down"
    );
    assert_eq!(unknown_status, 503, "{unknown_body}");
    assert_eq!(
        unknown_body["error"]["code"],
        "identity_provider_unavailable"
    );
    assert!(retry_after.is_some());
    assert_eq!(
        cold_status, 503,
        "no keys were ever fetched from this issuer"
    );
}

#[actix_web::test]
async fn an_unreachable_issuer_is_no_failure_of_the_caller() {
    // Arrange: the issuer goes away after one fetch of its keys.
    let key = SigningKey::rsa(0, "cached");
    let (issuer, _db, app) = issuer_and_app(&[&key], keys_always_stale).await;
    assert_eq!(
        app.mint(&key.sign(&issuer.claims("ada"))).await.status(),
        201
    );
    issuer.stop().await;

    // Act: tokens naming a key the issuer would have to be asked for, then a valid one.
    let mut unreachable = Vec::new();
    for _ in 0..5 {
        let token = SigningKey::rsa(1, "new").sign(&issuer.claims("bob"));
        unreachable.push(app.mint(&token).await.status().as_u16());
    }
    let valid = app.mint(&key.sign(&issuer.claims("carol"))).await;

    // Assert: not counted as failed authentications (nor logged as the caller's).
    assert_eq!(unreachable, [503; 5]);
    assert_eq!(app.stats.snapshot().auth_failures, 0);
    assert_eq!(
        valid.status(),
        201,
        "an outage of the issuer is no failure of the caller's"
    );
}

#[actix_web::test]
async fn forty_first_requests_of_one_new_identity_over_two_instances_make_one_user() {
    // Arrange
    let key = SigningKey::rsa(0, "k");
    let issuer = TestIssuer::start(&[&key]).await;
    let db = TestDb::create().await;
    let instances = [
        TestApp::spawn_on(&db, |settings| issuer.configure(settings)).await,
        TestApp::spawn_on(&db, |settings| issuer.configure(settings)).await,
    ];
    // Each instance fetches the keys once beforehand, so the forty meet in provisioning.
    for app in &instances {
        let warm = key.sign(&issuer.claims("someone-else"));
        assert_eq!(app.mint(&warm).await.status(), 201);
    }
    let newcomer = key.sign(&issuer.claims("newcomer"));

    // Act
    let requests = (0..40).map(|n| {
        let app = &instances[n % 2];
        let token = &newcomer;
        async move {
            let response = app
                .put_form(token, &format!("first-{n}"), &format!("to=r{n}@x.com"))
                .await;
            status_and_json(response).await
        }
    });
    let answers = join_all(requests).await;

    // Assert
    for (status, body) in &answers {
        assert_eq!(*status, 201, "{body}");
    }
    let users = identity_users(&db, "newcomer").await;
    assert_eq!(users.len(), 1, "one identity row");
    let owners = session_owners(&db, "first-%").await;
    assert_eq!(
        owners,
        vec![users[0]; 40],
        "every session belongs to the one user"
    );
    let unnamed: i64 = db
        .client()
        .await
        .query_one("SELECT count(*) FROM users WHERE name IS NULL", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(unnamed, 2, "newcomer and someone-else, and no orphan users");
}

#[actix_web::test]
async fn a_remembered_identity_token_is_refused_once_it_expires() {
    // Arrange: no leeway, and a token cache that would remember the token far longer.
    let key = SigningKey::rsa(0, "k");
    let (issuer, _db, app) = issuer_and_app(&[&key], |settings| {
        settings.auth.jwt_leeway = Duration::ZERO;
        settings.auth.token_cache_ttl = Duration::from_secs(600);
    })
    .await;
    let expires_at = jsonwebtoken::get_current_timestamp() + 2;
    let token = key.sign(&with(issuer.claims("ada"), json!({"exp": expires_at})));
    assert_eq!(app.mint(&token).await.status(), 201);

    // Act
    while jsonwebtoken::get_current_timestamp() <= expires_at {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body) = status_and_json(app.mint(&token).await).await;

    // Assert
    assert_eq!(status, 401, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
}

#[actix_web::test]
async fn requests_with_a_cached_key_do_not_queue_behind_a_hanging_key_fetch() {
    // Arrange: keys always stale and always refetchable, and an issuer that stops answering.
    let key = SigningKey::rsa(0, "k");
    let timeout = Duration::from_millis(2000);
    let (issuer, _db, app) = issuer_and_app(&[&key], |settings| {
        keys_always_stale(settings);
        settings.auth.jwks_fetch_timeout = timeout;
    })
    .await;
    assert_eq!(
        app.mint(&key.sign(&issuer.claims("warm"))).await.status(),
        201
    );
    issuer.hang();

    // Act: ten people at once, each with a token the instance has not seen.
    let started = std::time::Instant::now();
    let requests = (0..10).map(|n| {
        let token = key.sign(&issuer.claims(&format!("person-{n}")));
        let app = &app;
        async move { app.mint(&token).await.status().as_u16() }
    });
    let statuses = join_all(requests).await;
    let took = started.elapsed();

    // Assert: at most one of them waited for the fetch; queued one behind another, each
    // retrying it, they would have taken ten fetch timeouts.
    assert_eq!(statuses, vec![201; 10]);
    assert!(took < timeout * 3, "ten requests took {took:?}");
}

#[actix_web::test]
async fn an_issuer_alias_names_the_same_people_and_a_required_scope_refuses_id_tokens() {
    // Arrange
    let key = SigningKey::rsa(0, "k");
    let (issuer, db, app) = issuer_and_app(&[&key], |settings| {
        let oidc = &mut settings.auth.oidc[0];
        oidc.issuer_aliases = vec!["issuer.alias.example".to_owned()];
        oidc.required_scope = Some("access_as_user".to_owned());
    })
    .await;
    let access = |claims: Value| with(claims, json!({"scp": "openid access_as_user"}));
    let canonical = key.sign(&access(issuer.claims("ada")));
    let aliased = key.sign(&access(with(
        issuer.claims("ada"),
        json!({"iss": "issuer.alias.example"}),
    )));
    let id_token = key.sign(&issuer.claims("ada"));
    let other_scope = key.sign(&with(
        issuer.claims("ada"),
        json!({"scp": "access_as_admin"}),
    ));

    // Act
    let written = app
        .put_form(&canonical, "s1", "to=a@x.com")
        .await
        .status()
        .as_u16();
    let read_via_alias = app.get_session(&aliased, "s1").await.status().as_u16();
    let (id_status, id_body) = status_and_json(app.mint(&id_token).await).await;
    let other_status = app.mint(&other_scope).await.status().as_u16();

    // Assert
    assert_eq!((written, read_via_alias), (201, 200));
    let issuers = db
        .client()
        .await
        .query("SELECT issuer FROM identities WHERE subject = 'ada'", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get::<_, String>(0))
        .collect::<Vec<_>>();
    assert_eq!(
        issuers,
        vec![issuer.issuer.clone()],
        "provisioned under the configured issuer"
    );
    assert_eq!((id_status, other_status), (401, 401));
    assert!(
        id_body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("scope"),
        "{id_body}"
    );
}

#[actix_web::test]
async fn a_subject_longer_than_an_identity_may_be_is_401_naming_it() {
    // Arrange
    let key = SigningKey::rsa(0, "k");
    let (issuer, db, app) = issuer_and_app(&[&key], |_| {}).await;
    let long = "x".repeat(1001);
    let token = key.sign(&issuer.claims(&long));

    // Act
    let (status, body) = status_and_json(app.mint(&token).await).await;

    // Assert
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "invalid_token");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("(sub)"),
        "{body}"
    );
    assert!(identity_users(&db, &long).await.is_empty());
}

/// The tests that measure this process's memory (the instance under test runs in it) take this,
/// so the big key set of one never counts against the bound of another.
static MEMORY_MEASURED: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// This process's resident memory in KiB (`VmRSS`).
fn resident_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

/// The highest [`resident_kib`] seen, sampled every few milliseconds on a thread of its own
/// until [`PeakMemory::stop`].
struct PeakMemory {
    stop: Arc<AtomicBool>,
    sampler: std::thread::JoinHandle<u64>,
}

impl PeakMemory {
    fn start() -> PeakMemory {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let sampler = std::thread::spawn(move || {
            let mut peak = resident_kib();
            while !stopped.load(Ordering::SeqCst) {
                peak = peak.max(resident_kib());
                std::thread::sleep(Duration::from_millis(2));
            }
            peak.max(resident_kib())
        });
        PeakMemory { stop, sampler }
    }

    fn stop(self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        self.sampler.join().unwrap()
    }
}

/// `request`'s answer, and how long each `/healthz` asked every 20 ms meanwhile took to answer
/// (with its status).
async fn with_healthz_meanwhile(
    app: &TestApp,
    request: impl std::future::Future<Output = reqwest::Response>,
) -> (reqwest::Response, Vec<(u16, Duration)>) {
    let done = AtomicBool::new(false);
    let request = async {
        let response = request.await;
        done.store(true, Ordering::SeqCst);
        response
    };
    let probes = async {
        let mut answers = Vec::new();
        while !done.load(Ordering::SeqCst) {
            let started = Instant::now();
            let status = app.get("/healthz").await.status().as_u16();
            answers.push((status, started.elapsed()));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        answers
    };
    futures_util::future::join(request, probes).await
}

/// The process's `jwks_fetches_total{outcome="failed"}` (every instance in it counts there).
async fn failed_jwks_fetches(app: &TestApp) -> f64 {
    let text = app.get("/metrics").await.text().await.unwrap();
    text.lines()
        .filter(|line| line.starts_with("email_sessions_jwks_fetches_total{outcome=\"failed\"}"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// An issuer publishing `key` and one instance with one HTTP worker (so /healthz waits if a
/// fetch holds it), keys refetched whenever asked, a fetch timeout long enough that only a bound
/// stops a read, and `key` fetched once already; settings changed further by `tweak`.
async fn one_worker_with_keys_cached(
    key: &SigningKey,
    tweak: impl FnOnce(&mut email_sessions::Settings),
) -> (TestIssuer, TestApp) {
    let (issuer, _db, app) = issuer_and_app(&[key], |settings| {
        settings.server.workers = 1;
        settings.auth.jwks_refetch_interval = Duration::ZERO;
        settings.auth.jwks_fetch_timeout = Duration::from_secs(60);
        tweak(settings);
    })
    .await;
    assert_eq!(
        app.mint(&key.sign(&issuer.claims("warm"))).await.status(),
        201
    );
    (issuer, app)
}

#[actix_web::test]
async fn a_100_mb_jwks_costs_little_memory_stalls_nothing_and_the_cached_keys_stay_in_use() {
    // Arrange: one HTTP worker, so /healthz waits if the fetch holds it; a fetch timeout long
    // enough that only the byte bound can stop the read.
    let _alone = MEMORY_MEASURED.lock().await;
    let key = SigningKey::rsa(0, "cached");
    let (issuer, app) = one_worker_with_keys_cached(&key, |_| {}).await;
    issuer.serve_oversized(Oversized::Streamed(100_000_000));
    let failed_before = failed_jwks_fetches(&app).await;
    let before = resident_kib();
    let memory = PeakMemory::start();

    // Act: a key ID the instance lacks, so the request waits for the fetch of the 100 MB.
    let unknown_kid = SigningKey::rsa(1, "rotated").sign(&issuer.claims("ada"));
    let (fetching, healthz) = with_healthz_meanwhile(&app, app.mint(&unknown_kid)).await;
    let peak = memory.stop();
    let (unknown_status, unknown_body) = status_and_json(fetching).await;
    let cached_key = app.mint(&key.sign(&issuer.claims("bob"))).await.status();

    // Assert
    let grown_mib = peak.saturating_sub(before) / 1024;
    assert!(
        grown_mib < 30,
        "resident memory grew by {grown_mib} MiB while reading a 100 MB JWKS"
    );
    assert_eq!(
        (unknown_status, unknown_body["error"]["code"].as_str()),
        (503, Some("identity_provider_unavailable")),
        "a JWKS past the bound is a failed fetch: {unknown_body}"
    );
    assert_eq!(cached_key, 201, "the cached keys stay in use");
    assert_eq!(issuer.jwks_fetches(), 2);
    assert!(failed_jwks_fetches(&app).await > failed_before);
    let slowest = healthz
        .iter()
        .map(|(_, took)| *took)
        .max()
        .unwrap_or_default();
    assert!(
        healthz.iter().all(|(status, _)| *status == 200) && slowest < Duration::from_secs(2),
        "/healthz during the fetch: {healthz:?}"
    );
}

#[actix_web::test]
async fn a_jwks_declaring_more_than_the_byte_bound_is_refused_before_its_body() {
    // Arrange: an issuer that declares 100 MB and sends none of it.
    let key = SigningKey::rsa(0, "cached");
    let timeout = Duration::from_secs(5);
    let (issuer, _db, app) = issuer_and_app(&[&key], |settings| {
        settings.auth.jwks_refetch_interval = Duration::ZERO;
        settings.auth.jwks_fetch_timeout = timeout;
    })
    .await;
    assert_eq!(
        app.mint(&key.sign(&issuer.claims("warm"))).await.status(),
        201
    );
    issuer.serve_oversized(Oversized::Declared(100_000_000));

    // Act
    let started = Instant::now();
    let unknown_kid = app
        .mint(&SigningKey::rsa(1, "rotated").sign(&issuer.claims("ada")))
        .await
        .status()
        .as_u16();
    let took = started.elapsed();
    let cached_key = app
        .mint(&key.sign(&issuer.claims("bob")))
        .await
        .status()
        .as_u16();

    // Assert: refused on its Content-Length, not after waiting out the fetch timeout for a
    // body that never comes.
    assert_eq!((unknown_kid, cached_key), (503, 201));
    assert!(took < Duration::from_secs(2), "refused after {took:?}");
    assert_eq!(issuer.jwks_fetches(), 2);
}

#[actix_web::test]
async fn a_jwks_of_more_keys_than_the_bound_is_refused_and_the_cached_keys_stay_in_use() {
    // Arrange: at most three keys; the issuer rotates in a fourth.
    let old = SigningKey::rsa(0, "old");
    let new = SigningKey::rsa(1, "new");
    let (issuer, _db, app) = issuer_and_app(&[&old], |settings| {
        settings.auth.jwks_refetch_interval = Duration::ZERO;
        settings.auth.jwks_max_keys = 3;
    })
    .await;
    assert_eq!(
        app.mint(&old.sign(&issuer.claims("warm"))).await.status(),
        201
    );
    issuer.publish(&SigningKey::rsa(2, "spare-1"));
    issuer.publish(&SigningKey::rsa(2, "spare-2"));
    issuer.publish(&new);

    // Act
    let (new_status, new_body) =
        status_and_json(app.mint(&new.sign(&issuer.claims("ada"))).await).await;
    let old_status = app.mint(&old.sign(&issuer.claims("bob"))).await.status();

    // Assert
    assert_eq!(
        (new_status, new_body["error"]["code"].as_str()),
        (503, Some("identity_provider_unavailable")),
        "a set of four keys is a failed fetch: {new_body}"
    );
    assert_eq!(old_status, 201, "the cached keys stay in use");
    assert_eq!(issuer.jwks_fetches(), 2);
}

#[actix_web::test]
async fn a_big_key_set_within_the_bounds_is_read_off_the_http_worker() {
    // Arrange: one HTTP worker, bounds far above a set of many usable keys.
    let _alone = MEMORY_MEASURED.lock().await;
    let key = SigningKey::rsa(0, "k");
    let (issuer, app) = one_worker_with_keys_cached(&key, |settings| {
        settings.auth.jwks_max_bytes = 1 << 30;
        settings.auth.jwks_max_keys = 1_000_000;
    })
    .await;
    const KEYS: usize = 50_000;
    issuer.publish_copies(&key, "big", KEYS);

    // Act: a key ID only the big set has, so the request waits while the set is read.
    let token = SigningKey::rsa(0, &format!("big-{}", KEYS - 1)).sign(&issuer.claims("ada"));
    let started = Instant::now();
    let (fetching, healthz) = with_healthz_meanwhile(&app, app.mint(&token)).await;
    let took = started.elapsed();

    // Assert: /healthz kept answering while the set was read. Read on the worker, one probe
    // waits for the whole reading, a third or more of the request (1.3 s of 4.4 s, measured),
    // where off it the slowest takes milliseconds.
    assert_eq!(fetching.status(), 201);
    let slowest = healthz
        .iter()
        .map(|(_, took)| *took)
        .max()
        .unwrap_or_default();
    assert!(
        slowest * 10 < took,
        "the fetch took {took:?}, and a /healthz meanwhile {slowest:?}: {healthz:?}"
    );
}

#[actix_web::test]
async fn the_first_request_after_the_keys_go_stale_uses_them_while_a_hanging_refresh_runs() {
    // Arrange: keys stale at once and refetchable at once, and an issuer that stops answering.
    let key = SigningKey::rsa(0, "k");
    let (issuer, _db, app) = issuer_and_app(&[&key], |settings| {
        keys_always_stale(settings);
        settings.auth.jwks_fetch_timeout = Duration::from_secs(5);
    })
    .await;
    assert_eq!(
        app.mint(&key.sign(&issuer.claims("warm"))).await.status(),
        201
    );
    issuer.hang();

    // Act: the first request that finds the keys stale, then ten more while the refresh hangs.
    let started = Instant::now();
    let first = app.mint(&key.sign(&issuer.claims("first"))).await.status();
    let took = started.elapsed();
    let refresh_started = async {
        while issuer.jwks_fetches() < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let refreshed = tokio::time::timeout(Duration::from_secs(2), refresh_started).await;
    let requests = (0..10).map(|n| {
        let token = key.sign(&issuer.claims(&format!("person-{n}")));
        let app = &app;
        async move { app.mint(&token).await.status().as_u16() }
    });
    let more = join_all(requests).await;

    // Assert
    assert_eq!(first, 201);
    assert!(
        took < Duration::from_secs(2),
        "the first request after staleness took {took:?}"
    );
    assert!(refreshed.is_ok(), "the stale keys were never refreshed");
    assert_eq!(more, vec![201; 10]);
    assert_eq!(
        issuer.jwks_fetches(),
        2,
        "one refresh at a time: the hanging one"
    );
}
