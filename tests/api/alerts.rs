//! `deploy/prometheus/alerts.yml` is valid Prometheus and each alert fires when it should
//! (`deploy/prometheus/alerts.test.yml`), checked with promtool (Debian's `prometheus` package;
//! `.ci/run` installs it). That every metric an alert names is exported is a unit test beside the
//! metric names (`metric_names.rs`).

use std::process::Command;

fn promtool(args: &[&str]) -> String {
    let output = Command::new("promtool")
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/prometheus"))
        .output()
        .expect("promtool runs (apt-get install prometheus)");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "promtool {args:?}:\n{printed}");
    printed
}

#[test]
fn the_alert_rules_are_valid_and_each_fires_when_it_should() {
    let checked = promtool(&["check", "rules", "alerts.yml"]);
    let tested = promtool(&["test", "rules", "alerts.test.yml"]);

    assert!(checked.contains("SUCCESS: 10 rules found"), "{checked}");
    assert!(tested.contains("SUCCESS"), "{tested}");
}
