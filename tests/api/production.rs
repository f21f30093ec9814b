//! The production posture: without `DATABASE_URL`, production refuses to start rather than
//! invent a private database, and says what is missing.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn production_without_database_url_exits_at_once_naming_it() {
    // Arrange: an empty working directory, so a started embedded cluster would show.
    let workdir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "production-{}",
        hex::encode(rand::random::<[u8; 4]>())
    ));
    std::fs::create_dir_all(&workdir).unwrap();

    for args in [&["serve"][..], &["migrate"], &["user", "create", "alice"]] {
        // Act
        let started = Instant::now();
        let output = Command::new(env!("CARGO_BIN_EXE_email-sessions"))
            .args(args)
            .current_dir(&workdir)
            .env("APP_ENVIRONMENT", "production")
            .env_remove("DATABASE_URL")
            .env_remove("APP_DATABASE__URL")
            .env_remove("APP_DATABASE__EMBEDDED")
            .output()
            .expect("running email-sessions");

        // Assert
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} succeeded: {stderr}");
        assert!(stderr.contains("DATABASE_URL"), "{args:?}: {stderr}");
        assert!(output.stdout.is_empty(), "{args:?} printed to stdout");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{args:?} took {:?}",
            started.elapsed()
        );
    }
    assert!(
        !workdir.join("var").exists(),
        "no embedded database was started"
    );
}
