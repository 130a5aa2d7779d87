//! `casefile seed`: realistic data at a chosen scale, deterministic from a seed, written
//! in bulk (`models::seed`) with every derived column computed as the API computes it:
//! name keys through `models::fold`, names through the naming rule, the per-case
//! aggregates from the linked detections, assignee and subject sort keys, numbers per
//! tenant, `archive_at` from the tenant's policy, resolutions with `resolved_at` and
//! `delete_at`, at most 10,000 detections a case and none on archived cases.
//!
//! Shape: most cases resolved or archived, a few open; a few cases with thousands of
//! detections (the largest 3,000), most with a handful; rules, hosts, actors and
//! severities drawn from skewed (Zipf-like) distributions.

use chrono::{DateTime, Duration, TimeZone, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use crate::domain::record::{Changes, record};
use crate::error::AppError;
use crate::models::cases::{self as case_rows, rules};
use crate::models::enums::{CaseKind, CaseStatus, DetectionSource, Resolution, Severity};
use crate::models::events::{NewEvent, Origin};
use crate::models::fold::fold;
use crate::models::ids::TenantId;
use crate::models::seed::{
    self, CaseRows, DetectionRows, LinkRows, SubjectRows, TenantRows, UserRows,
};
use crate::models::users::Role;

/// How much data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scale {
    /// One tenant, 300 cases, 3,000 detections: a demo to explore in seconds.
    Small,
    /// 10 tenants, 100,000 cases, 1,000,000 detections, 5,000 subjects, 50 users.
    Medium,
    /// One tenant with 1,000,000 cases (mostly without detections) and 20,000
    /// detections: the growth curve of the case list.
    Large,
}

/// The sizes a scale seeds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    pub tenants: usize,
    /// Per tenant.
    pub users: usize,
    pub subjects: usize,
    pub cases: usize,
    pub detections: usize,
    /// Detections of the largest case of each tenant.
    pub largest_case: usize,
    /// Share of detections linked to a case (the rest stand alone).
    pub linked_share: f64,
}

impl Scale {
    pub fn plan(self) -> Plan {
        match self {
            Scale::Small => Plan {
                tenants: 1,
                users: 5,
                subjects: 50,
                cases: 300,
                detections: 3_000,
                largest_case: 400,
                linked_share: 0.85,
            },
            Scale::Medium => Plan {
                tenants: 10,
                users: 5,
                subjects: 500,
                cases: 10_000,
                detections: 100_000,
                largest_case: 3_000,
                linked_share: 0.89,
            },
            Scale::Large => Plan {
                tenants: 1,
                users: 5,
                subjects: 500,
                cases: 1_000_000,
                detections: 20_000,
                largest_case: 3_000,
                linked_share: 0.9,
            },
        }
    }
}

/// What to seed.
#[derive(Debug, Clone)]
pub struct SeedOptions {
    pub plan: Plan,
    pub seed: u64,
    /// Every time is relative to this instant (creation times fall in the 300 days
    /// before it; archive and delete times after it).
    pub anchor: DateTime<Utc>,
    /// Rows per insert statement (and per committed batch).
    pub batch: usize,
}

/// One seeded tenant.
#[derive(Debug, Clone)]
pub struct SeededTenant {
    pub id: uuid::Uuid,
    pub name: String,
    pub admin_id: uuid::Uuid,
    pub cases: usize,
    pub open_cases: usize,
    pub detections: usize,
    pub links: usize,
    /// The number of the case holding the most detections, and how many.
    pub largest_case: (i32, usize),
}

const TENANT_NAMES: [&str; 10] = [
    "Northwind Traders",
    "Contoso Health",
    "Fabrikam Energy",
    "Tailspin Air",
    "Woodgrove Bank",
    "Adatum Logistics",
    "Litware Studios",
    "Proseware Retail",
    "Alpine Ski House",
    "Wide World Importers",
];

