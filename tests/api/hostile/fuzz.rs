//! The property test: random and mutated requests against one service.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};

use super::fixture::{fixture, hostile_config};
use super::generators::{case, targeted_case};
use super::judging::{check_problem, may_succeed, still_sound};
use super::sending::send;
use crate::helpers::spawn_app_with;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_and_mutated_requests_never_get_a_5xx_or_a_bare_error() {
    let app = spawn_app_with(hostile_config()).await;
    let fx = fixture(&app).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let tried = Arc::new(AtomicUsize::new(0));
    let statuses = Arc::new(Mutex::new(HashMap::<u16, usize>::new()));
    let cases: u32 = std::env::var("HOSTILE_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2000);
    let (address, fixture, counter, tally) = (
        app.address.clone(),
        fx.clone(),
        tried.clone(),
        statuses.clone(),
    );
    let handle = tokio::runtime::Handle::current();
    let outcome = tokio::task::spawn_blocking(move || {
        let mut runner = TestRunner::new(ProptestConfig {
            cases,
            failure_persistence: None,
            max_shrink_iters: 200,
            ..ProptestConfig::default()
        });
        let strategy = prop_oneof![1 => case(&fixture), 2 => targeted_case(&fixture)];
        runner
            .run(&strategy, |case| {
                counter.fetch_add(1, Ordering::Relaxed);
                let Some(reply) = handle.block_on(send(&client, &address, &fixture, &case)) else {
                    return Ok(());
                };
                *tally.lock().unwrap().entry(reply.status).or_default() += 1;
                check_problem(&reply).map_err(TestCaseError::fail)?;
                if (200..300).contains(&reply.status) && !may_succeed(&fixture, &case) {
                    return Err(TestCaseError::fail(format!(
                        "{} answered {} to a token that may not: {}",
                        case.path, reply.status, reply.body
                    )));
                }
                Ok(())
            })
            .map_err(|failure| failure.to_string())
    })
    .await
    .unwrap();
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
    println!(
        "FIGURES hostile_fuzz: {} requests, statuses {:?}",
        tried.load(Ordering::Relaxed),
        statuses.lock().unwrap()
    );
    still_sound(&app).await;
}
