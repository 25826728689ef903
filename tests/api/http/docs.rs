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
