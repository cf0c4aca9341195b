//! README stays in step with the binary: every subcommand `tumorscope --help` lists is in README's
//! commands table, every command the table names exists, and every page README links to is there.

use clap::CommandFactory;
use std::collections::BTreeSet;

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap()
}

/// The subcommands named in the first cell of the commands table (`tumorscope NAME …`).
fn table_commands(readme: &str) -> BTreeSet<String> {
    let table = readme.split("## Commands").nth(1).expect("a Commands section").split("\n## ").next().unwrap();
    table
        .lines()
        .filter(|l| l.starts_with("| `tumorscope "))
        .filter_map(|l| l.trim_start_matches("| `tumorscope ").split([' ', '`']).next().map(str::to_string))
        .collect()
}

#[test]
fn every_subcommand_is_in_readme_and_every_row_is_a_subcommand() {
    let help: BTreeSet<String> =
        tumorscope::cli::Cli::command().get_subcommands().filter(|c| !c.is_hide_set()).map(|c| c.get_name().to_string()).collect();
    let table = table_commands(&readme());
    assert!(help.len() >= 11, "{help:?}");
    let missing: Vec<_> = help.difference(&table).collect();
    let unknown: Vec<_> = table.difference(&help).collect();
    assert!(missing.is_empty(), "in --help, not in README's commands table: {missing:?}");
    assert!(unknown.is_empty(), "in README's commands table, not a subcommand: {unknown:?}");
    // The binary's own help says the same.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tumorscope")).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for name in &help {
        assert!(text.lines().any(|l| l.trim_start().starts_with(name.as_str())), "--help lists {name}:\n{text}");
    }
}

#[test]
fn every_linked_page_exists_and_readme_stays_short() {
    let text = readme();
    assert!(text.lines().count() <= 350, "README.md has {} lines; the rest belongs in docs/", text.lines().count());
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut pages = 0;
    for part in text.split("](").skip(1) {
        let target = part.split(')').next().unwrap().split('#').next().unwrap();
        if target.starts_with("http") || target.is_empty() {
            continue;
        }
        assert!(root.join(target).exists(), "README links to {target}, which is not there");
        pages += 1;
    }
    assert!(pages >= 7, "README links its docs pages ({pages} links)");
}

/// README's key table is the one the dashboard's key map makes (`tui::keys::markdown_table`): a key
/// added, changed or dropped in the map shows here until README says the same.
#[test]
fn readme_key_table_is_the_key_map() {
    let text = readme();
    let want = tumorscope::tui::keys::markdown_table();
    assert!(text.contains(&want), "README's \"## Keys\" table differs from the key map; it should be:\n{want}");
}
