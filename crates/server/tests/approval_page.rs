//! The one-time approval page (CONTRACT §3.6): a real headless Chromium (Debian's `chromium`
//! and `chromium-driver`, installed by `scripts/install-test-deps`) driven through WebDriver
//! opens the page, reads the diff and clicks Approve or Reject; a plain HTTP client forges POSTs
//! (no CSRF token, a wrong one, no cookie, another Host) that change nothing; spent, expired and
//! cancelled pages are refused and removed.
//!
//! Set KUBECODE_SKIP_BROWSER=1 to skip the browser test where Chromium cannot be installed.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use fantoccini::{ClientBuilder, Locator};
use server::{ApprovalPages, PageDecision, PageError, PendingApproval, Review, ReviewChange};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot::error::TryRecvError;

const DIFF: &str = "--- Deployment shop/web (now)
+++ Deployment shop/web (planned)
@@ -12,3 +12,3 @@
       annotations:
-        kubectl.kubernetes.io/restartedAt: \"2026-11-29T10:00:00Z\"
+        kubectl.kubernetes.io/restartedAt: \"2026-11-30T13:40:00Z\"
       image: shop/web:1.4.2";

/// Plan text is attacker-influenced: this object name must show as text, never as markup.
const HOSTILE: &str = "Pod shop/<script>alert(\"x\")</script>&amp;<b>bold</b>";

fn review(plan_id: &str, expires_in: Duration) -> Review {
    Review {
        plan_id: plan_id.to_string(),
        requested_by: "session 7f3a (http)".to_string(),
        expires_at: Utc::now() + expires_in,
        changes: vec![
            ReviewChange {
                object: "Deployment shop/web".to_string(),
                action: "restart".to_string(),
                diff: DIFF.to_string(),
            },
            ReviewChange {
                object: HOSTILE.to_string(),
                action: "deletePod".to_string(),
                diff:
                    "-<img src=x onerror=alert(1)>\n+</pre><form action=\"https://evil.example\">"
                        .to_string(),
            },
        ],
    }
}

/// Pages served the way the HTTP transport serves them: `router()` merged into a listener's
/// router, base set to that listener's URL once bound.
async fn http_transport_pages() -> Arc<ApprovalPages> {
    let pages = Arc::new(ApprovalPages::new(None));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    pages.set_base(&format!("http://{addr}")).unwrap();
    let app = axum::Router::new()
        .route("/healthz", axum::routing::get(|| async { "ok\n" }))
        .merge(pages.router());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    pages
}

/// `(host:port, path)` of an http URL.
fn split_url(url: &str) -> (String, String) {
    let rest = url.strip_prefix("http://").unwrap();
    let slash = rest.find('/').unwrap();
    (rest[..slash].to_string(), rest[slash..].to_string())
}

struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

