//! What browsers need: CORS for dashboards on other origins, and
//! compressed answers that decode to the same JSON.

mod common;

use std::io::Read;

use serde_json::json;
use server::auth::Role;

use common::{TestDb, TestServer};

const DASHBOARD: &str = "https://dash.example.com";
const QUERY: &str = "{ models(first: 5) { totalCount nodes { modelId modelName status } } }";

async fn with_cors(test_db: &TestDb, origins: &[&str]) -> TestServer {
    let mut config = test_db.config();
    config.serve.cors.cors_origins = origins.iter().map(|o| o.to_string()).collect();
    TestServer::start(config).await
}

fn preflight(server: &TestServer, origin: &str) -> reqwest::RequestBuilder {
    server
        .client
        .request(reqwest::Method::OPTIONS, server.url("/graphql"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
}

/// A header's values, joined as one list (`Vary` comes once per layer).
fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    let values: Vec<&str> = response
        .headers()
        .get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    (!values.is_empty()).then(|| values.join(", "))
}

/// A client that decodes nothing, so the test sees the encoded bytes.
fn raw_client() -> reqwest::Client {
    reqwest::Client::builder().build().unwrap()
}

fn decode(encoding: &str, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match encoding {
        "gzip" => {
            flate2::read::GzDecoder::new(bytes)
                .read_to_end(&mut out)
                .unwrap();
        }
        "br" => {
            brotli::Decompressor::new(bytes, 4096)
                .read_to_end(&mut out)
                .unwrap();
        }
        "zstd" => out = zstd::decode_all(bytes).unwrap(),
        other => panic!("unexpected encoding {other}"),
    }
    out
}

backend_tests! {
    async fn preflight_and_request_from_an_allowed_origin(test_db: TestDb) {
        let key = test_db.key("acme", Role::Viewer).await;
        let server = with_cors(&test_db, &[DASHBOARD, "http://localhost:3000"]).await;

        let answer = preflight(&server, DASHBOARD).send().await.unwrap();
        assert!(answer.status().is_success(), "preflight: {}", answer.status());
        assert_eq!(header(&answer, "access-control-allow-origin").as_deref(), Some(DASHBOARD));
        let methods = header(&answer, "access-control-allow-methods").unwrap();
        assert!(methods.contains("POST") && methods.contains("GET"), "{methods}");
        let headers = header(&answer, "access-control-allow-headers").unwrap().to_lowercase();
        assert!(headers.contains("authorization") && headers.contains("content-type"), "{headers}");
        assert_eq!(header(&answer, "access-control-max-age").as_deref(), Some("600"));
        assert!(header(&answer, "vary").unwrap().to_lowercase().contains("origin"));
        assert_eq!(header(&answer, "access-control-allow-credentials"), None);

        let answer = server
            .client
            .post(server.url("/graphql"))
            .header("origin", DASHBOARD)
            .bearer_auth(&key)
            .json(&json!({ "query": "{ me { tenant } }" }))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        assert_eq!(header(&answer, "access-control-allow-origin").as_deref(), Some(DASHBOARD));
        let exposed = header(&answer, "access-control-expose-headers").unwrap().to_lowercase();
        assert!(exposed.contains("retry-after") && exposed.contains("x-request-id"), "{exposed}");
        assert!(header(&answer, "vary").unwrap().to_lowercase().contains("origin"));
        let body: serde_json::Value = answer.json().await.unwrap();
        assert_eq!(body["data"]["me"]["tenant"], "acme");

        // Probes are not for browsers: no CORS headers there.
        let answer = server.client.get(server.url("/health")).header("origin", DASHBOARD).send().await.unwrap();
        assert_eq!(header(&answer, "access-control-allow-origin"), None);
        server.stop().await;
    }

    async fn other_origins_get_no_cors_headers(test_db: TestDb) {
        let key = test_db.key("acme", Role::Viewer).await;
        let server = with_cors(&test_db, &[DASHBOARD]).await;
        let answer = preflight(&server, "https://evil.example").send().await.unwrap();
        assert_eq!(header(&answer, "access-control-allow-origin"), None);
        // The browser refuses the call without the header; the server still
        // answers a direct request as it always has.
        let answer = server
            .client
            .post(server.url("/graphql"))
            .header("origin", "https://evil.example")
            .bearer_auth(&key)
            .json(&json!({ "query": "{ me { tenant } }" }))
            .send()
            .await
            .unwrap();
        assert_eq!(header(&answer, "access-control-allow-origin"), None);
        server.stop().await;

        // No origin configured (the default): OPTIONS is not a GraphQL method.
        let server = TestServer::start(test_db.config()).await;
        let answer = preflight(&server, DASHBOARD).send().await.unwrap();
        assert_eq!(answer.status(), 405);
        assert_eq!(header(&answer, "access-control-allow-origin"), None);
        server.stop().await;
    }

    async fn any_origin_without_credentials(test_db: TestDb) {
        let server = with_cors(&test_db, &["*"]).await;
        let answer = preflight(&server, "https://anywhere.example").send().await.unwrap();
        assert!(answer.status().is_success());
        assert_eq!(header(&answer, "access-control-allow-origin").as_deref(), Some("*"));
        server.stop().await;

        let mut config = test_db.config();
        config.serve.cors.cors_origins = vec!["*".into()];
        config.serve.cors.cors_allow_credentials = true;
        let refused = server::Application::build(config).await.err().expect("refused");
        assert!(refused.to_string().contains("credentials"), "{refused}");
    }

    async fn compressed_answers_decode_to_the_same_json(test_db: TestDb) {
        let key = test_db.key("acme", Role::Viewer).await;
        let server = TestServer::start(test_db.config()).await;
        let client = raw_client();
        let send = |encoding: Option<&'static str>| {
            let mut request = client
                .post(server.url("/graphql"))
                .bearer_auth(&key)
                .json(&json!({ "query": QUERY }));
            if let Some(encoding) = encoding {
                request = request.header("accept-encoding", encoding);
            }
            request.send()
        };
        let plain = send(None).await.unwrap();
        assert_eq!(header(&plain, "content-encoding"), None);
        let plain: serde_json::Value = serde_json::from_slice(&plain.bytes().await.unwrap()).unwrap();
        assert!(plain["data"]["models"]["totalCount"].is_number(), "{plain}");
        for encoding in ["gzip", "br", "zstd"] {
            let answer = send(Some(encoding)).await.unwrap();
            assert_eq!(answer.status(), 200);
            assert_eq!(header(&answer, "content-encoding").as_deref(), Some(encoding));
            let bytes = answer.bytes().await.unwrap();
            let decoded: serde_json::Value = serde_json::from_slice(&decode(encoding, &bytes)).unwrap();
            assert_eq!(decoded, plain, "{encoding}");
        }
        // The playground's page is compressed too.
        let page = client.get(server.url("/")).header("accept-encoding", "gzip").send().await.unwrap();
        assert_eq!(header(&page, "content-encoding").as_deref(), Some("gzip"));
        let html = decode("gzip", &page.bytes().await.unwrap());
        assert!(String::from_utf8(html).unwrap().contains("<html"));
        server.stop().await;
    }

    async fn websocket_handshakes_are_never_compressed(test_db: TestDb) {
        use futures_util::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};
        let key = test_db.key("acme", Role::Viewer).await;
        let server = TestServer::start(test_db.config()).await;
        // On /graphql itself, where a GET may be an upgrade.
        let mut request = server.url("/graphql").replace("http://", "ws://").into_client_request().unwrap();
        request.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse().unwrap());
        request.headers_mut().insert("accept-encoding", "gzip, br".parse().unwrap());
        let (mut socket, handshake) = tokio_tungstenite::connect_async(request).await.unwrap();
        assert_eq!(handshake.headers().get("content-encoding"), None);
        socket
            .send(Message::text(json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {key}")}}).to_string()))
            .await
            .unwrap();
        let ack = socket.next().await.unwrap().unwrap();
        assert!(ack.to_text().unwrap().contains("connection_ack"), "{ack:?}");
        server.stop().await;
    }
}

