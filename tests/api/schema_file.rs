//! `schema.graphql` at the repository root is exactly what `casefile schema` prints.

#[test]
fn schema_file_matches_what_casefile_schema_prints() {
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql"))
        .expect("schema.graphql at the repository root");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_casefile"))
        .arg("schema")
        .output()
        .expect("run casefile schema");
    assert!(
        output.status.success(),
        "casefile schema failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed = String::from_utf8(output.stdout).expect("utf-8");
    assert_eq!(printed, casefile::graphql::sdl());
    assert!(
        committed == printed,
        "schema.graphql is stale: run `cargo run -- schema > schema.graphql` and commit it"
    );
}
