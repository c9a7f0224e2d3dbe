//! Counsellor accounts end to end: the real binary serves on a free port with a fresh SQLite
//! file, accounts are made with `bubble counsellor ...` on the same file, and sign-in is checked
//! over real HTTP.
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, COOKIE, SET_COOKIE};
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_bubble");

/// A fresh database in a temporary directory that lives as long as this value.
struct Db {
    _dir: tempfile::TempDir,
    url: String,
}

impl Db {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("bubble.db").display()
        );
        Self { _dir: dir, url }
    }

    /// Runs `bubble counsellor <args> --database-url <this>` with `stdin` as its input.
    fn cli(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = Command::new(BIN)
            .arg("counsellor")
            .args(args)
            .args(["--database-url", &self.url])
            .env("BUBBLE_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run bubble counsellor");
        if let Some(mut input) = child.stdin.take() {
            input.write_all(stdin.as_bytes()).expect("write stdin");
        }
        child.wait_with_output().expect("bubble counsellor output")
    }

    fn cli_ok(&self, args: &[&str], stdin: &str) -> String {
        let out = self.cli(args, stdin);
        assert!(
            out.status.success(),
            "bubble counsellor {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs a command expected to fail; returns its standard error.
    fn cli_err(&self, args: &[&str], stdin: &str) -> String {
        let out = self.cli(args, stdin);
        assert!(
            !out.status.success(),
            "bubble counsellor {args:?} succeeded"
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

/// The server binary, killed on drop.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(db: &Db) -> Self {
        Self::start_with(db, &[])
    }

    fn start_with(db: &Db, flags: &[&str]) -> Self {
        let mut child = Command::new(BIN)
            .args(["serve", "--addr", "127.0.0.1:0", "--database-url", &db.url])
            .args(flags)
            .env("BUBBLE_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start bubble serve");
        let stdout = child.stdout.take().expect("server stdout");
        let (tx, rx) = mpsc::channel();
        // Keeps reading so the server never writes into a full or closed pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.strip_prefix("listening on ") {
                    let _ = tx.send(addr.trim().to_owned());
                }
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(addr) => addr,
            Err(e) => {
                let _ = child.kill();
                panic!("the server did not say where it listens: {e}");
            }
        };
        Self {
            child,
            base: format!("http://{addr}"),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// reqwest is built without a default TLS provider (the server picks ring); plain HTTP still
/// needs one installed.
fn tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A client that keeps cookies, like a browser.
fn browser() -> Client {
    tls_provider();
    Client::builder()
        .cookie_store(true)
        .build()
        .expect("http client")
}

/// A client without cookies, like a native app.
fn app() -> Client {
    tls_provider();
    Client::new()
}

async fn sign_in(client: &Client, server: &Server, username: &str, password: &str) -> Response {
    client
        .post(server.url("/auth"))
        .json(&json!({ "username": username, "password": password }))
        .send()
        .await
        .expect("POST /auth")
}

/// `bubble_session=<id>` from a response's `Set-Cookie`, with the full header line.
fn session_cookie(resp: &Response) -> Option<(String, String)> {
    resp.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("bubble_session="))
        .map(|line| {
            let pair = line.split(';').next().unwrap_or_default().to_owned();
            (pair, line.to_owned())
        })
}

/// The attributes of a `Set-Cookie` line after the value, lowercase.
fn cookie_attributes(line: &str) -> Vec<String> {
    line.split(';')
        .skip(1)
        .map(|a| a.trim().to_ascii_lowercase())
        .collect()
}

/// Signs in and returns the body, the `bubble_session=<id>` pair and the API token.
async fn signed_in(server: &Server, username: &str, password: &str) -> (Value, String, String) {
    let resp = sign_in(&app(), server, username, password).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let (cookie, _) = session_cookie(&resp).expect("a session cookie");
    let body: Value = resp.json().await.expect("JSON body");
    let token = body["token"].as_str().expect("a token").to_owned();
    (body, cookie, token)
}

/// `GET /auth/me` with an explicit cookie and/or bearer token.
async fn me(server: &Server, cookie: Option<&str>, token: Option<&str>) -> Response {
    let mut req = app().get(server.url("/auth/me"));
    if let Some(cookie) = cookie {
        req = req.header(COOKIE, cookie);
    }
    if let Some(token) = token {
        req = req.header(AUTHORIZATION, format!("Bearer {token}"));
    }
    req.send().await.expect("GET /auth/me")
}

async fn me_status(server: &Server, cookie: Option<&str>, token: Option<&str>) -> StatusCode {
    me(server, cookie, token).await.status()
}

fn add(db: &Db, username: &str, name: &str, password: &str) -> String {
    db.cli_ok(&["add", username, "--name", name], &format!("{password}\n"))
}

#[tokio::test]
async fn sign_in_me_and_logout() {
    let db = Db::new();
    add(&db, "Alice", "Alice Appleby", "correct horse battery");
    let server = Server::start(&db);

    // Sign in (case-insensitive username), as a browser would.
    let browser = browser();
    let resp = sign_in(&browser, &server, "ALICE", "correct horse battery").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let (cookie, line) = session_cookie(&resp).expect("a session cookie");
    let attributes = cookie_attributes(&line);
    for expected in ["httponly", "path=/", "samesite=lax", "max-age=604800"] {
        assert!(
            attributes.iter().any(|a| a == expected),
            "{expected}: {line}"
        );
    }
    assert!(!attributes.iter().any(|a| a == "secure"), "{line}");
    let body: Value = resp.json().await.unwrap();
    let counsellor = body["counsellor"].clone();
    assert_eq!(counsellor["username"], "alice");
    assert_eq!(counsellor["name"], "Alice Appleby");
    let id = counsellor["id"].as_str().unwrap();
    assert_eq!(id.len(), 36, "{id}");
    assert_eq!(counsellor.as_object().unwrap().len(), 3, "{counsellor}");
    let token = body["token"].as_str().unwrap().to_owned();
    assert!(token.len() >= 43, "{token}");

    // The browser's cookie jar, an explicit cookie, and the bearer token all say who this is.
    let resp = browser.get(server.url("/auth/me")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({ "counsellor": counsellor })
    );
    let resp = me(&server, Some(&cookie), None).await;
    assert_eq!(resp.status(), StatusCode::OK);
    // The session is renewed for another week of inactivity, under the same id.
    let (renewed, renewed_line) = session_cookie(&resp).expect("a renewed cookie");
    assert_eq!(renewed, cookie);
    assert!(renewed_line.contains("Max-Age=604800"), "{renewed_line}");
    let by_cookie: Value = resp.json().await.unwrap();
    assert_eq!(by_cookie["counsellor"], counsellor);
    let by_token: Value = me(&server, None, Some(&token)).await.json().await.unwrap();
    assert_eq!(by_token["counsellor"], counsellor);

    // Nothing, or nonsense, is unauthorized.
    let resp = me(&server, None, None).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.json::<Value>().await.unwrap()["code"], "unauthorized");
    let forged = "bubble_session=AAAAAAAAAAAAAAAAAAAAAA";
    assert_eq!(
        me_status(&server, Some(forged), None).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        me_status(&server, None, Some("nope")).await,
        StatusCode::UNAUTHORIZED
    );

    // Logout ends the session and revokes the token; both stop working.
    let resp = app()
        .post(server.url("/auth/logout"))
        .header(COOKIE, &cookie)
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        me_status(&server, Some(&cookie), None).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        me_status(&server, None, Some(&token)).await,
        StatusCode::UNAUTHORIZED
    );
    let resp = browser.get(server.url("/auth/me")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    // Logging out with nothing signed in is still a success.
    let resp = app().post(server.url("/auth/logout")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn bad_credentials_look_the_same() {
    let db = Db::new();
    add(&db, "alice", "Alice", "correct horse battery");
    let server = Server::start(&db);

    let mut answers = Vec::new();
    for (username, password) in [
        ("alice", "wrong password"),
        ("nobody", "correct horse battery"),
        ("x", "correct horse battery"),
        ("alice", ""),
    ] {
        let resp = sign_in(&app(), &server, username, password).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{username}");
        assert!(
            session_cookie(&resp).is_none(),
            "{username}: no session on failure"
        );
        answers.push(resp.text().await.unwrap());
    }
    let first: Value = serde_json::from_str(&answers[0]).unwrap();
    assert_eq!(first["code"], "unauthorized");
    assert!(first["message"].as_str().is_some_and(|m| !m.is_empty()));
    for answer in &answers[1..] {
        assert_eq!(
            answer, &answers[0],
            "every failure answers byte for byte the same"
        );
    }
}

#[tokio::test]
async fn sign_in_attempts_are_limited_per_username_and_address() {
    let db = Db::new();
    add(&db, "alice", "Alice", "correct horse battery");
    let server = Server::start_with(
        &db,
        &["--auth-login-per-user", "3", "--auth-login-per-ip", "5"],
    );
    for _ in 0..3 {
        let resp = sign_in(&app(), &server, "alice", "wrong password").await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }
    // The fourth try on one name is refused, even with the right password.
    let resp = sign_in(&app(), &server, "Alice", "correct horse battery").await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "rate_limited");
    // Other names from the same address, up to the address's limit.
    let resp = sign_in(&app(), &server, "bob", "whatever pw").await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = sign_in(&app(), &server, "carol", "whatever pw").await;
    assert_eq!(
        resp.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "sixth try from one address"
    );
}

#[tokio::test]
async fn malformed_sign_in_is_invalid_payload() {
    let db = Db::new();
    let server = Server::start(&db);
    let client = app();
    let json_bodies = [
        json!({ "username": "alice" }),
        json!({ "username": 1, "password": "x" }),
        json!(["alice", "password"]),
        json!(null),
    ];
    for body in &json_bodies {
        let resp = client
            .post(server.url("/auth"))
            .json(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{body}");
        let answer: Value = resp.json().await.unwrap();
        assert_eq!(answer["code"], "invalid_payload", "{body}");
        assert!(answer["message"].is_string());
    }
    let resp = client
        .post(server.url("/auth"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["code"],
        "invalid_payload"
    );
    let resp = client
        .post(server.url("/auth"))
        .body("username=alice")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["code"],
        "invalid_payload"
    );
}

#[tokio::test]
async fn sign_in_cycles_the_session_id() {
    let db = Db::new();
    add(&db, "alice", "Alice", "correct horse battery");
    let server = Server::start(&db);
    let (_, first, _) = signed_in(&server, "alice", "correct horse battery").await;

    // Signing in again from that session hands out a new id; the old one is dead.
    let resp = app()
        .post(server.url("/auth"))
        .header(COOKIE, &first)
        .json(&json!({ "username": "alice", "password": "correct horse battery" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let (second, _) = session_cookie(&resp).expect("a new session cookie");
    assert_ne!(first, second);
    assert_eq!(
        me_status(&server, Some(&first), None).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        me_status(&server, Some(&second), None).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn session_and_token_survive_a_restart() {
    let db = Db::new();
    add(&db, "alice", "Alice", "correct horse battery");
    let server = Server::start(&db);
    let (body, cookie, token) = signed_in(&server, "alice", "correct horse battery").await;
    assert_eq!(
        me_status(&server, Some(&cookie), None).await,
        StatusCode::OK
    );
    server.stop();

    let server = Server::start(&db);
    let resp = me(&server, Some(&cookie), None).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let again: Value = resp.json().await.unwrap();
    assert_eq!(again["counsellor"], body["counsellor"]);
    assert_eq!(me_status(&server, None, Some(&token)).await, StatusCode::OK);
}

#[tokio::test]
async fn cli_manages_accounts() {
    let db = Db::new();
    let out = add(&db, "Alice", "Alice Appleby", "correct horse battery");
    assert!(out.contains("alice"), "{out}");
    add(&db, "bob", "Bob Brown", "bob's password");

    // Refusals: taken (in any case), bad usernames, bad passwords, unknown users.
    let err = db.cli_err(&["add", "ALICE", "--name", "Other"], "another password\n");
    assert!(err.contains("taken"), "{err}");
    let err = db.cli_err(&["add", "al", "--name", "Al"], "another password\n");
    assert!(err.contains("username"), "{err}");
    let err = db.cli_err(&["add", "al ice", "--name", "Al"], "another password\n");
    assert!(err.contains("username"), "{err}");
    let err = db.cli_err(&["add", "carol", "--name", "Carol"], "short\n");
    assert!(err.contains("at least 8"), "{err}");
    let long = format!("{}\n", "x".repeat(129));
    let err = db.cli_err(&["add", "carol", "--name", "Carol"], &long);
    assert!(err.contains("at most 128"), "{err}");
    let err = db.cli_err(&["remove", "zed"], "");
    assert!(err.contains("zed"), "{err}");
    let err = db.cli_err(&["passwd", "zed"], "a new password\n");
    assert!(err.contains("zed"), "{err}");

    let list = db.cli_ok(&["list"], "");
    let rows: Vec<Vec<&str>> = list
        .lines()
        .skip(1)
        .map(|l| l.split('\t').collect())
        .collect();
    assert_eq!(rows.len(), 2, "{list}");
    assert_eq!(&rows[0][..2], ["alice", "Alice Appleby"]);
    assert_eq!(&rows[1][..2], ["bob", "Bob Brown"]);
    assert!(
        rows.iter().all(|r| r.len() == 3 && r[2].starts_with("20")),
        "{list}"
    );

    let server = Server::start(&db);
    // The trailing newline was stripped from the password, and only that.
    let (_, alice_cookie, alice_token) = signed_in(&server, "alice", "correct horse battery").await;
    let (_, _, bob_token) = signed_in(&server, "bob", "bob's password").await;

    // A new password revokes the old credentials everywhere; the new one signs in.
    db.cli_ok(&["passwd", "Alice"], "a brand new password\r\n");
    assert_eq!(
        me_status(&server, None, Some(&alice_token)).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        me_status(&server, Some(&alice_cookie), None).await,
        StatusCode::UNAUTHORIZED
    );
    let resp = sign_in(&app(), &server, "alice", "correct horse battery").await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    signed_in(&server, "alice", "a brand new password").await;
    assert_eq!(
        me_status(&server, None, Some(&bob_token)).await,
        StatusCode::OK
    );

    // Removal signs the account out and it can no longer sign in.
    db.cli_ok(&["remove", "bob"], "");
    assert_eq!(
        me_status(&server, None, Some(&bob_token)).await,
        StatusCode::UNAUTHORIZED
    );
    let resp = sign_in(&app(), &server, "bob", "bob's password").await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let list = db.cli_ok(&["list"], "");
    assert_eq!(list.lines().count(), 2, "{list}");
    assert!(list.contains("alice") && !list.contains("bob"), "{list}");
}

#[tokio::test]
async fn cookie_attributes_follow_the_flags() {
    let db = Db::new();
    add(&db, "alice", "Alice", "correct horse battery");
    let flags = ["--session-same-site", "none", "--session-secure"];
    let server = Server::start_with(&db, &flags);
    let resp = sign_in(&app(), &server, "alice", "correct horse battery").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let (_, line) = session_cookie(&resp).expect("a session cookie");
    let attributes = cookie_attributes(&line);
    assert!(attributes.contains(&"samesite=none".into()), "{line}");
    assert!(attributes.contains(&"secure".into()), "{line}");
    assert!(attributes.contains(&"httponly".into()), "{line}");
}
