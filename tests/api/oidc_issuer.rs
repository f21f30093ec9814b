//! A real OpenID Connect issuer on localhost for the tests: its own RSA and P-256 keys, a
//! discovery document and a JWKS over HTTP, and tokens signed with those keys. Keys can be
//! published (rotation), the issuer can go down or hang, and its JWKS can grow past any bound
//! (made up as it is sent, so the test holds none of it).

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use actix_web::dev::ServerHandle;
use actix_web::web::Bytes;
use actix_web::{App, HttpResponse, HttpServer, web};
use futures_util::stream;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use email_sessions::{OidcIssuerSettings, Settings};

/// The audience the test issuer's tokens are for, and the service is configured with.
pub const AUDIENCE: &str = "api://email-sessions-test";

/// A private key the issuer can sign with, under a key ID.
#[derive(Clone)]
pub struct SigningKey {
    pub kid: String,
    pub algorithm: Algorithm,
    encoding: EncodingKey,
    /// The public half as the JWKS shows it.
    jwk: Value,
    /// The RSA public key in PEM: what an attacker would try as an HMAC secret.
    public_pem: Option<String>,
}

struct RsaMaterial {
    pkcs1_der: Vec<u8>,
    public_pem: String,
}

/// RSA keys cost seconds to generate: three, once per test binary, shared by every test.
fn rsa_material(index: usize) -> &'static RsaMaterial {
    static KEYS: OnceLock<Vec<RsaMaterial>> = OnceLock::new();
    &KEYS.get_or_init(|| {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        use rsa::pkcs8::{EncodePublicKey, LineEnding};
        (0..3)
            .map(|_| {
                let key = rsa::PrivateKey::new(&mut rand::rng(), 2048).expect("RSA key");
                RsaMaterial {
                    pkcs1_der: key.to_pkcs1_der().expect("PKCS#1").as_bytes().to_vec(),
                    public_pem: key
                        .to_public_key()
                        .to_public_key_pem(LineEnding::LF)
                        .expect("PEM"),
                }
            })
            .collect()
    })[index]
}

impl SigningKey {
    /// RSA key number `index` (0, 1 or 2) under `kid`, for RS256.
    pub fn rsa(index: usize, kid: &str) -> SigningKey {
        let material = rsa_material(index);
        let encoding = EncodingKey::from_rsa_der(&material.pkcs1_der);
        SigningKey::with(
            encoding,
            Algorithm::RS256,
            kid,
            Some(material.public_pem.clone()),
        )
    }

    /// A fresh P-256 key under `kid`, for ES256.
    pub fn p256(kid: &str) -> SigningKey {
        use p256::elliptic_curve::Generate;
        use p256::pkcs8::EncodePrivateKey;
        let key = p256::SecretKey::generate_from_rng(&mut rand::rng());
        let der = key.to_pkcs8_der().expect("PKCS#8");
        let encoding = EncodingKey::from_ec_der(der.as_bytes());
        SigningKey::with(encoding, Algorithm::ES256, kid, None)
    }

    fn with(
        encoding: EncodingKey,
        algorithm: Algorithm,
        kid: &str,
        public_pem: Option<String>,
    ) -> SigningKey {
        let mut jwk = Jwk::from_encoding_key(&encoding, algorithm).expect("public JWK");
        jwk.common.key_id = Some(kid.to_owned());
        SigningKey {
            kid: kid.to_owned(),
            algorithm,
            encoding,
            jwk: serde_json::to_value(jwk).expect("JWK as JSON"),
            public_pem,
        }
    }

    /// `claims` signed with this key, its `kid` in the header.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.algorithm);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("signing")
    }

    /// `claims` signed with HS256, using this key's public PEM as the HMAC secret (the classic
    /// algorithm-confusion attack).
    pub fn sign_hs256_with_public_key(&self, claims: &Value) -> String {
        let secret = self.public_pem.as_ref().expect("an RSA key");
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.kid.clone());
        let key = EncodingKey::from_secret(secret.as_bytes()).expect("HMAC key");
        jsonwebtoken::encode(&header, claims, &key).expect("signing")
    }
}

struct Published {
    issuer: String,
    keys: Mutex<Vec<Value>>,
    jwks_fetches: AtomicUsize,
    /// Accept JWKS requests and never answer them (an issuer dropping packets).
    hanging: AtomicBool,
    oversized: Mutex<Option<Oversized>>,
}

/// A JWKS answer larger than any bound.
#[derive(Clone, Copy)]
pub enum Oversized {
    /// About this many bytes of a valid set, chunked without a `Content-Length`: junk keys made
    /// up chunk by chunk as the client reads, then the published keys.
    Streamed(usize),
    /// A `Content-Length` of this many bytes, and a body that never comes.
    Declared(u64),
}

