"""CI check of mail notifications: against a running casefile (mail on) and an aiosmtpd
server whose Debugging handler writes every message to a log file, sets the tenant's
case-created recipients, creates cases one at a time and waits for each one's mail.
Prints the delay from the createCase answer (the commit) to the mail in the log.

usage: mail-check.py <base url> <token> <smtp log file> <count>
"""

import json
import statistics
import sys
import time
import urllib.request

base, token, log_path, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])


def graphql(query, variables):
    request = urllib.request.Request(
        base + "/graphql",
        data=json.dumps({"query": query, "variables": variables}).encode(),
        headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.load(response)
    if body.get("errors"):
        sys.exit(f"FAIL: {body['errors']}")
    return body["data"]


def log():
    with open(log_path, encoding="utf-8", errors="replace") as f:
        return f.read()


graphql(
    "mutation($i: UpdateNotificationSettingsInput!) { updateNotificationSettings(input: $i) "
    "{ tenant { notificationSettings { caseCreatedRecipients } } } }",
    {"i": {"caseCreatedRecipients": ["soc@ci.casefile.test"]}},
)
run = int(time.time()) % 100000
delays = []
for n in range(count):
    name = f"CI mail {run} {n}"
    data = graphql(
        "mutation($i: CreateCaseInput!) { createCase(input: $i) { case { number } } }",
        {"i": {"name": name, "severity": "HIGH"}},
    )
    committed = time.monotonic()
    subject = f"Case #{data['createCase']['case']['number']} created: {name}"
    deadline = committed + 60
    while subject not in log():
        if time.monotonic() > deadline:
            sys.exit(f"FAIL: no mail with the subject {subject!r} within 60 s")
        time.sleep(0.002)
    delays.append(time.monotonic() - committed)

text = log()
for needed in ["To: soc@ci.casefile.test", "Auto-Submitted: auto-generated", "Message-ID: <"]:
    if needed.lower() not in text.lower():
        sys.exit(f"FAIL: the mails lack {needed!r}")
delays.sort()
p99 = delays[min(len(delays) - 1, round(0.99 * (len(delays) - 1)))]
print(
    f"{count} mails arrived at aiosmtpd; commit to mail: median {statistics.median(delays) * 1000:.1f} ms, "
    f"p99 {p99 * 1000:.1f} ms, max {delays[-1] * 1000:.1f} ms"
)
