//! A `RUST_LOG` that is not a filter is said so, not passed over in silence:
//! an operator who asked for `debug` lines and got the default would look
//! for them in vain.

use uuid::Uuid;

use crate::helpers::{database_url_of, spawn_app};

#[tokio::test]
async fn a_rust_log_that_is_no_filter_is_named_and_the_default_kept() {
    let app = spawn_app().await;
    for filter in ["concert=bogus", "=["] {
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_concert"))
            .args(["user-token", &Uuid::new_v4().to_string()])
            .env("DATABASE_URL", database_url_of(&app.pool))
            .env("RUST_LOG", filter)
            .output()
            .await
            .unwrap();
        let err = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{filter}: {err}");
        assert!(
            err.contains("RUST_LOG is not a log filter") && err.contains(filter),
            "{filter}: {err}"
        );
    }
}
