//! Mail notifications: an SMTP server written in the test (`mail/smtp.rs`) receives what
//! the mail channel sends through the delivery worker.

mod smtp;

use std::sync::Arc;
use std::time::{Duration, Instant};

use casefile::config::MailConfig;
use casefile::delivery::{self, Config, Handler};
use casefile::mail::Mailer;
use casefile::mail::channel::{self, Retry};
use casefile::models::delivery as cursors;
use casefile::models::ids::TenantId;
use casefile::models::tenants::License;
use casefile::models::users::Role;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::common::TestApp;
use crate::common::fixtures::{error_code, error_field};
use smtp::Receiver;

const FROM: &str = "casefile <alerts@casefile.test>";
const SETTINGS: &str = "tenant { notificationSettings { caseCreatedRecipients assignmentMail } }";

struct MailWorker {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl MailWorker {
    async fn stop(self) {
        let _ = self.stop.send(true);
        self.task.await.expect("the worker ends cleanly");
    }
}

/// The mail channel and a delivery worker for `app`, sending to `smtp`, retrying fast.
async fn start_mail(app: &TestApp, smtp: &Receiver) -> MailWorker {
    let (stop, stop_rx) = watch::channel(false);
    let config = MailConfig { smtp_url: Some(smtp.url()), smtp_from: FROM.to_owned() };
    let mailer = Mailer::from_config(&config).expect("config").expect("mail on");
    let retry = Retry { base: Duration::from_millis(50), cap: Duration::from_millis(400) };
    let handler = channel::start(&app.db, Some(mailer), retry, stop_rx.clone())
        .await
        .expect("mail channel")
        .expect("a handler");
    let handlers: Vec<Arc<dyn Handler>> = vec![handler];
    let config = Config { poll: Duration::from_millis(500), ..Config::default() };
    let task = delivery::spawn(app.db.clone(), app.events.wakeups(), handlers, config, stop_rx)
        .expect("a worker");
    MailWorker { stop, task }
}

async fn set_settings(app: &TestApp, token: &str, input: Value) -> Value {
    app.mutate(token, "updateNotificationSettings", input, SETTINGS).await
}

/// A case created as `token`; returns its number.
async fn case(app: &TestApp, token: &str, input: Value) -> i64 {
    app.create_case(token, input).await["number"].as_i64().expect("number")
}

fn detection(id: &str, score: i32, host: &str) -> Value {
    json!({
        "externalId": id, "source": "XDR", "ruleName": "Credential dumping",
        "observedAt": "2026-11-20T10:00:00Z", "riskScore": score,
        "device": { "hostname": host }, "actor": "alice@example.test",
    })
}

async fn user_email(app: &TestApp, tenant: TenantId, id: casefile::models::ids::UserId) -> String {
    let mut conn = app.conn().await;
    casefile::models::users::find(&mut conn, tenant, id).await.expect("q").expect("user").email
}

#[tokio::test]
async fn case_creation_mails_the_recipients_the_case_facts_escaped_and_without_links() {
    let app = TestApp::new().await;
    let smtp = Receiver::start().await;
    let body = set_settings(
        &app,
        &app.admin_token,
        json!({ "caseCreatedRecipients": ["soc@example.com", "Lead@Example.com", "lead@example.com"] }),
    )
    .await;
    assert_eq!(
        body["data"]["updateNotificationSettings"]["tenant"]["notificationSettings"],
        json!({ "caseCreatedRecipients": ["soc@example.com", "Lead@Example.com"], "assignmentMail": "ALL" })
    );
    let policies = json!({ "autoCaseEnabled": false });
    let body =
        app.mutate(&app.admin_token, "updateTenantPolicies", policies, "tenant { id }").await;
    assert!(body.get("errors").is_none(), "{body}");
    let worker = start_mail(&app, &smtp).await;
    let ids = app
        .ingest(
            &app.admin_token,
            vec![
                detection("m-1", 9, "<b>db-01</b>"),
                detection("m-2", 5, "web-02"),
                detection("m-3", 2, "web-02"),
            ],
        )
        .await;
    let number = case(
        &app,
        &app.admin_token,
        json!({ "name": "Lateral movement", "severity": "HIGH", "detectionIds": ids }),
    )
    .await;
    let mails = smtp.wait_for(1).await;
    let mail = &mails[0];
    assert_eq!(mail.recipients(), ["Lead@Example.com", "soc@example.com"]);
    assert_eq!(mail.subject(), format!("[casefile] Case #{number} created: Lateral movement"));
    let text = mail.text();
    for fact in [
        &format!("#{number} Lateral movement"),
        "High",
        "3 (highest severity: Critical)",
        "<b>db-01</b>, web-02",
        "admin@localhost",
    ] {
        assert!(text.contains(fact), "{fact:?} missing in {text}");
    }
    let html = mail.html();
    assert!(html.contains("Lateral"), "{html}");
    assert!(!html.contains("<b>db-01"), "the device name is escaped: {html}");
    assert!(!text.contains("http") && !html.contains("href"), "no links");
    let created = app.events(app.tenant_id).await;
    let event = created.iter().rev().find(|e| e.action == "case.created").expect("event");
    assert_eq!(mail.message_id(), format!("{}.created@casefile.test", event.id));
    worker.stop().await;
}

#[tokio::test]
async fn each_tenant_mails_its_own_recipients_and_a_tenant_without_any_mails_nobody() {
    let app = TestApp::new().await;
    let smtp = Receiver::start().await;
    let other = app.create_tenant("Other", &[]).await;
    let (_, other_admin) = app.create_user(other, Role::Admin).await;
    let quiet = app.create_tenant("Quiet", &[]).await;
    let (_, quiet_admin) = app.create_user(quiet, Role::Admin).await;
    set_settings(&app, &app.admin_token, json!({ "caseCreatedRecipients": ["one@example.com"] }))
        .await;
    set_settings(&app, &other_admin, json!({ "caseCreatedRecipients": ["two@example.com"] })).await;
    let worker = start_mail(&app, &smtp).await;
    case(&app, &quiet_admin, json!({ "name": "Quiet case" })).await;
    case(&app, &app.admin_token, json!({ "name": "First tenant case" })).await;
    case(&app, &other_admin, json!({ "name": "Other tenant case" })).await;
    smtp.wait_for(2).await;
    // The quiet tenant's channel had its event before: a mail of it would be here by now
    // only if sent; give the worker its poll to be sure nothing else comes.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let mails: Vec<(Vec<String>, String)> =
        smtp.mails().iter().map(|m| (m.recipients(), m.subject())).collect();
    assert_eq!(mails.len(), 2, "{mails:?}");
    let first = mails.iter().find(|(to, _)| to == &["one@example.com"]).expect("tenant one's mail");
    assert!(first.1.ends_with("First tenant case"), "{first:?}");
    let second =
        mails.iter().find(|(to, _)| to == &["two@example.com"]).expect("tenant two's mail");
    assert!(second.1.ends_with("Other tenant case"), "{second:?}");
    worker.stop().await;
}

#[tokio::test]
async fn assignment_mail_follows_all_changer_only_and_never() {
    let app = TestApp::new().await;
    let smtp = Receiver::start().await;
    let (first, _) = app.create_user(app.tenant_id, Role::Analyst).await;
    let (second, _) = app.create_user(app.tenant_id, Role::Analyst).await;
    let (first_mail, second_mail) = (
        user_email(&app, app.tenant_id, first).await,
        user_email(&app, app.tenant_id, second).await,
    );
    let gid = |id: casefile::models::ids::UserId| {
        casefile::graphql::ids::encode(casefile::graphql::ids::Kind::User, id.0).0
    };
    let worker = start_mail(&app, &smtp).await;
    let created = app
        .create_case(&app.admin_token, json!({ "name": "Assigned case", "assigneeId": gid(first) }))
        .await;
    let id = created["id"].as_str().expect("id").to_owned();
    let number = created["number"].as_i64().expect("number");
    let mails = smtp.wait_for(1).await;
    assert_eq!(mails[0].recipients(), sorted(&[&first_mail, "admin@localhost"]));
    assert_eq!(
        mails[0].subject(),
        format!("[casefile] Case #{number} assigned to Test user: Assigned case")
    );

    let reassign = |to: casefile::models::ids::UserId| json!({ "id": id, "assigneeId": gid(to) });
    let body = app.mutate(&app.admin_token, "updateCase", reassign(second), "case { id }").await;
    assert!(body.get("errors").is_none(), "{body}");
    let mails = smtp.wait_for(2).await;
    assert_eq!(mails[1].recipients(), sorted(&[&first_mail, &second_mail, "admin@localhost"]));
    let text = mails[1].text();
    assert!(text.contains(&first_mail) && text.contains(&second_mail), "{text}");

    set_settings(&app, &app.admin_token, json!({ "assignmentMail": "CHANGER_ONLY" })).await;
    app.mutate(&app.admin_token, "updateCase", reassign(first), "case { id }").await;
    let mails = smtp.wait_for(3).await;
    assert_eq!(mails[2].recipients(), ["admin@localhost"]);

    set_settings(
        &app,
        &app.admin_token,
        json!({ "assignmentMail": "NEVER", "caseCreatedRecipients": ["soc@example.com"] }),
    )
    .await;
    app.mutate(&app.admin_token, "updateCase", reassign(second), "case { id }").await;
    // A later mail of the same channel: the NEVER change, before it, made none.
    case(&app, &app.admin_token, json!({ "name": "Sentinel" })).await;
    let mails = smtp.wait_for(4).await;
    assert_eq!(mails.len(), 4);
    assert!(mails[3].subject().ends_with("created: Sentinel"), "{}", mails[3].subject());
    worker.stop().await;
}

fn sorted(values: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = values.iter().map(|v| (*v).to_owned()).collect();
    out.sort();
    out
}

#[tokio::test]
async fn service_request_messages_are_mailed_to_the_other_side_only() {
    let app = TestApp::new().await;
    let smtp = Receiver::start().await;
    let tenant = app.create_tenant("Managed", &[License::Mdr]).await;
    let (_, admin) = app.create_user(tenant, Role::Admin).await;
    let (provider, provider_token) = app.create_user(tenant, Role::ProviderAnalyst).await;
    let (gone, _) = app.create_user(tenant, Role::ProviderAnalyst).await;
    let provider_mail = user_email(&app, tenant, provider).await;
    {
        let mut conn = app.conn().await;
        let changes =
            casefile::models::users::UserChanges { active: Some(false), ..Default::default() };
        casefile::models::users::update(&mut conn, tenant, gone, &changes)
            .await
            .expect("deactivate");
    }
    set_settings(&app, &admin, json!({ "caseCreatedRecipients": ["customer@example.com"] })).await;
    let request = app
        .create_case(&admin, json!({ "name": "Please look", "kind": "MDR_SERVICE_REQUEST" }))
        .await;
    let worker = start_mail(&app, &smtp).await;
    let post = |token: String, body: &'static str| {
        let id = request["id"].as_str().expect("id").to_owned();
        let app = &app;
        async move {
            let body = app
                .mutate(
                    &token,
                    "postMessage",
                    json!({ "caseId": id, "body": body }),
                    "message { id }",
                )
                .await;
            assert!(body.get("errors").is_none(), "{body}");
        }
    };
    post(admin.clone(), "Customer says <hello>\nsecond line").await;
    let mails = smtp.wait_for(1).await;
    assert_eq!(mails[0].recipients(), vec![provider_mail]);
    assert!(mails[0].text().contains("Customer says <hello>\nsecond line"), "{}", mails[0].text());
    assert!(!mails[0].html().contains("<hello>"), "{}", mails[0].html());
    post(provider_token, "Provider answers").await;
    let mails = smtp.wait_for(2).await;
    assert_eq!(mails[1].recipients(), ["customer@example.com"]);
    let text = mails[1].text();
    assert!(text.contains("Provider answers") && !text.contains("Customer says"), "{text}");
    worker.stop().await;
}