/// The issuer, serving until [`TestIssuer::stop`] or the end of the test.
pub struct TestIssuer {
    /// Its `iss`, `http://127.0.0.1:<port>`.
    pub issuer: String,
    published: Arc<Published>,
    server: ServerHandle,
}

impl TestIssuer {
    /// An issuer publishing `keys`.
    pub async fn start(keys: &[&SigningKey]) -> TestIssuer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the issuer");
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let published = Arc::new(Published {
            issuer: issuer.clone(),
            keys: Mutex::new(keys.iter().map(|key| key.jwk.clone()).collect()),
            jwks_fetches: AtomicUsize::new(0),
            hanging: AtomicBool::new(false),
            oversized: Mutex::new(None),
        });
        let state = web::Data::from(published.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .route(
                    "/.well-known/openid-configuration",
                    web::get().to(discovery),
                )
                .route("/keys", web::get().to(jwks))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .expect("listening")
        .run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        TestIssuer {
            issuer,
            published,
            server: handle,
        }
    }

    /// Adds `key` to the JWKS (a rotation).
    pub fn publish(&self, key: &SigningKey) {
        self.published.keys.lock().unwrap().push(key.jwk.clone());
    }

    /// Adds `count` copies of `key`'s public half under the key IDs `<prefix>-0`, `<prefix>-1`...
    /// (a big set of usable keys, cheaply).
    pub fn publish_copies(&self, key: &SigningKey, prefix: &str, count: usize) {
        let mut keys = self.published.keys.lock().unwrap();
        for n in 0..count {
            let mut jwk = key.jwk.clone();
            jwk["kid"] = format!("{prefix}-{n}").into();
            keys.push(jwk);
        }
    }

    /// From now on, the JWKS is answered with `answer`.
    pub fn serve_oversized(&self, answer: Oversized) {
        *self.published.oversized.lock().unwrap() = Some(answer);
    }

    /// From now on, JWKS requests are taken and never answered.
    pub fn hang(&self) {
        self.published.hanging.store(true, Ordering::SeqCst);
    }

    /// How often the JWKS was fetched.
    pub fn jwks_fetches(&self) -> usize {
        self.published.jwks_fetches.load(Ordering::SeqCst)
    }

    /// Stops answering: connections are refused from now on.
    pub async fn stop(&self) {
        self.server.stop(false).await;
    }

    /// Valid claims for `subject`: this issuer, the service's audience, valid for 10 minutes.
    pub fn claims(&self, subject: &str) -> Value {
        let now = jsonwebtoken::get_current_timestamp();
        json!({
            "iss": self.issuer,
            "aud": AUDIENCE,
            "sub": subject,
            "iat": now,
            "nbf": now - 5,
            "exp": now + 600,
        })
    }

    /// Settings that accept this issuer's tokens.
    pub fn configure(&self, settings: &mut Settings) {
        settings.auth.oidc.push(OidcIssuerSettings {
            issuer: self.issuer.clone(),
            audience: AUDIENCE.to_owned(),
            jwks_uri: None,
            issuer_aliases: Vec::new(),
            required_scope: None,
        });
    }
}

async fn discovery(published: web::Data<Published>) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "issuer": published.issuer,
        "jwks_uri": format!("{}/keys", published.issuer),
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
    }))
}

async fn jwks(published: web::Data<Published>) -> HttpResponse {
    published.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    if published.hanging.load(Ordering::SeqCst) {
        actix_web::rt::time::sleep(std::time::Duration::from_secs(600)).await;
    }
    let keys = published.keys.lock().unwrap().clone();
    match *published.oversized.lock().unwrap() {
        None => HttpResponse::Ok().json(json!({ "keys": keys })),
        Some(Oversized::Declared(bytes)) => HttpResponse::Ok()
            .content_type("application/json")
            .no_chunking(bytes)
            .streaming(stream::pending::<Result<Bytes, actix_web::Error>>()),
        Some(Oversized::Streamed(bytes)) => {
            let junk = r#"{"kty":"junk","kid":"j"}"#;
            // One chunk, sent again and again: a reference count each time, not a copy.
            let chunk = Bytes::from(format!(",{junk}").repeat(2600));
            let repeats = bytes / chunk.len();
            let tail: String = keys.iter().map(|key| format!(",{key}")).collect();
            let body = std::iter::once(Bytes::from(format!("{{\"keys\":[{junk}")))
                .chain(std::iter::repeat_n(chunk, repeats))
                .chain(std::iter::once(Bytes::from(format!("{tail}]}}"))))
                .map(Ok::<_, actix_web::Error>);
            HttpResponse::Ok()
                .content_type("application/json")
                .streaming(stream::iter(body))
        }
    }
}