/// Serves one blank HTML page on a free loopback port, as another origin.
async fn page_server() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = [0u8; 4096];
                let _ = stream.read(&mut buffer).await;
                let body = "<!doctype html><html><body>dashboard</body></html>";
                let _ = stream
                    .write_all(
                        format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        )
                        .as_bytes(),
                    )
                    .await;
            });
        }
    });
    origin
}

/// Debian's Chromium, headless, calls `/graphql` from two other origins:
/// the allowed one gets the answer (and can read `x-request-id`), the
/// other is stopped by the browser itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_on_another_origin_calls_only_when_allowed() {
    let Some(clients) = common::node_clients("playwright-core") else {
        return;
    };
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !std::path::Path::new(&chromium).exists() {
        assert!(std::env::var("CI").is_err(), "CI must install chromium");
        eprintln!("skipping: {chromium} not found (apt-get install chromium)");
        return;
    }
    let (allowed, refused) = (page_server().await, page_server().await);
    let test_db = TestDb::sqlite().await;
    let key = test_db.key("acme", Role::Analyst).await;
    let server = with_cors(&test_db, &[&allowed]).await;
    let output = tokio::process::Command::new("node")
        .arg(clients.join("cors-e2e.mjs"))
        .args([&server.url("/graphql"), &key, &allowed, &refused])
        .env("CHROMIUM", &chromium)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(summary["allowed"]["status"], 200, "{summary}");
    assert_eq!(summary["allowed"]["body"]["data"]["me"]["tenant"], "acme");
    assert!(summary["allowed"]["requestId"].is_string(), "{summary}");
    assert!(
        summary["refused"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("Failed to fetch")),
        "{summary}"
    );
    server.stop().await;
}
