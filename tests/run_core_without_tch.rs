//! The run core (`run/`, `config/`, `metrics.rs`, `rng.rs`: events, state, log, run folders, socket,
//! settings) compiles as a crate of its own, with no tch, no ratatui and none of data, model, train or
//! the TUI: a client of a run (a dashboard, `ctl`, a cluster driver) needs none of them. The crate is
//! made in a temporary folder from the very source files and checked offline with the dependencies
//! already fetched; a `use` of anything outside the core fails this test.

use std::path::Path;

const DEPS: &str = r#"
serde = { version = "1", features = ["derive"] }
serde_json = { version = "1", features = ["float_roundtrip"] }
toml = "1"
thiserror = "2"
clap = { version = "4", features = ["derive"] }
nix = { version = "0.31", features = ["signal", "process", "socket", "user", "hostname", "fs"] }
tokio = { version = "1", features = ["sync"] }
image = { version = "0.25", default-features = false }
"#;

#[test]
fn the_run_core_builds_without_tch() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    for m in ["run", "config", "metrics"] {
        std::os::unix::fs::symlink(root.join("src").join(m), src.join(m)).unwrap();
    }
    std::os::unix::fs::symlink(root.join("src/rng.rs"), src.join("rng.rs")).unwrap();
    std::fs::write(src.join("lib.rs"), "pub mod config;\npub mod metrics;\npub mod rng;\npub mod run;\n").unwrap();
    std::fs::write(
        t.path().join("Cargo.toml"),
        format!("[package]\nname = \"run-core-check\"\nversion = \"0.0.0\"\nedition = \"2024\"\n\n[dependencies]{DEPS}\n[workspace]\n"),
    )
    .unwrap();
    // The project's lock file pins the same versions the main crate builds with.
    std::fs::copy(root.join("Cargo.lock"), t.path().join("Cargo.lock")).unwrap();
    let out = std::process::Command::new(env!("CARGO"))
        .args(["check", "--offline", "--lib", "--quiet"])
        .current_dir(t.path())
        .env("CARGO_TARGET_DIR", root.join("target").join("run-core-check"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the run core does not build on its own:\n{err}");
    let lock = std::fs::read_to_string(t.path().join("Cargo.lock")).unwrap();
    for heavy in ["\"tch\"", "\"torch-sys\"", "\"ratatui\"", "\"crossterm\""] {
        assert!(!lock.contains(&format!("name = {heavy}")), "the run core pulled in {heavy}");
    }
}
