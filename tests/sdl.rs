//! The committed `schema.graphql` is the contract with the dashboards: this
//! fails when the code's schema drifts from it. To accept a change on purpose:
//! `MLGATE_UPDATE_SDL=1 cargo test --test sdl`, then review and commit the diff.

#[test]
fn committed_sdl_matches_the_code() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema.graphql");
    let actual = server::sdl();
    if std::env::var("MLGATE_UPDATE_SDL").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &actual).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == actual,
        "schema.graphql differs from the code's schema; if intended, run \
         `MLGATE_UPDATE_SDL=1 cargo test --test sdl` and commit schema.graphql"
    );
}