#[tokio::test]
async fn a_stopped_smtp_server_delays_mail_then_gets_all_of_it_in_order_and_mutations_never_wait() {
    let app = TestApp::new().await;
    let smtp = Receiver::start().await;
    set_settings(&app, &app.admin_token, json!({ "caseCreatedRecipients": ["soc@example.com"] }))
        .await;
    let worker = start_mail(&app, &smtp).await;
    smtp.stop();
    let started = Instant::now();
    for n in 0..3 {
        case(&app, &app.admin_token, json!({ "name": format!("While down {n}") })).await;
    }
    println!("three cases created with the SMTP server down in {:?}", started.elapsed());
    // The channel fails and retries with backoff while the server is down.
    for _ in 0..1500 {
        let mut conn = app.conn().await;
        let cursor =
            cursors::find(&mut conn, app.tenant_id, "mail").await.expect("q").expect("cursor");
        if cursor.attempts >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(smtp.mails().is_empty());
    smtp.restart().await;
    let mails = smtp.wait_for(3).await;
    let subjects: Vec<String> = mails.iter().map(|m| m.subject()).collect();
    assert_eq!(
        subjects.iter().map(|s| s.rsplit(": ").next().unwrap_or_default()).collect::<Vec<_>>(),
        ["While down 0", "While down 1", "While down 2"]
    );
    worker.stop().await;
}

#[tokio::test]
async fn a_refused_recipient_does_not_cost_the_others_their_mail() {
    let app = TestApp::new().await;
    let smtp = Receiver::start().await;
    smtp.refuse("gone@example.com");
    set_settings(
        &app,
        &app.admin_token,
        json!({ "caseCreatedRecipients": ["gone@example.com", "soc@example.com"] }),
    )
    .await;
    let worker = start_mail(&app, &smtp).await;
    case(&app, &app.admin_token, json!({ "name": "Refused" })).await;
    case(&app, &app.admin_token, json!({ "name": "Next" })).await;
    let mails = smtp.wait_for(2).await;
    assert_eq!(mails[0].recipients(), ["soc@example.com"]);
    assert!(mails[0].subject().ends_with("Refused"));
    assert!(mails[1].subject().ends_with("Next"));
    worker.stop().await;
}

#[tokio::test]
async fn notification_settings_are_checked_recorded_and_for_admins_only() {
    let app = TestApp::new().await;
    let data = app
        .query_ok("{ tenant { notificationSettings { caseCreatedRecipients assignmentMail } } }")
        .await;
    assert_eq!(
        data["tenant"]["notificationSettings"],
        json!({ "caseCreatedRecipients": [], "assignmentMail": "ALL" })
    );
    for bad in
        [json!(["not an address"]), json!(["Soc <soc@example.com>"]), json!(["a@b\r\nBcc: c@d"])]
    {
        let body =
            set_settings(&app, &app.admin_token, json!({ "caseCreatedRecipients": bad })).await;
        assert_eq!(error_code(&body), Some("VALIDATION_FAILED"), "{body}");
        assert_eq!(error_field(&body), Some("caseCreatedRecipients"), "{body}");
    }
    let many: Vec<String> = (0..51).map(|n| format!("r{n}@example.com")).collect();
    let body = set_settings(&app, &app.admin_token, json!({ "caseCreatedRecipients": many })).await;
    assert_eq!(error_field(&body), Some("caseCreatedRecipients"), "{body}");
    let (_, analyst) = app.create_user(app.tenant_id, Role::Analyst).await;
    let body = set_settings(&app, &analyst, json!({ "assignmentMail": "NEVER" })).await;
    assert_eq!(error_code(&body), Some("FORBIDDEN"), "{body}");

    let body = set_settings(
        &app,
        &app.admin_token,
        json!({ "caseCreatedRecipients": [" soc@example.com "], "assignmentMail": "CHANGER_ONLY" }),
    )
    .await;
    assert!(body.get("errors").is_none(), "{body}");
    let events = app.events(app.tenant_id).await;
    let recorded: Vec<_> =
        events.iter().filter(|e| e.action == "tenant.notifications_updated").collect();
    assert_eq!(recorded.len(), 1, "only the change that succeeded is recorded");
    assert_eq!(
        recorded[0].changes,
        json!({
            "caseCreatedRecipients": { "before": [], "after": ["soc@example.com"] },
            "assignmentMail": { "before": "ALL", "after": "CHANGER_ONLY" },
        })
    );
    // Nothing changed: nothing recorded.
    set_settings(&app, &app.admin_token, json!({ "assignmentMail": "CHANGER_ONLY" })).await;
    let again = app.events(app.tenant_id).await;
    assert_eq!(again.iter().filter(|e| e.action == "tenant.notifications_updated").count(), 1);
}

#[tokio::test]
async fn mail_off_drops_the_cursors_and_mail_on_starts_from_then() {
    let app = TestApp::new().await;
    let smtp = Receiver::start().await;
    set_settings(&app, &app.admin_token, json!({ "caseCreatedRecipients": ["soc@example.com"] }))
        .await;
    let worker = start_mail(&app, &smtp).await;
    worker.stop().await;
    let (_stop, stop_rx) = watch::channel(false);
    let off = channel::start(&app.db, None, Retry::default(), stop_rx).await.expect("off");
    assert!(off.is_none());
    {
        let mut conn = app.conn().await;
        assert!(cursors::find(&mut conn, app.tenant_id, "mail").await.expect("q").is_none());
    }
    case(&app, &app.admin_token, json!({ "name": "While off" })).await;
    let worker = start_mail(&app, &smtp).await;
    case(&app, &app.admin_token, json!({ "name": "After on" })).await;
    let mails = smtp.wait_for(1).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let subjects: Vec<String> = smtp.mails().iter().map(|m| m.subject()).collect();
    assert_eq!(subjects.len(), 1, "{subjects:?}");
    assert!(mails[0].subject().ends_with("After on"));
    worker.stop().await;
}

#[tokio::test]
async fn commit_to_mail_delay_is_measured() {
    let app = TestApp::new().await;
    let smtp = Receiver::start().await;
    set_settings(&app, &app.admin_token, json!({ "caseCreatedRecipients": ["soc@example.com"] }))
        .await;
    let worker = start_mail(&app, &smtp).await;
    let mut delays = Vec::new();
    for n in 0..40 {
        case(&app, &app.admin_token, json!({ "name": format!("Timed {n}") })).await;
        let committed = Instant::now();
        let mails = smtp.wait_for(n + 1).await;
        delays.push(mails[n].at.saturating_duration_since(committed));
    }
    delays.sort();
    let at = |q: f64| delays[((delays.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "commit to mail over {} cases: median {:?}, p99 {:?}, max {:?}",
        delays.len(),
        at(0.5),
        at(0.99),
        delays[delays.len() - 1]
    );
    worker.stop().await;
}
