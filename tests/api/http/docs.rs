//! The README and `.env.example` document every setting the service reads.

use study_mode_api::settings::all_settings;

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn readme_and_env_example_list_every_setting() {
    let readme = read("README.md");
    let example = read(".env.example");
    for s in all_settings() {
        assert!(
            readme.contains(&format!("`{}`", s.name)),
            "README.md lacks `{}`",
            s.name
        );
        assert!(
            example.contains(&format!("{}=", s.name)),
            ".env.example lacks {}=",
            s.name
        );
    }
}

#[test]
fn help_lists_every_setting() {
    let help = study_mode_api::cli::settings_help();
    for s in all_settings() {
        assert!(help.contains(s.name), "--help lacks {}", s.name);
    }
}

/// The README's settings table is generated from the settings declarations
/// (`study-mode-api settings-table`) and kept equal to them, so a setting is documented once.
#[test]
fn the_readme_settings_table_is_the_generated_one() {
    let readme = read("README.md");
    let table = study_mode_api::settings::markdown_table();
    assert!(
        readme.contains(&table),
        "README.md's settings table differs from the declarations; replace it with the output \
         of `cargo run -- settings-table`:\n{table}"
    );
    // A row whose first cell is a variable name (`| `NAME` | …`).
    let is_setting_row = |line: &str| {
        line.strip_prefix("| `")
            .and_then(|rest| rest.split_once("` |"))
            .is_some_and(|(name, _)| {
                !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
            })
    };
    let rows = readme.lines().filter(|l| is_setting_row(l)).count();
    assert_eq!(
        rows,
        all_settings().len(),
        "README.md lists a setting row outside the generated table (or twice)"
    );
}

/// Each setting is declared by exactly one owner.
#[test]
fn every_setting_is_declared_once() {
    let mut names: Vec<&str> = all_settings().iter().map(|s| s.name).collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(before, names.len(), "a setting is declared twice");
}