const FIRST: [&str; 24] = [
    "Alice", "Bruno", "Chen", "Dana", "Émile", "Fatima", "Gustav", "Hana", "Ivan", "Jóhanna",
    "Kwame", "Lena", "Mateo", "Nadia", "Omar", "Priya", "Quinn", "Rosa", "Søren", "Tomás", "Uma",
    "Viktor", "Wen", "Zoë",
];
const LAST: [&str; 24] = [
    "Nguyen",
    "Schmidt",
    "Okafor",
    "García",
    "Kowalski",
    "Haddad",
    "Larsen",
    "Tanaka",
    "Müller",
    "Rossi",
    "Silva",
    "Novak",
    "Dubois",
    "Ivanova",
    "Kim",
    "Patel",
    "O'Brien",
    "Andersson",
    "Yilmaz",
    "Costa",
    "Walsh",
    "Nakamura",
    "Fischer",
    "Moreau",
];
const DEPARTMENTS: [&str; 8] =
    ["Finance", "Engineering", "Sales", "HR", "Legal", "Operations", "Marketing", "Research"];
const TITLES: [&str; 6] = ["Analyst", "Engineer", "Manager", "Director", "Contractor", "Associate"];
const LOCATIONS: [&str; 6] = ["Berlin", "Toronto", "São Paulo", "Singapore", "Austin", "Lyon"];

/// Rules, most frequent first (drawn Zipf-like), with their usual risk score.
const RULES: [(&str, i32); 30] = [
    ("Suspicious PowerShell Command", 6),
    ("Unusual Sign-in Location", 4),
    ("Mass File Download", 7),
    ("Credential Dumping Attempt", 9),
    ("Malware Detected", 8),
    ("Phishing Link Clicked", 5),
    ("Privilege Escalation", 8),
    ("Data Exfiltration to Cloud Storage", 9),
    ("Brute Force Login", 5),
    ("Ransomware Behaviour", 10),
    ("USB Mass Storage Copy", 6),
    ("Lateral Movement via SMB", 7),
    ("Disabled Security Tool", 8),
    ("New Admin Account", 6),
    ("Encoded Command Line", 5),
    ("Impossible Travel", 4),
    ("Sensitive File Renamed", 3),
    ("Unsigned Driver Loaded", 6),
    ("DNS Tunnelling", 8),
    ("Port Scan", 2),
    ("Email Forwarding Rule Created", 4),
    ("Cryptominer Activity", 7),
    ("Scheduled Task Persistence", 6),
    ("Token Theft", 9),
    ("Archive Created Before Departure", 7),
    ("Print Spike", 1),
    ("Shadow Copy Deleted", 9),
    ("Remote Access Tool", 5),
    ("Keylogger Signature", 8),
    ("Informational Login", 0),
];

const INDICATORS: [&str; 10] = [
    "rare process",
    "off-hours activity",
    "new device",
    "known bad hash",
    "watchlisted user",
    "large volume",
    "external destination",
    "admin rights",
    "departing employee",
    "anomalous parent process",
];

const MITRE: [[&str; 4]; 8] = [
    ["TA0002", "Execution", "T1059", "Command and Scripting Interpreter"],
    ["TA0006", "Credential Access", "T1003", "OS Credential Dumping"],
    ["TA0010", "Exfiltration", "T1048", "Exfiltration Over Alternative Protocol"],
    ["TA0008", "Lateral Movement", "T1021", "Remote Services"],
    ["TA0004", "Privilege Escalation", "T1068", "Exploitation for Privilege Escalation"],
    ["TA0005", "Defense Evasion", "T1562", "Impair Defenses"],
    ["TA0040", "Impact", "T1486", "Data Encrypted for Impact"],
    ["TA0001", "Initial Access", "T1566", "Phishing"],
];

