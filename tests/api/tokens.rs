//! `/v1/tokens`: admins create tokens over HTTP, the secret is shown once, lists never show
//! one, revoking stops a token at once, expired tokens are refused saying so, and each token's
//! last use is recorded.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json as body};
use submission_helper::cluster::Cluster;

use crate::on_both_databases;
use crate::support::{
    Backend, TestApp, TestDatabase, client_with_token, eventually, fields, json, problem, spawn_app,
};

/// How long a test waits for what happens in the background.
const PATIENCE: Duration = Duration::from_secs(20);

/// Creates a token through the API as `admin` and returns the answer.
async fn create(app: &TestApp, admin: &reqwest::Client, request: Value) -> Value {
    json(
        app.post_as(admin, "/v1/tokens", &request).await,
        StatusCode::CREATED,
    )
    .await
}

async fn listed(app: &TestApp, client: &reqwest::Client) -> Vec<Value> {
    let list = json(app.get_as(client, "/v1/tokens").await, StatusCode::OK).await;
    list["items"].as_array().expect("items").clone()
}

async fn an_admin_creates_a_token_that_works_at_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.client_for("root", true, false).await;

    let created = create(
        &app,
        &admin,
        body!({"user": "carol", "delegate": true, "max_concurrent": 3,
               "expires_in": "30d", "description": "nightly pipeline"}),
    )
    .await;
    let carol = client_with_token(created["secret"].as_str().expect("secret"));
    let submitted = json(
        app.post_as(
            &carol,
            "/v1/submissions",
            &body!({"image": "busybox", "command": "true"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;

    assert_eq!(submitted["owner"], "carol");
    assert_eq!(created["user"], "carol");
    assert_eq!(created["admin"], false);
    assert_eq!(created["delegate"], true);
    assert_eq!(created["max_concurrent"], 3);
    assert_eq!(created["description"], "nightly pipeline");
    let expires_at: jiff::Timestamp = created["expires_at"]
        .as_str()
        .expect("expires_at")
        .parse()
        .expect("an RFC 3339 time");
    let in_30_days = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(30 * 24);
    assert!(
        expires_at <= in_30_days && expires_at > in_30_days - jiff::SignedDuration::from_mins(5)
    );
}
on_both_databases!(an_admin_creates_a_token_that_works_at_once);

async fn only_admins_create_tokens(backend: Backend) {
    let app = spawn_app(backend).await;

    let refused = problem(
        app.post_json("/v1/tokens", &body!({"user": "mallory", "admin": true}))
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;

    assert!(
        refused["detail"]
            .as_str()
            .expect("detail")
            .contains("admin")
    );
    let admin = app.client_for("root", true, false).await;
    let users: Vec<Value> = listed(&app, &admin)
        .await
        .into_iter()
        .map(|token| token["user"].clone())
        .collect();
    assert!(!users.contains(&body!("mallory")), "{users:?}");
}
on_both_databases!(only_admins_create_tokens);

async fn a_token_request_with_bad_fields_names_each(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.client_for("root", true, false).await;

    let refused = problem(
        app.post_as(
            &admin,
            "/v1/tokens",
            &body!({"user": "has space", "max_concurrent": 0, "expires_in": "soon"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let both = problem(
        app.post_as(
            &admin,
            "/v1/tokens",
            &body!({"user": "carol", "expires_in": "1d", "expires_at": "2999-01-01T00:00:00Z"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let past = problem(
        app.post_as(
            &admin,
            "/v1/tokens",
            &body!({"user": "carol", "expires_at": "2001-01-01T00:00:00Z"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;

    assert_eq!(
        fields(&refused),
        ["user", "max_concurrent", "expires_in"],
        "{refused}"
    );
    assert_eq!(fields(&both), ["expires_at"], "{both}");
    assert_eq!(fields(&past), ["expires_at"], "{past}");
}
on_both_databases!(a_token_request_with_bad_fields_names_each);

async fn lists_never_show_secrets_and_users_see_only_their_own(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.client_for("root", true, false).await;
    let created = create(&app, &admin, body!({"user": "carol"})).await;
    let secret = created["secret"].as_str().expect("secret").to_owned();
    let webhook_secret = created["webhook_secret"]
        .as_str()
        .expect("the webhook secret, shown once")
        .to_owned();
    let carol = client_with_token(&secret);

    let everything = listed(&app, &admin).await;
    let carols = listed(&app, &carol).await;
    let raw = app
        .get_as(&admin, "/v1/tokens")
        .await
        .text()
        .await
        .expect("body");

    assert!(!raw.contains(&secret), "a list showed a secret: {raw}");
    assert!(
        !raw.contains(&webhook_secret),
        "a list showed a webhook secret: {raw}"
    );
    assert!(everything.iter().all(|token| token.get("secret").is_none()));
    let users: Vec<&str> = everything
        .iter()
        .filter_map(|token| token["user"].as_str())
        .collect();
    assert!(users.contains(&"alice") && users.contains(&"carol") && users.contains(&"root"));
    assert_eq!(carols.len(), 1, "{carols:?}");
    assert_eq!(carols[0]["id"], created["id"]);
    assert_eq!(carols[0]["user"], "carol");
    assert!(carols[0]["created_at"].is_string());
    assert!(carols[0]["expires_at"].is_null());
}
on_both_databases!(lists_never_show_secrets_and_users_see_only_their_own);

async fn a_revoked_token_is_refused_at_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.client_for("root", true, false).await;
    let created = create(&app, &admin, body!({"user": "carol"})).await;
    let carol = client_with_token(created["secret"].as_str().expect("secret"));
    let path = format!("/v1/tokens/{}", created["id"].as_str().expect("id"));
    assert_eq!(
        app.get_as(&carol, "/v1/submissions").await.status(),
        StatusCode::OK
    );

    let revoked = admin.delete(app.url(&path)).send().await.expect("request");
    let again = admin.delete(app.url(&path)).send().await.expect("request");
    let unknown = admin
        .delete(app.url("/v1/tokens/no-such-token"))
        .send()
        .await
        .expect("request");

    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    assert_eq!(again.status(), StatusCode::NO_CONTENT);
    problem(unknown, StatusCode::NOT_FOUND).await;
    let refused = problem(
        app.get_as(&carol, "/v1/submissions").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert!(
        refused["detail"]
            .as_str()
            .expect("detail")
            .contains("revoked")
    );
    let listed = listed(&app, &admin).await;
    let entry = listed
        .iter()
        .find(|token| token["id"] == created["id"])
        .expect("still listed");
    assert!(entry["revoked_at"].is_string());
}
on_both_databases!(a_revoked_token_is_refused_at_once);

async fn users_revoke_their_own_tokens_only(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.client_for("root", true, false).await;
    let carols = create(&app, &admin, body!({"user": "carol"})).await;
    let daves = create(&app, &admin, body!({"user": "dave"})).await;
    let carol = client_with_token(carols["secret"].as_str().expect("secret"));
    let dave = client_with_token(daves["secret"].as_str().expect("secret"));

    let others = carol
        .delete(app.url(&format!("/v1/tokens/{}", daves["id"].as_str().expect("id"))))
        .send()
        .await
        .expect("request");
    let own = carol
        .delete(app.url(&format!(
            "/v1/tokens/{}",
            carols["id"].as_str().expect("id")
        )))
        .send()
        .await
        .expect("request");

    problem(others, StatusCode::NOT_FOUND).await;
    assert_eq!(own.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.get_as(&dave, "/v1/submissions").await.status(),
        StatusCode::OK
    );
    problem(
        app.get_as(&carol, "/v1/submissions").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
}
on_both_databases!(users_revoke_their_own_tokens_only);

async fn an_expired_token_is_refused_saying_it_expired(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.client_for("root", true, false).await;
    let created = create(&app, &admin, body!({"user": "carol", "expires_in": "2s"})).await;
    let carol = client_with_token(created["secret"].as_str().expect("secret"));
    assert_eq!(
        app.get_as(&carol, "/v1/submissions").await.status(),
        StatusCode::OK
    );

    let refused = eventually("the token to expire", PATIENCE, || async {
        let response = app.get_as(&carol, "/v1/submissions").await;
        if response.status() == StatusCode::UNAUTHORIZED {
            Some(problem(response, StatusCode::UNAUTHORIZED).await)
        } else {
            None
        }
    })
    .await;

    let detail = refused["detail"].as_str().expect("detail");
    assert!(detail.contains("expired"), "{detail}");
    assert!(
        detail.contains(created["expires_at"].as_str().expect("expires_at")),
        "{detail}"
    );
}
on_both_databases!(an_expired_token_is_refused_saying_it_expired);

async fn a_tokens_last_use_moves_when_it_is_used(backend: Backend) {
    let database = TestDatabase::new(backend).await;
    let cluster = Cluster::unconfigured("no cluster in this test".into(), "default".into());
    let app = TestApp::builder()
        .with_database(database)
        .with_cluster(cluster)
        .with_settings(|settings| {
            settings.token_use_resolution = Duration::from_millis(500);
        })
        .spawn()
        .await;
    let admin = app.client_for("root", true, false).await;
    let created = create(&app, &admin, body!({"user": "carol"})).await;
    let carol = client_with_token(created["secret"].as_str().expect("secret"));
    let last_use = || async {
        listed(&app, &admin)
            .await
            .into_iter()
            .find(|token| token["id"] == created["id"])
            .and_then(|token| token["last_used_at"].as_str().map(str::to_owned))
    };
    assert_eq!(last_use().await, None);

    app.get_as(&carol, "/v1/submissions").await;
    let first = eventually("the first use to be recorded", PATIENCE, last_use).await;
    let second = eventually("a later use to be recorded", PATIENCE, || async {
        app.get_as(&carol, "/v1/submissions").await;
        last_use().await.filter(|at| *at != first)
    })
    .await;

    let first: jiff::Timestamp = first.parse().expect("time");
    let second: jiff::Timestamp = second.parse().expect("time");
    assert!(second > first);
}
on_both_databases!(a_tokens_last_use_moves_when_it_is_used);

/// A token made before webhooks existed has no secret to sign notifications with: a
/// submission naming a `notify_url` with it is refused on that field (each submission of a
/// batch named), nothing is stored, and the same token still submits without one.
async fn a_token_without_a_webhook_secret_cannot_ask_for_notifications(backend: Backend) {
    let database = TestDatabase::new(backend).await;
    let cluster = Cluster::unconfigured("no cluster in this test".into(), "default".into());
    let app = TestApp::builder()
        .with_database(database)
        .with_cluster(cluster)
        .with_settings(|settings| {
            settings.defaults.allowed.notify_hosts = vec!["127.0.0.1".into()];
        })
        .spawn()
        .await;
    let admin = app.client_for("root", true, false).await;
    let created = create(&app, &admin, body!({"user": "carol"})).await;
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&app.database.url)
        .await
        .expect("database");
    sqlx::query("UPDATE tokens SET webhook_secret = NULL WHERE id = $1")
        .bind(created["id"].as_str().expect("id"))
        .execute(&pool)
        .await
        .expect("a token as made before webhooks");
    let carol = client_with_token(created["secret"].as_str().expect("secret"));
    let notifying = body!({"image": "busybox", "command": "true",
                           "notify_url": "http://127.0.0.1:9/done"});

    let refused = problem(
        app.post_as(&carol, "/v1/submissions", &notifying).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let batch = problem(
        app.post_as(
            &carol,
            "/v1/submissions/batch",
            &body!({"submissions": [
                {"image": "busybox", "command": "true"},
                notifying.clone(),
            ]}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;

    assert_eq!(fields(&refused), ["notify_url"], "{refused}");
    let reason = refused["errors"][0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("no webhook secret"), "{refused}");
    assert_eq!(fields(&batch), ["submissions[1].notify_url"], "{batch}");
    let stored = json(app.get_as(&carol, "/v1/submissions").await, StatusCode::OK).await;
    assert_eq!(stored["items"], body!([]), "nothing stored");
    app.post_as(
        &carol,
        "/v1/submissions",
        &body!({"image": "busybox", "command": "true"}),
    )
    .await
    .error_for_status()
    .expect("submitted without a notify_url");
}
on_both_databases!(a_token_without_a_webhook_secret_cannot_ask_for_notifications);
