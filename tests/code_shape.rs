//! The code stays readable: no function in `src/` over 80 lines (counted by brace matching, test
//! modules excepted, by `scripts/fn_lengths.py`).

#[test]
fn no_function_in_src_is_over_80_lines() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/fn_lengths.py");
    let out = std::process::Command::new("python3").args([script, "80"]).output().expect("python3 runs scripts/fn_lengths.py");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "functions over 80 lines:\n{text}");
    assert!(text.contains("0 function(s) over 80 lines"), "{text}");
}

/// No import cycle between the top-level modules (run, config, data, model, train, report, …) or between
/// files (`scripts/module_cycles.py`).
#[test]
fn no_import_cycles() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/module_cycles.py");
    let out = std::process::Command::new("python3").arg(script).output().expect("python3 runs scripts/module_cycles.py");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("0 cycle(s)"), "{text}");
}