const DEVICE_TYPES: [&str; 4] = ["laptop", "workstation", "server", "virtual machine"];
const FILE_TYPES: [(&str, &str); 6] = [
    ("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    ("pdf", "application/pdf"),
    ("zip", "application/zip"),
    ("docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    ("exe", "application/vnd.microsoft.portable-executable"),
    ("csv", "text/csv"),
];
const CASE_TOPICS: [&str; 8] = [
    "Investigation",
    "Follow-up",
    "Review",
    "Incident",
    "Triage",
    "Escalation",
    "Audit",
    "Inquiry",
];

/// A Zipf-like draw in `0..n` (log-uniform): index 0 is the most likely, and each
/// tenfold range of indexes is about as likely as the one before.
fn zipf(rng: &mut StdRng, n: usize) -> usize {
    let u: f64 = rng.random_range(0.0..1.0);
    (((n as f64 + 1.0).powf(u) - 1.0) as usize).min(n - 1)
}

/// A uuid (version 7 layout) from a time and the generator: deterministic.
fn uuid_at(rng: &mut StdRng, at: DateTime<Utc>) -> uuid::Uuid {
    let bytes: [u8; 10] = rng.random();
    uuid::Builder::from_unix_timestamp_millis(at.timestamp_millis().max(0) as u64, &bytes)
        .into_uuid()
}

fn hex(rng: &mut StdRng, digits: usize) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    (0..digits).map(|_| HEX[rng.random_range(0..16)] as char).collect()
}

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

/// The start of the current UTC day: the default anchor.
pub fn today() -> DateTime<Utc> {
    let now = Utc::now();
    Utc.from_utc_datetime(&now.date_naive().and_hms_opt(0, 0, 0).unwrap_or_default())
}

/// Seeds the database; `progress` hears one line per committed batch.
pub async fn run(
    conn: &mut AsyncPgConnection,
    options: &SeedOptions,
    progress: &mut (dyn FnMut(&str) + Send),
) -> anyhow::Result<Vec<SeededTenant>> {
    let plan = options.plan;
    anyhow::ensure!(plan.tenants >= 1 && plan.tenants <= TENANT_NAMES.len(), "1 to 10 tenants");
    anyhow::ensure!(plan.users >= 2 && plan.subjects >= 1, "at least 2 users and 1 subject");
    anyhow::ensure!(plan.cases >= 1, "at least one case");
    anyhow::ensure!(options.batch >= 1, "a batch holds at least one row");
    let names: Vec<String> = (0..plan.tenants).map(|t| tenant_name(options.seed, t)).collect();
    let keys: Vec<String> = names.iter().map(|n| fold(n)).collect();
    if seed::any_tenant_named(conn, &keys).await? {
        anyhow::bail!(
            "this database holds a tenant named like a seeded one ({}): seed an empty database, \
             or pass another --seed",
            names.join(", ")
        );
    }
    let out = if seed::bulk_tables_empty(conn).await? {
        // A fresh database: one transaction that sets the secondary indexes and foreign
        // keys of the big tables aside, writes every batch (each a savepoint with its
        // event), and builds them back before it commits. Nothing is seen half-written,
        // and a failure leaves the database as it was.
        conn.transaction(async |conn| {
            let aside = seed::set_aside(conn).await?;
            progress("indexes and foreign keys of detections, cases and links set aside");
            let out = write_tenants(conn, options, &names, progress).await?;
            let rebuilt = seed::put_back(conn, aside).await?;
            progress(&format!("{rebuilt} indexes and foreign keys built back"));
            anyhow::Ok(out)
        })
        .await?
    } else {
        write_tenants(conn, options, &names, progress).await?
    };
    seed::analyze(conn).await?;
    Ok(out)
}

/// Generates and writes each tenant in turn, one committed batch (or savepoint) at a time.
async fn write_tenants(
    conn: &mut AsyncPgConnection,
    options: &SeedOptions,
    names: &[String],
    progress: &mut (dyn FnMut(&str) + Send),
) -> anyhow::Result<Vec<SeededTenant>> {
    let mut out = Vec::new();
    for (t, name) in names.iter().enumerate() {
        let mut rng = StdRng::seed_from_u64(
            options.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(t as u64 + 1),
        );
        let tenant = generate_tenant(&mut rng, options, name, t);
        out.push(write_tenant(conn, options, &tenant, progress).await?);
    }
    Ok(out)
}

/// A tenant's name: the list's, with the seed after it unless the seed is the default.
fn tenant_name(seed: u64, index: usize) -> String {
    if seed == DEFAULT_SEED {
        TENANT_NAMES[index].to_owned()
    } else {
        format!("{} {seed}", TENANT_NAMES[index])
    }
}

/// The seed when none is given.
pub const DEFAULT_SEED: u64 = 1;

struct GeneratedTenant {
    tenants: TenantRows,
    users: UserRows,
    subjects: SubjectRows,
    detections: DetectionRows,
    cases: CaseRows,
    links: LinkRows,
    summary: SeededTenant,
}

struct Host {
    id: String,
    name: String,
    kind: &'static str,
    ip: String,
}

fn generate_tenant(
    rng: &mut StdRng,
    options: &SeedOptions,
    name: &str,
    index: usize,
) -> GeneratedTenant {
    let plan = options.plan;
    let anchor = options.anchor;
    let created = anchor - Duration::days(400);
    let tenant_id = uuid_at(rng, created);
    let domain = format!("{}.example", fold(name).replace([' ', '\''], "-"));
    let archive_after_days = 365;
    let delete_after_days = 3_650;

    // Users: one admin, one ingest integration, the rest analysts.
    let mut users = UserRows::default();
    let mut assignable: Vec<(uuid::Uuid, String)> = Vec::new();
    for u in 0..plan.users {
        let role = match u {
            0 => Role::Admin,
            1 => Role::Ingest,
            _ => Role::Analyst,
        };
        let (email, display) = match role {
            Role::Admin => (format!("admin@{domain}"), "Administrator".to_owned()),
            Role::Ingest => (format!("sensor@{domain}"), "Sensor Integration".to_owned()),
            _ => {
                let first = FIRST[(u * 7 + index) % FIRST.len()];
                let last = LAST[(u * 5 + index * 3) % LAST.len()];
                (format!("analyst{u}@{domain}"), format!("{first} {last}"))
            }
        };
        let id = uuid_at(rng, created);
        if role.assignable() {
            assignable.push((id, fold(&display)));
        }
        users.id.push(id);
        users.email_key.push(fold(&email));
        users.email.push(email);
        users.display_name.push(display);
        users.role.push(role.as_str().to_owned());
        users.created_at.push(created);
    }

    // Subjects.
    let mut subjects = SubjectRows::default();
    let mut subject_names: Vec<(uuid::Uuid, String, String)> = Vec::new();
    for s in 0..plan.subjects {
        let first = FIRST[s % FIRST.len()];
        let last = LAST[(s / FIRST.len()) % LAST.len()];
        let username = format!(
            "{}.{}{}@{domain}",
            fold(first),
            fold(last).replace('\'', ""),
            s / (FIRST.len() * LAST.len()) + 1
        );
        let department = pick(rng, &DEPARTMENTS).to_string();
        let id = uuid_at(rng, created);
        subject_names.push((id, username.clone(), fold(&username)));
        subjects.id.push(id);
        subjects.username_key.push(fold(&username));
        subjects.username.push(username);
        subjects.display_name.push(Some(format!("{first} {last}")));
        subjects.department_key.push(Some(fold(&department)));
        subjects.department.push(Some(department));
        subjects.title.push(Some(pick(rng, &TITLES).to_string()));
        subjects.location.push(Some(pick(rng, &LOCATIONS).to_string()));
        subjects.created_at.push(created);
    }

    // Hosts: a pool sized to the tenant.
    let host_count = (plan.detections / 50).clamp(20, 5_000);
    let hosts: Vec<Host> = (0..host_count)
        .map(|h| {
            let kind = *pick(rng, &DEVICE_TYPES);
            let prefix = match kind {
                "server" => "srv",
                "laptop" => "lt",
                "workstation" => "ws",
                _ => "vm",
            };
            Host {
                id: format!("dev-{index}-{h:05}"),
                name: format!("{prefix}-{h:05}.corp"),
                kind,
                ip: format!("10.{}.{}.{}", index, h / 250, h % 250 + 1),
            }
        })
        .collect();

    // Case states: most resolved or archived, a few open.
    let n = plan.cases;
    let mut states: Vec<CaseStatus> = (0..n)
        .map(|_| {
            let r: f64 = rng.random_range(0.0..1.0);
            match r {
                r if r < 0.015 => CaseStatus::New,
                r if r < 0.035 => CaseStatus::Investigating,
                r if r < 0.042 => CaseStatus::OnHold,
                r if r < 0.05 => CaseStatus::ActionRequired,
                r if r < 0.65 => CaseStatus::Resolved,
                _ => CaseStatus::Archived,
            }
        })
        .collect();
    // The largest cases are open (the case page of the benchmark) or resolved.
    // Sizes: a heavy tail capped at `largest_case`, spread over non-archived cases.
    let budget = (plan.detections as f64 * plan.linked_share) as usize;
    let mut holders: Vec<usize> = (0..n).filter(|&c| states[c] != CaseStatus::Archived).collect();
    // Shuffle holders deterministically.
    for i in (1..holders.len()).rev() {
        let j = rng.random_range(0..=i);
        holders.swap(i, j);
    }
    let mut sizes = vec![0_usize; n];
    let mut left = budget;
    for (rank, &c) in holders.iter().enumerate() {
        if left == 0 {
            break;
        }
        let tail = (plan.largest_case as f64 / ((rank + 1) as f64).powf(0.9)) as usize;
        let size = if rank == 0 { plan.largest_case } else { tail.max(1) + rng.random_range(0..6) };
        let size = size.min(left).min(case_rows::MAX_DETECTIONS as usize);
        sizes[c] = size;
        left -= size;
    }
    if let Some(&first) = holders.first() {
        states[first] = CaseStatus::Investigating;
    }

    // Cases.
    let mut cases = CaseRows::default();
    let mut detections = DetectionRows::default();
    let mut links = LinkRows::default();
    let mut external = 0_usize;
    let mut largest = (0, 0);
    let mut open_cases = 0;
    for (c, &state) in states.iter().enumerate() {
        let number = c as i32 + 1;
        let age_days = if state.is_open() {
            rng.random_range(0.0..60.0)
        } else {
            rng.random_range(20.0..300.0)
        };
        let created_at = anchor - Duration::seconds((age_days * 86_400.0) as i64);
        let id = uuid_at(rng, created_at);
        let auto = rng.random_bool(0.3);
        let (rule, rule_score) = RULES[zipf(rng, RULES.len())];
        let host = &hosts[zipf(rng, hosts.len())];
        let subject = rng.random_bool(0.4).then(|| &subject_names[zipf(rng, subject_names.len())]);
        let size = sizes[c];

        // The case's detections: most share the case's rule, host and subject.
        let mut counts = [0_i32; 6];
        let mut highest = 0_i16;
        for k in 0..size {
            let observed = created_at - Duration::seconds(rng.random_range(60..86_400 * 3));
            let themed = rng.random_bool(0.7);
            let score = if auto {
                rng.random_range(7..=10)
            } else if themed {
                (rule_score + rng.random_range(-2..=2)).max(0)
            } else {
                rng.random_range(0..=10)
            };
            let det = push_detection(
                rng,
                &mut detections,
                &hosts,
                &subject_names,
                index,
                &mut external,
                observed,
                score,
                themed.then_some((rule, host, subject.map(|s| s.1.as_str()))),
            );
            let rank = Severity::from_risk_score(score).rank();
            counts[rank as usize] += 1;
            highest = highest.max(rank);
            links.case_id.push(id);
            links.detection_id.push(det);
            links.added_at.push(created_at + Duration::seconds(k as i64 % 3_600));
        }
        if size > largest.1 {
            largest = (number, size);
        }

        let suffix = format!(" ({number})");
        let base = if auto {
            format!("{rule} on {}", host.name)
        } else {
            match subject {
                Some((_, username, _)) => {
                    format!(
                        "{} {}",
                        pick(rng, &CASE_TOPICS),
                        username.split('@').next().unwrap_or("")
                    )
                }
                None => format!("{rule} {}", pick(rng, &CASE_TOPICS)),
            }
        };
        let stem = rules::name_from(&base, rules::NAME_MAX - suffix.chars().count());
        let name =
            rules::name(&format!("{stem}{suffix}")).unwrap_or_else(|_| format!("Case{suffix}"));
        // The number in the name keeps names unique in the tenant, ignoring case.
        let name_key = fold(&name);
        let severity = if auto {
            highest.max(Severity::High.rank())
        } else {
            *pick(rng, &[0_i16, 0, 2, 3, 3, 4, 4, 5])
        };
        let assignee = (!auto || rng.random_bool(0.5))
            .then(|| pick(rng, &assignable).clone())
            .filter(|_| rng.random_bool(0.85));
        let life = Duration::seconds(rng.random_range(600..86_400 * 20));
        let mut updated_at = (created_at + life).min(anchor - Duration::minutes(5));
        if updated_at < created_at {
            updated_at = created_at;
        }
        let (resolution, resolved_at, archived_at) = match state {
            CaseStatus::Resolved => (Some(pick(rng, &RESOLUTIONS)), Some(updated_at), None),
            CaseStatus::Archived => {
                if rng.random_bool(0.7) {
                    let resolved = created_at + (updated_at - created_at) / 2;
                    (Some(pick(rng, &RESOLUTIONS)), Some(resolved), Some(updated_at))
                } else {
                    (None, None, Some(updated_at))
                }
            }
            _ => {
                open_cases += 1;
                (None, None, None)
            }
        };
        let (counts, severity) = if state == CaseStatus::Archived {
            // Archiving removes a case's links and zeroes its aggregates.
            ([0; 6], severity)
        } else {
            (counts, severity)
        };
        let creator = if auto { None } else { Some(pick(rng, &assignable).0) };
        let version = 1 + rng.random_range(0..8) + i32::from(resolved_at.is_some());
        let last_modified = if version > 1 { Some(pick(rng, &assignable).0) } else { None };

        cases.id.push(id);
        cases.number.push(number);
        cases.kind.push(CaseKind::SelfManaged.as_str().to_owned());
        cases.name.push(name);
        cases.name_key.push(name_key);
        cases.description.push(Some(if auto {
            format!("Opened automatically for {rule} detections on {}.", host.name)
        } else {
            format!("{rule}: reported by the SOC rota, see the linked detections.")
        }));
        cases.findings.push(
            resolved_at
                .map(|_| format!("<p>Reviewed the {rule} activity on <b>{}</b>.</p>", host.name)),
        );
        cases.severity.push(severity);
        cases.status.push(state.as_str().to_owned());
        cases.resolution.push(resolution.map(|r| r.as_str().to_owned()));
        cases.auto_created.push(auto);
        cases.auto_rule_name.push(auto.then(|| rule.to_owned()));
        cases.auto_device.push(auto.then(|| host.name.clone()));
        cases.assignee_id.push(assignee.as_ref().map(|a| a.0));
        cases.assignee_sort.push(assignee.map(|a| a.1).unwrap_or_default());
        cases.subject_id.push(subject.map(|s| s.0));
        cases.subject_sort.push(subject.map(|s| s.2.clone()).unwrap_or_default());
        cases.created_by_id.push(creator);
        cases.last_modified_by_id.push(last_modified);
        cases.created_at.push(created_at);
        cases.updated_at.push(updated_at);
        cases.resolved_at.push(resolved_at);
        cases.archive_at.push(created_at + Duration::days(archive_after_days.into()));
        cases.archived_at.push(archived_at);
        cases.delete_at.push(resolved_at.map(|r| r + Duration::days(delete_after_days.into())));
        cases.version.push(version);
        cases.detection_count.push(counts.iter().sum());
        cases.risk_informational.push(counts[1]);
        cases.risk_low.push(counts[2]);
        cases.risk_medium.push(counts[3]);
        cases.risk_high.push(counts[4]);
        cases.risk_critical.push(counts[5]);
    }
    let linked = detections.len();
    // Detections in no case.
    while detections.len() < plan.detections.max(linked) {
        let observed = anchor - Duration::seconds(rng.random_range(60..86_400 * 300));
        let score = rng.random_range(0..=10);
        push_detection(
            rng,
            &mut detections,
            &hosts,
            &subject_names,
            index,
            &mut external,
            observed,
            score,
            None,
        );
    }

    let mut tenants = TenantRows::default();
    tenants.id.push(tenant_id);
    tenants.name.push(name.to_owned());
    tenants.name_key.push(fold(name));
    tenants.created_at.push(created);
    tenants.archive_after_days.push(archive_after_days);
    tenants.delete_resolved_after_days.push(delete_after_days);
    tenants.next_case_number.push(cases.len() as i32 + 1);
    let summary = SeededTenant {
        id: tenant_id,
        name: name.to_owned(),
        admin_id: users.id[0],
        cases: cases.len(),
        open_cases,
        detections: detections.len(),
        links: links.len(),
        largest_case: largest,
    };
    GeneratedTenant { tenants, users, subjects, detections, cases, links, summary }
}

const RESOLUTIONS: [Resolution; 8] = [
    Resolution::FalsePositive,
    Resolution::FalsePositive,
    Resolution::AuthorizedActivity,
    Resolution::AuthorizedActivity,
    Resolution::ThreatMitigated,
    Resolution::ConfirmedIncident,
    Resolution::NotVulnerable,
    Resolution::Inconclusive,
];

/// Appends one detection; `theme` gives the rule, host and actor most of a case's
/// detections share. Returns its id.
#[allow(clippy::too_many_arguments)]
fn push_detection(
    rng: &mut StdRng,
    rows: &mut DetectionRows,
    hosts: &[Host],
    subjects: &[(uuid::Uuid, String, String)],
    tenant_index: usize,
    external: &mut usize,
    observed: DateTime<Utc>,
    score: i32,
    theme: Option<(&str, &Host, Option<&str>)>,
) -> uuid::Uuid {
    let id = uuid_at(rng, observed);
    *external += 1;
    let file_event = rng.random_bool(0.2);
    let source = if file_event { DetectionSource::FileActivity } else { DetectionSource::Xdr };
    let (rule, host, actor) = match theme {
        Some((rule, host, actor)) => (rule, Some(host), actor.map(str::to_owned)),
        None => {
            let rule = RULES[zipf(rng, RULES.len())].0;
            let host = rng.random_bool(0.92).then(|| &hosts[zipf(rng, hosts.len())]);
            let actor = rng.random_bool(0.7).then(|| subjects[zipf(rng, subjects.len())].1.clone());
            (rule, host, actor)
        }
    };
    let indicators: Vec<serde_json::Value> = (0..rng.random_range(0..=3))
        .map(|_| json!({ "name": pick(rng, &INDICATORS), "weight": rng.random_range(1..=4) }))
        .collect();
    let mitre: Vec<serde_json::Value> = (0..rng.random_range(0..=2))
        .map(|_| {
            let [tactic_id, tactic_name, technique_id, technique_name] = pick(rng, &MITRE);
            json!({
                "tacticId": tactic_id,
                "tacticName": tactic_name,
                "techniqueId": technique_id,
                "techniqueName": technique_name,
            })
        })
        .collect();
    rows.id.push(id);
    rows.external_id.push(format!(
        "{}-{tenant_index}-{:08}",
        if file_event { "fa" } else { "xdr" },
        *external
    ));
    rows.source.push(source.as_str().to_owned());
    rows.rule_name_key.push(fold(rule));
    rows.rule_name.push(rule.to_owned());
    rows.description.push(rng.random_bool(0.5).then(|| format!("{rule} observed by the sensor.")));
    rows.observed_at.push(observed);
    rows.ingested_at.push(observed + Duration::seconds(rng.random_range(1..600)));
    rows.risk_score.push(score);
    rows.risk_indicators.push(serde_json::Value::Array(indicators));
    rows.device_id.push(host.map(|h| h.id.clone()));
    rows.device_hostname_key.push(host.map(|h| fold(&h.name)));
    rows.device_hostname.push(host.map(|h| h.name.clone()));
    rows.device_type.push(host.map(|h| h.kind.to_owned()));
    rows.device_ip.push(host.map(|h| h.ip.clone()));
    rows.actor_key.push(actor.as_deref().map(fold));
    rows.actor.push(actor);
    rows.mitre.push(serde_json::Value::Array(mitre));
    if file_event {
        let (ext, mime) = pick(rng, &FILE_TYPES);
        let name = format!("report-{:04}.{ext}", rng.random_range(0..10_000));
        rows.file_path.push(Some(format!("C:\\Users\\shared\\{name}")));
        rows.file_name.push(Some(name));
        rows.file_size.push(Some(rng.random_range(1_000..50_000_000)));
        rows.file_sha256.push(Some(hex(rng, 64)));
        rows.file_md5.push(Some(hex(rng, 32)));
        rows.file_mime_type.push(Some((*mime).to_owned()));
        rows.file_availability.push(Some(
            if rng.random_bool(0.3) { "EXACT_FILE_AVAILABLE" } else { "NO_FILE_AVAILABLE" }
                .to_owned(),
        ));
    } else {
        rows.file_name.push(None);
        rows.file_path.push(None);
        rows.file_size.push(None);
        rows.file_sha256.push(None);
        rows.file_md5.push(None);
        rows.file_mime_type.push(None);
        rows.file_availability.push(None);
    }
    id
}

/// Writes one tenant: the tenant, users and subjects in one transaction, then detections,
/// cases and links in batches of `options.batch` rows, one transaction each.
async fn write_tenant(
    conn: &mut AsyncPgConnection,
    options: &SeedOptions,
    t: &GeneratedTenant,
    progress: &mut (dyn FnMut(&str) + Send),
) -> anyhow::Result<SeededTenant> {
    let tenant = t.summary.id;
    let seed_no = options.seed;
    conn.transaction(async |conn| {
        seed::insert_tenants(conn, &t.tenants).await?;
        seed::insert_users(conn, tenant, &t.users).await?;
        seed::insert_subjects(conn, tenant, &t.subjects).await?;
        let rows = 1 + t.users.id.len() + t.subjects.id.len();
        batch_event(conn, tenant, seed_no, "tenant, users, subjects", 0, rows).await
    })
    .await?;
    progress(&format!(
        "{}: tenant, {} users, {} subjects",
        t.summary.name,
        t.users.id.len(),
        t.subjects.id.len()
    ));
    let b = options.batch;
    for start in (0..t.detections.len()).step_by(b) {
        let end = (start + b).min(t.detections.len());
        let part = slice_detections(&t.detections, start, end);
        conn.transaction(async |conn| {
            seed::insert_detections(conn, tenant, &part).await?;
            batch_event(conn, tenant, seed_no, "detections", start, end).await
        })
        .await?;
        progress(&format!("{}: detections {end}/{}", t.summary.name, t.detections.len()));
    }
    for start in (0..t.cases.len()).step_by(b) {
        let end = (start + b).min(t.cases.len());
        let part = slice_cases(&t.cases, start, end);
        conn.transaction(async |conn| {
            seed::insert_cases(conn, tenant, &part).await?;
            batch_event(conn, tenant, seed_no, "cases", start, end).await
        })
        .await?;
        progress(&format!("{}: cases {end}/{}", t.summary.name, t.cases.len()));
    }
    for start in (0..t.links.len()).step_by(b) {
        let end = (start + b).min(t.links.len());
        let part = LinkRows {
            case_id: t.links.case_id[start..end].to_vec(),
            detection_id: t.links.detection_id[start..end].to_vec(),
            added_at: t.links.added_at[start..end].to_vec(),
        };
        conn.transaction(async |conn| {
            seed::insert_links(conn, tenant, &part).await?;
            batch_event(conn, tenant, seed_no, "links", start, end).await
        })
        .await?;
        progress(&format!("{}: links {end}/{}", t.summary.name, t.links.len()));
    }
    Ok(t.summary.clone())
}

/// Records one batch in the tenant's change record, as the last write of the batch's
/// transaction: one `SYSTEM` event `data.seeded` naming the rows written.
async fn batch_event(
    conn: &mut AsyncPgConnection,
    tenant: uuid::Uuid,
    seed: u64,
    rows: &str,
    start: usize,
    end: usize,
) -> Result<(), AppError> {
    let changes = Changes::new()
        .fact("seed", seed)
        .fact("rows", rows)
        .fact("from", start)
        .fact("to", end)
        .into_value();
    let event = NewEvent::new("data.seeded").changes(changes);
    record(conn, TenantId(tenant), &Origin::system(), vec![event]).await?;
    Ok(())
}

macro_rules! slice_rows {
    ($name:ident, $ty:ident { $($field:ident),* $(,)? }) => {
        fn $name(rows: &$ty, start: usize, end: usize) -> $ty {
            $ty { $($field: rows.$field[start..end].to_vec()),* }
        }
    };
}

slice_rows!(
    slice_detections,
    DetectionRows {
        id,
        external_id,
        source,
        rule_name,
        rule_name_key,
        description,
        observed_at,
        ingested_at,
        risk_score,
        risk_indicators,
        device_id,
        device_hostname,
        device_hostname_key,
        device_type,
        device_ip,
        actor,
        actor_key,
        mitre,
        file_name,
        file_path,
        file_size,
        file_sha256,
        file_md5,
        file_mime_type,
        file_availability,
    }
);

slice_rows!(
    slice_cases,
    CaseRows {
        id,
        number,
        kind,
        name,
        name_key,
        description,
        findings,
        severity,
        status,
        resolution,
        auto_created,
        auto_rule_name,
        auto_device,
        assignee_id,
        assignee_sort,
        subject_id,
        subject_sort,
        created_by_id,
        last_modified_by_id,
        created_at,
        updated_at,
        resolved_at,
        archive_at,
        archived_at,
        delete_at,
        version,
        detection_count,
        risk_critical,
        risk_high,
        risk_medium,
        risk_low,
        risk_informational,
    }
);
