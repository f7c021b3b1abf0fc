//! Which server and token: flags over the environment over `login`'s config file; a server that
//! cannot be reached is named; shell completions.

use std::os::unix::fs::PermissionsExt;

use crate::on_both_databases;
use crate::process::{Client, finish};
use crate::support::{Backend, spawn_app};

/// A port on loopback that nothing listens on.
fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

async fn login_checks_the_token_and_saves_it_for_the_next_commands(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = Client::of(&app);
    let config = client.config_home().join("submission-helper/config.toml");
    let login = |token: &str| {
        let mut command = client.bare(&["login", "--server", &app.address]);
        command.stdin(std::process::Stdio::piped());
        let token = format!("{token}\n");
        async move {
            let mut child = command.spawn().expect("start login");
            let mut stdin = child.stdin.take().expect("stdin");
            tokio::io::AsyncWriteExt::write_all(&mut stdin, token.as_bytes())
                .await
                .expect("write token");
            drop(stdin);
            child.wait_with_output().await.expect("login output")
        }
    };

    let wrong = login("not-a-token").await;
    let wrong_left_a_file = config.exists();
    let right = login(&app.token).await;

    assert_eq!(wrong.status.code(), Some(2));
    assert!(!wrong_left_a_file, "a refused token is not saved");
    assert_eq!(right.status.code(), Some(0), "{right:?}");
    let mode = std::fs::metadata(&config)
        .expect("config file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let saved = std::fs::read_to_string(&config).expect("read config");
    assert!(saved.contains(&app.token), "{saved}");

    let from_the_file = finish(client.bare(&["get", "submissions"])).await;
    let environment_over_file = finish({
        let mut command = client.bare(&["get", "submissions"]);
        command.env("SUBMISSION_HELPER_URL", closed_port());
        command
    })
    .await;
    let flag_over_environment = finish({
        let mut command = client.bare(&["get", "submissions", "--server", &app.address]);
        command.env("SUBMISSION_HELPER_URL", closed_port());
        command
    })
    .await;
    let token_from_environment = finish({
        let mut command = client.bare(&["get", "submissions"]);
        command.env("SUBMISSION_HELPER_TOKEN", "revoked-or-never-made");
        command
    })
    .await;

    from_the_file.expect_code(0);
    environment_over_file.expect_code(2);
    assert!(
        environment_over_file
            .stderr
            .contains("could not reach the server at http://127.0.0.1:"),
        "{}",
        environment_over_file.stderr
    );
    flag_over_environment.expect_code(0);
    token_from_environment.expect_code(2);
    assert!(
        token_from_environment
            .stderr
            .contains("submission-helper login"),
        "{}",
        token_from_environment.stderr
    );
}
on_both_databases!(login_checks_the_token_and_saves_it_for_the_next_commands);

#[tokio::test]
async fn an_unreachable_server_is_named_in_words() {
    let server = closed_port();
    let client = Client::with(&server, "token");

    let run = client.run(&["get", "submissions"]).await;

    run.expect_code(2);
    assert_eq!(
        run.stderr.lines().next().unwrap_or_default(),
        format!(
            "error: could not reach the server at {server}/: Connection refused (os error 111)"
        )
    );
}

#[tokio::test]
async fn without_a_server_the_error_says_how_to_name_one() {
    let client = Client::with("", "");

    let run = finish(client.bare(&["get", "submissions"])).await;

    run.expect_code(2);
    assert!(run.stderr.contains("--server"), "{}", run.stderr);
}

#[tokio::test]
async fn completion_scripts_cover_the_client_commands() {
    let client = Client::with("", "");

    for shell in ["bash", "zsh", "fish"] {
        let run = finish(client.bare(&["completion", shell])).await;

        let script = &run.expect_code(0).stdout;
        for word in ["submit", "describe", "k8s-image"] {
            assert!(script.contains(word), "{shell}: {word}");
        }
    }
}

async fn a_request_refused_for_its_rate_is_sent_again_after_the_wait_it_names(backend: Backend) {
    let database = crate::support::TestDatabase::new(backend).await;
    let cluster =
        submission_helper::cluster::Cluster::unconfigured("none".into(), "default".into());
    let app = crate::support::TestApp::builder()
        .with_database(database)
        .with_cluster(cluster)
        .with_rate_limit(60)
        .spawn()
        .await;
    let client = Client::of(&app);
    // The budget refills at one request a second while it is being spent, so on a slow machine
    // a little more than a minute's worth goes through before the first refusal.
    let started = std::time::Instant::now();
    let mut spent = 0;
    while app.get("/v1/submissions").await.status() != reqwest::StatusCode::TOO_MANY_REQUESTS {
        spent += 1;
        let refilled = started.elapsed().as_secs() + 1;
        assert!(
            spent <= 60 + refilled,
            "the budget is a minute's worth and what refilled"
        );
    }

    let run = client.run(&["get", "submissions"]).await;

    run.expect_code(0);
    assert!(run.stderr.contains("No submissions found."), "{run:#?}");
}
on_both_databases!(a_request_refused_for_its_rate_is_sent_again_after_the_wait_it_names);
