//! The web console in a real headless Chromium, driven through ChromeDriver
//! (the W3C WebDriver protocol, spoken over HTTP here): sign in with a
//! token, delete a product from the delete screen after reading its plan,
//! find it in the trash, restore it after reading the preview, and check the
//! database after each step.
//!
//! Needs Debian's `chromium` and `chromium-driver`
//! (`scripts/install-browser.sh`, which `.ci/run` calls) and PostgreSQL;
//! skipped locally without them, a failure under CI (`CI=true`).

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};
use sqlx::Row;

/// The W3C WebDriver key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

struct Driver {
    child: Child,
    base: String,
    session: String,
    http: reqwest::Client,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

impl Driver {
    async fn start() -> Option<Driver> {
        let (Some(chromium), Some(driver)) = (which("chromium"), which("chromedriver")) else {
            return skip(
                "chromium and chromedriver are not installed (scripts/install-browser.sh)",
            );
        };
        let port = free_port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let start = Instant::now();
        while http.get(format!("{base}/status")).send().await.is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = std::env::temp_dir().join(format!("lethe-e2e-{port}"));
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                // Headless as root on a closed network: no sandbox, no GPU,
                // no background connections that the machine refuses.
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                         "--no-first-run", "--disable-background-networking",
                         "--disable-component-update", "--disable-sync",
                         "--disable-dev-shm-usage", "--window-size=1280,900",
                         format!("--user-data-dir={}", profile.display())]
            }
        }}});
        let mut d = Driver {
            child,
            base,
            session: String::new(),
            http,
        };
        let v = d.call(reqwest::Method::POST, "/session", Some(caps)).await;
        d.session = v["sessionId"].as_str().expect("session id").to_string();
        Some(d)
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = if path == "/session" {
            format!("{}{path}", self.base)
        } else {
            format!("{}/session/{}{path}", self.base, self.session)
        };
        let res = self
            .http
            .request(method, url)
            .json(&body.unwrap_or(json!({})))
            .send()
            .await
            .expect("webdriver");
        let v: Value = res.json().await.expect("webdriver json");
        v["value"].clone()
    }

    async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    /// Waits for an element matching `css` (and containing `text`).
    async fn find(&self, css: &str, text: &str) -> String {
        let start = Instant::now();
        loop {
            let v = self
                .call(
                    reqwest::Method::POST,
                    "/elements",
                    Some(json!({"using": "css selector", "value": css})),
                )
                .await;
            for e in v.as_array().cloned().unwrap_or_default() {
                // The W3C key; older drivers answer with `ELEMENT`.
                let id = e[ELEMENT]
                    .as_str()
                    .or_else(|| e["ELEMENT"].as_str())
                    .unwrap_or_default()
                    .to_string();
                if text.is_empty() || self.text(&id).await.contains(text) {
                    return id;
                }
            }
            if start.elapsed() > Duration::from_secs(20) {
                let body = self
                    .call(
                        reqwest::Method::POST,
                        "/execute/sync",
                        Some(json!({"script": "return document.body.innerText", "args": []})),
                    )
                    .await;
                panic!("no element {css} with \"{text}\"; the page says:\n{body}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn text(&self, id: &str) -> String {
        self.call(reqwest::Method::GET, &format!("/element/{id}/text"), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    async fn click(&self, css: &str, text: &str) {
        let id = self.find(css, text).await;
        self.call(reqwest::Method::POST, &format!("/element/{id}/click"), None)
            .await;
    }

    async fn type_in(&self, css: &str, value: &str) {
        let id = self.find(css, "").await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            Some(json!({"text": value})),
        )
        .await;
    }

    async fn quit(&self) {
        self.call(reqwest::Method::DELETE, "", None).await;
    }
}

fn which(name: &str) -> Option<String> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| format!("{d}/{name}"))
        .find(|p| std::path::Path::new(p).is_file())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_then_restore_a_product_from_the_console() {
    let Some(db) = PgDb::create(SCHEMA).await else {
        return;
    };
    let engine = db.engine(POLICY).await;
    let token = engine
        .token_create(
            "console-operator",
            lethe_store::Role::Operator,
            Some("test"),
        )
        .await
        .unwrap();
    let server = Server::start(engine, Default::default()).await;
    let Some(browser) = Driver::start().await else {
        server.stop().await;
        return;
    };
    let pool = db.pool().await;
    let state = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query(sql)
                .fetch_one(&pool)
                .await
                .unwrap()
                .get::<i64, _>(0)
        }
    };

    // Sign in.
    browser.goto(&format!("{}/", server.base)).await;
    browser.type_in("#token", &token).await;
    browser.click("#sign-in", "").await;
    browser.find("#who", "console-operator").await;
    // The overview: a bar per entity.
    let chart = browser.find("[data-testid=chart]", "products").await;
    let chart = browser.text(&chart).await;
    assert!(!chart.contains("[object"), "{chart}");
    assert!(chart.contains("20 / 0 / 0"), "{chart}");

    // Delete product 7 from the delete screen: the plan comes first.
    browser
        .goto(&format!("{}/#/delete?entity=products&key=7", server.base))
        .await;
    browser.click("#plan", "").await;
    let plan = browser.find("[data-testid=delete-plan]", "").await;
    let plan = browser.text(&plan).await;
    assert!(plan.contains("1 products"), "{plan}");
    assert!(plan.contains("1 cart_items"), "{plan}");
    assert_eq!(
        state("SELECT count(*) FROM products WHERE id = 7 AND deleted_at IS NOT NULL").await,
        0,
        "the plan changed nothing"
    );
    browser.type_in("#delete-reason", "recalled").await;
    browser.click("#confirm-delete", "").await;
    browser.find("[data-testid=notice]", "Deleted").await;
    assert_eq!(
        state("SELECT count(*) FROM products WHERE id = 7 AND deleted_at IS NOT NULL").await,
        1
    );
    assert_eq!(
        state("SELECT count(*) FROM cart_items WHERE id = 107").await,
        0
    );
    let actor: String = sqlx::query(
        "SELECT entry::json->>'actor' FROM lethe.audit WHERE action = 'delete' ORDER BY seq DESC LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap()
    .get(0);
    assert_eq!(actor, "console-operator");

    // It is in the trash; restore it after reading what comes back.
    browser
        .goto(&format!("{}/#/trash/products", server.base))
        .await;
    browser.find("tr[data-key='7']", "").await;
    browser.click("tr[data-key='7'] button.restore", "").await;
    browser
        .find("[data-testid=restore-plan]", "1 products, 1 cart_items")
        .await;
    browser.click("#dialog-ok", "Restore").await;
    browser.find("[data-testid=notice]", "Restored").await;
    assert_eq!(
        state("SELECT count(*) FROM products WHERE id = 7 AND deleted_at IS NULL").await,
        1
    );
    assert_eq!(
        state("SELECT count(*) FROM cart_items WHERE id = 107").await,
        1
    );
    browser
        .goto(&format!("{}/#/trash/products", server.base))
        .await;
    browser.find("[data-testid=trash-empty]", "").await;

    browser.quit().await;
    server.stop().await;
}
