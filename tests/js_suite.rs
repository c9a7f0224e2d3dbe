//! Runs the JavaScript integration suite (`tests/js/`, node's built-in test runner) against the
//! server binary cargo built for this test, with socket.io-client 1.x, 2.x and 4.x.
//!
//! Needs Node.js 20+ and npm: their absence is a failure, not a skip. `npm ci` runs first when the
//! clients are not installed. The suite runs with a fresh SQLite file per test server and then,
//! with `BUBBLE_TEST_PG` set (a PostgreSQL URL such as `postgres://root@127.0.0.1:5432/test`), a
//! second time with a fresh PostgreSQL database per test server.
use std::path::Path;
use std::process::{Command, Stdio};

fn run(
    program: &str,
    args: &[&str],
    dir: &Path,
    envs: &[(&str, Option<&str>)],
) -> std::process::ExitStatus {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit());
    for (k, v) in envs {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    match cmd.status() {
        Ok(status) => status,
        Err(e) => panic!(
            "could not run `{program} {}`: {e} (Node.js 20+ and npm are needed for this suite)",
            args.join(" ")
        ),
    }
}

#[test]
fn javascript_suite() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bin = env!("CARGO_BIN_EXE_bubble");

    let node = Command::new("node")
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("node is required for the integration suite: {e}"));
    let version = String::from_utf8_lossy(&node.stdout).trim().to_string();
    let major: u32 = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    assert!(
        major >= 20,
        "Node.js 20 or newer is required, found {version:?}"
    );

    if !root.join("node_modules").join("sio4").exists() {
        let status = run("npm", &["ci", "--no-audit", "--no-fund"], root, &[]);
        assert!(status.success(), "npm ci failed: {status}");
    }

    // The servers log at `warn` unless BUBBLE_LOG says otherwise (see tests/js/harness.mjs).
    let postgres = std::env::var("BUBBLE_TEST_PG")
        .ok()
        .filter(|url| !url.is_empty());
    let databases = [("SQLite", None), ("PostgreSQL", postgres.as_deref())];
    for (name, pg) in databases {
        if name == "PostgreSQL" && pg.is_none() {
            println!("BUBBLE_TEST_PG is not set: the suite ran on SQLite only");
            continue;
        }
        println!("# JavaScript suite on {name}");
        let status = run(
            "node",
            &["--test", "--test-concurrency=2", "tests/js/"],
            root,
            &[("BUBBLE_BIN", Some(bin)), ("BUBBLE_TEST_PG", pg)],
        );
        assert!(
            status.success(),
            "the JavaScript suite failed on {name}: {status}"
        );
    }
}