/// A plain HTTP/1.1 client: exactly the request a forger would send.
async fn send(url: &str, method: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    let (authority, path) = split_url(url);
    let mut request = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        request.push_str(&format!("Host: {authority}\r\n"));
    }
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    if method == "POST" {
        request.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    request.push_str("\r\n");
    request.push_str(body);
    let mut stream = tokio::net::TcpStream::connect(&authority).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    Answer {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}

/// The page's CSRF field value and its cookie pair, as a browser would hold them after GET.
fn form_secrets(answer: &Answer) -> (String, String) {
    let marker = "name=\"csrf\" value=\"";
    let start = answer.body.find(marker).unwrap() + marker.len();
    let end = start + answer.body[start..].find('"').unwrap();
    let csrf = answer.body[start..end].to_string();
    let set_cookie = answer.header("set-cookie").unwrap();
    let pair = set_cookie.split(';').next().unwrap().to_string();
    (csrf, pair)
}

fn assert_nothing_decided(pending: &mut PendingApproval) {
    assert!(
        matches!(pending.decision.try_recv(), Err(TryRecvError::Empty)),
        "a refused request must not decide the plan"
    );
}

async fn decision(pending: PendingApproval) -> PageDecision {
    tokio::time::timeout(Duration::from_secs(10), pending.decision)
        .await
        .expect("no decision within 10 s")
        .expect("the page dropped its sender without a decision")
}

#[tokio::test]
async fn forged_posts_change_nothing_and_a_page_decides_once() {
    let pages = http_transport_pages().await;
    let mut pending = pages
        .offer(review("plan-4711", Duration::from_secs(600)))
        .await
        .unwrap();
    let url = pending.url.clone();
    let token = url.rsplit('/').next().unwrap();
    assert!(url.starts_with(pages.base().unwrap()));
    assert!(!url.contains("4711"), "the URL must not carry the plan id");
    assert!(token.len() >= 43, "token {token:?} is too short");

    // The page: the plan's text, escaped, and the strict headers.
    let get = send(&url, "GET", &[], "").await;
    assert_eq!(get.status, 200, "{}", get.body);
    assert!(get.body.contains("plan-4711"));
    assert!(get.body.contains("session 7f3a (http)"));
    // The diff as text once the entities are decoded; the markup itself carries no foreign tag.
    let text = html_escape::decode_html_entities(&get.body);
    for line in DIFF.lines() {
        assert!(text.contains(line), "{line:?} missing from\n{text}");
    }
    assert!(text.contains(HOSTILE));
    assert!(!get.body.contains("<script"), "{}", get.body);
    assert!(!get.body.contains("<img"), "{}", get.body);
    assert!(!get.body.contains("<b>bold"), "{}", get.body);
    assert!(!get.body.contains("action=\"https://evil"), "{}", get.body);
    assert!(get.body.contains("&lt;script&gt;"));
    assert!(get.body.contains("&amp;amp;"));
    let csp = get.header("content-security-policy").unwrap();
    for directive in [
        "default-src 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(get.header("x-frame-options").as_deref(), Some("DENY"));
    assert!(get.header("cache-control").unwrap().contains("no-store"));
    assert_eq!(
        get.header("referrer-policy").as_deref(),
        Some("no-referrer")
    );
    let set_cookie = get.header("set-cookie").unwrap();
    for attribute in [
        "HttpOnly",
        "SameSite=Strict",
        &format!("Path=/approve/{token}"),
    ] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    let (csrf, cookie) = form_secrets(&get);
    assert!(csrf.len() >= 43);

    // A browser that was sent here by DNS rebinding names another host.
    let rebound = send(&url, "GET", &[("Host", "evil.example")], "").await;
    assert_eq!(rebound.status, 403, "{}", rebound.body);
    assert_nothing_decided(&mut pending);

    let approve = format!("csrf={csrf}&decision=approve");
    // (what is wrong, headers, form body)
    type Forged<'a> = (&'a str, Vec<(&'a str, &'a str)>, String);
    let forged: Vec<Forged> = vec![
        (
            "no token, no cookie",
            vec![],
            "decision=approve".to_string(),
        ),
        (
            "no token",
            vec![("Cookie", cookie.as_str())],
            "decision=approve".to_string(),
        ),
        (
            "wrong token",
            vec![("Cookie", cookie.as_str())],
            format!("csrf={}&decision=approve", "A".repeat(csrf.len())),
        ),
        ("no cookie", vec![], approve.clone()),
        (
            "wrong cookie",
            vec![(
                "Cookie",
                "kubecode_approval=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            )],
            approve.clone(),
        ),
        (
            "another site's Origin",
            vec![
                ("Cookie", cookie.as_str()),
                ("Origin", "https://evil.example"),
            ],
            approve.clone(),
        ),
        (
            "another Host",
            vec![("Cookie", cookie.as_str()), ("Host", "evil.example:80")],
            approve.clone(),
        ),
        (
            "token of another page's form, right cookie",
            vec![("Cookie", cookie.as_str())],
            format!("csrf={token}&decision=approve"),
        ),
    ];
    for (what, headers, body) in &forged {
        let answer = send(&url, "POST", headers, body).await;
        assert_eq!(answer.status, 403, "{what}: {}", answer.body);
        assert!(answer.body.contains("Nothing was changed"), "{what}");
        assert_nothing_decided(&mut pending);
    }
    // The right secrets without a decision decide nothing either.
    let undecided = send(
        &url,
        "POST",
        &[("Cookie", cookie.as_str())],
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(undecided.status, 400, "{}", undecided.body);
    assert_nothing_decided(&mut pending);

    // The page's own form, as a browser submits it.
    let origin = pages.base().unwrap().to_string();
    let ok = send(
        &url,
        "POST",
        &[("Cookie", cookie.as_str()), ("Origin", origin.as_str())],
        &approve,
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert!(ok.body.contains("Approved"));
    assert_eq!(decision(pending).await, PageDecision::Approved);

    // Spent: a second POST changes nothing, a second GET says it was decided.
    let again = send(&url, "POST", &[("Cookie", cookie.as_str())], &approve).await;
    assert_eq!(again.status, 409, "{}", again.body);
    let reject = format!("csrf={csrf}&decision=reject");
    let again = send(&url, "POST", &[("Cookie", cookie.as_str())], &reject).await;
    assert_eq!(again.status, 409, "{}", again.body);
    let revisit = send(&url, "GET", &[], "").await;
    assert_eq!(revisit.status, 409);
    assert!(
        revisit.body.contains("already approved"),
        "{}",
        revisit.body
    );
    assert!(
        !revisit.body.contains("csrf"),
        "a spent page offers no form"
    );

    // An unknown token is not a page.
    let unknown = send(
        &format!("{}/approve/{}", pages.base().unwrap(), "B".repeat(43)),
        "GET",
        &[],
        "",
    )
    .await;
    assert_eq!(unknown.status, 404);
}

#[tokio::test]
async fn expiry_sends_expired_and_removes_the_page() {
    // Under stdio: no base, so the first offer starts the loopback listener.
    let pages = ApprovalPages::new(None);
    assert!(matches!(
        pages
            .offer(Review {
                expires_at: Utc::now() - chrono::TimeDelta::seconds(1),
                ..review("plan-old", Duration::ZERO)
            })
            .await,
        Err(PageError::AlreadyExpired(_))
    ));
    let pending = pages
        .offer(review("plan-short", Duration::from_millis(1500)))
        .await
        .unwrap();
    let url = pending.url.clone();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let get = send(&url, "GET", &[], "").await;
    assert_eq!(get.status, 200);
    let (csrf, cookie) = form_secrets(&get);
    assert_eq!(pages.open_pages(), 1);

    assert_eq!(decision(pending).await, PageDecision::Expired);
    assert_eq!(pages.open_pages(), 0, "an expired page must be removed");
    let late = send(
        &url,
        "POST",
        &[("Cookie", cookie.as_str())],
        &format!("csrf={csrf}&decision=approve"),
    )
    .await;
    assert_eq!(late.status, 404, "{}", late.body);
    assert_eq!(send(&url, "GET", &[], "").await.status, 404);

    // The same listener serves later pages.
    let next = pages
        .offer(review("plan-next", Duration::from_secs(60)))
        .await
        .unwrap();
    assert_eq!(split_url(&next.url).0, split_url(&url).0);
}

#[tokio::test]
async fn a_cancelled_request_removes_its_page_and_decided_pages_go_at_expiry() {
    let pages = http_transport_pages().await;
    let pending = pages
        .offer(review("plan-cancelled", Duration::from_secs(600)))
        .await
        .unwrap();
    let url = pending.url.clone();
    let get = send(&url, "GET", &[], "").await;
    let (csrf, cookie) = form_secrets(&get);
    drop(pending.decision);
    for _ in 0..50 {
        if pages.open_pages() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(pages.open_pages(), 0, "a cancelled request's page must go");
    let post = send(
        &url,
        "POST",
        &[("Cookie", cookie.as_str())],
        &format!("csrf={csrf}&decision=approve"),
    )
    .await;
    assert_eq!(post.status, 404, "{}", post.body);

    // A decided page is kept (to say it was decided) only until the plan's expiry.
    let pending = pages
        .offer(review("plan-rejected", Duration::from_secs(2)))
        .await
        .unwrap();
    let url = pending.url.clone();
    let get = send(&url, "GET", &[], "").await;
    let (csrf, cookie) = form_secrets(&get);
    let post = send(
        &url,
        "POST",
        &[("Cookie", cookie.as_str())],
        &format!("csrf={csrf}&decision=reject"),
    )
    .await;
    assert_eq!(post.status, 200, "{}", post.body);
    assert_eq!(decision(pending).await, PageDecision::Rejected);
    assert_eq!(pages.open_pages(), 1);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(pages.open_pages(), 0, "a decided page must go at expiry");
}

/// chromedriver on a free loopback port, killed when dropped; it and the browser keep their
/// temporary files in `_tmp`, removed when dropped.
struct Driver {
    url: String,
    _child: tokio::process::Child,
    _tmp: tempfile::TempDir,
}

async fn start_driver() -> Option<Driver> {
    let found = |name: &str| {
        std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
    };
    if !found("chromedriver") || !found("chromium") {
        if std::env::var_os("KUBECODE_SKIP_BROWSER").is_some() {
            eprintln!(
                "skipping the browser test: chromium or chromedriver is not installed and KUBECODE_SKIP_BROWSER is set"
            );
            return None;
        }
        panic!(
            "chromium and chromedriver are needed: run scripts/install-test-deps (Debian's chromium and chromium-driver), or set KUBECODE_SKIP_BROWSER=1 where they cannot be installed"
        );
    }
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let tmp = tempfile::tempdir().unwrap();
    let child = tokio::process::Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .env("TMPDIR", tmp.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Some(Driver {
                url: format!("http://127.0.0.1:{port}"),
                _child: child,
                _tmp: tmp,
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not listen on port {port} within 10 s");
}

async fn browser(driver: &Driver) -> fantoccini::Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".to_string(),
        serde_json::json!({
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu"],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .unwrap()
}

/// Opens the page, reads the plan and its diff as a person sees them, clicks `button`.
async fn click_through(client: &fantoccini::Client, url: &str, button: &str) -> String {
    client.goto(url).await.unwrap();
    let diffs = client.find_all(Locator::Css("pre.diff")).await.unwrap();
    assert_eq!(diffs.len(), 2);
    let diff = diffs[0].text().await.unwrap();
    assert!(
        diff.contains("+        kubectl.kubernetes.io/restartedAt: \"2026-11-30T13:40:00Z\""),
        "{diff}"
    );
    assert!(
        diff.contains("-        kubectl.kubernetes.io/restartedAt: \"2026-11-29T10:00:00Z\""),
        "{diff}"
    );
    let objects = client.find_all(Locator::Css(".object")).await.unwrap();
    assert_eq!(objects[0].text().await.unwrap(), "Deployment shop/web");
    // Hostile plan text shows as the text it is: no script, image or foreign form on the page.
    assert_eq!(objects[1].text().await.unwrap(), HOSTILE);
    assert!(
        diffs[1]
            .text()
            .await
            .unwrap()
            .contains("-<img src=x onerror=alert(1)>")
    );
    for tag in ["script", "img", "b"] {
        assert!(
            client.find_all(Locator::Css(tag)).await.unwrap().is_empty(),
            "a <{tag}> element was injected"
        );
    }
    assert_eq!(
        client.find_all(Locator::Css("form")).await.unwrap().len(),
        1
    );
    let requested = client.find(Locator::Id("requested-by")).await.unwrap();
    assert_eq!(requested.text().await.unwrap(), "session 7f3a (http)");
    client
        .find(Locator::Css(&format!("button[value={button}]")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Id("outcome"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_browser_reads_the_diff_and_approves_or_rejects() {
    let Some(driver) = start_driver().await else {
        return;
    };
    let client = browser(&driver).await;
    // The scenario runs as its own task so that the browser session is closed (and the browser
    // gone) even when an assertion fails.
    let scenario = tokio::spawn(browser_scenario(client.clone())).await;
    client.close().await.unwrap();
    if let Err(e) = scenario {
        std::panic::resume_unwind(e.into_panic());
    }
}

async fn browser_scenario(client: fantoccini::Client) {
    // Under stdio (the loopback listener): Approve.
    let stdio_pages = ApprovalPages::new(None);
    let pending = stdio_pages
        .offer(review("plan-browser-1", Duration::from_secs(300)))
        .await
        .unwrap();
    let url = pending.url.clone();
    let outcome = click_through(&client, &url, "approve").await;
    assert!(outcome.starts_with("Approved"), "{outcome}");
    assert_eq!(decision(pending).await, PageDecision::Approved);
    // Back on the link: spent.
    client.goto(&url).await.unwrap();
    let body = client
        .find(Locator::Css("body"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains("already approved"), "{body}");
    assert!(
        client
            .find_all(Locator::Css("button"))
            .await
            .unwrap()
            .is_empty()
    );

    // Under the HTTP transport (routes merged into its router): Reject.
    let http_pages = http_transport_pages().await;
    let pending = http_pages
        .offer(review("plan-browser-2", Duration::from_secs(300)))
        .await
        .unwrap();
    let outcome = click_through(&client, &pending.url, "reject").await;
    assert!(outcome.starts_with("Rejected"), "{outcome}");
    assert_eq!(decision(pending).await, PageDecision::Rejected);
}
