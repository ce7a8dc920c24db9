//! What `subscriptions` prints: aligned tables for people, JSON for scripts.
//! Neither ever holds a secret: a subscription's CustomHeaderValue is shown as
//! which of `auth.secrets` it is (`auth.secrets[0]`), `other` or `none`.

use serde_json::json;

use super::{
    apply::{Applied, Outcome},
    enate_api::{Known, Subscription},
    plan::{Action, Expected, Plan, Row},
    verify::{Verdict, Verified},
};

pub fn plan(plan: &Plan, json: bool) -> String {
    let counts = plan.counts();
    if json {
        let document = json!({
            "changes_pending": plan.has_changes(),
            "counts": counts,
            "other_receivers": plan.other_receivers,
            "rows": plan.rows,
        });
        return format!("{document:#}\n");
    }
    let mut text = String::new();
    if !plan.rows.is_empty() {
        let lines = plan
            .rows
            .iter()
            .map(|row| {
                let mut cells = vec![row.action.label().to_string()];
                cells.extend(row_cells(row));
                (cells, row.reasons.clone())
            })
            .collect();
        text.push_str(&table(&PLAN_HEADERS, lines));
        text.push('\n');
    }
    let others = match plan.other_receivers {
        0 => String::new(),
        1 => "; 1 subscription of another receiver left alone".into(),
        n => format!("; {n} subscriptions of other receivers left alone"),
    };
    if plan.has_changes() {
        let delete = if counts.delete > 0 {
            format!(", {} to delete (apply --prune)", counts.delete)
        } else {
            String::new()
        };
        text.push_str(&format!(
            "Plan: {} to create, {} to change{delete}, {} unchanged{others}.\n",
            counts.create, counts.change, counts.unchanged
        ));
    } else {
        text.push_str(&format!(
            "Nothing to do: Enate has the {} subscription(s) of [enate]{others}.\n",
            counts.unchanged
        ));
    }
    text
}

pub fn applied(applied: &[Applied], json: bool) -> String {
    let count = |outcome: Outcome| applied.iter().filter(|line| line.result == outcome).count();
    let failed = count(Outcome::Failed);
    if json {
        let document = json!({ "ok": failed == 0, "results": applied });
        return format!("{document:#}\n");
    }
    let mut text = String::new();
    if !applied.is_empty() {
        let lines = applied
            .iter()
            .map(|line| {
                let mut cells = vec![line.result.label().to_string()];
                cells.extend(row_cells(&line.row));
                if let Some(created) = line.created {
                    *cells.last_mut().expect("cells") = created.to_string();
                }
                let mut notes = line.notes.clone();
                if line.row.action == Action::Change && line.result != Outcome::Unchanged {
                    notes.splice(0..0, line.row.reasons.iter().map(|r| format!("was: {r}")));
                }
                (cells, notes)
            })
            .collect();
        text.push_str(&table(&APPLY_HEADERS, lines));
        text.push('\n');
    }
    let kept = match count(Outcome::Kept) {
        0 => String::new(),
        n => format!(", {n} kept (not configured; apply --prune deletes)"),
    };
    let failed_text = match failed {
        0 => String::new(),
        n => {
            format!(", {n} FAILED (see above; the others were applied, run apply again once fixed)")
        }
    };
    text.push_str(&format!(
        "Apply: {} created, {} replaced, {} deleted, {} unchanged{kept}{failed_text}.\n",
        count(Outcome::Created),
        count(Outcome::Replaced),
        count(Outcome::Deleted),
        count(Outcome::Unchanged),
    ));
    text
}

pub fn list(
    subscriptions: &[Subscription],
    expected: &Expected<'_>,
    ours: &dyn Fn(&Subscription) -> bool,
    json: bool,
) -> String {
    let secret = |subscription: &Subscription| match (
        &subscription.custom_header_value,
        expected.secret_index(subscription),
    ) {
        (None, _) => "none".to_string(),
        (Some(_), Some(index)) => format!("auth.secrets[{index}]"),
        (Some(_), None) => "other".to_string(),
    };
    if json {
        let items: Vec<_> = subscriptions
            .iter()
            .map(|subscription| {
                json!({
                    "guid": subscription.guid,
                    "webhook": known(&subscription.webhook, |w| w.enate_name().to_string()),
                    "filter_object_type": known(&subscription.filter_object_type, |t| t.name().to_string()),
                    "filter_object_guid": known(&subscription.filter_object_guid, |g| g.to_string()),
                    "subscriber_url": subscription.subscriber_url,
                    "custom_header": subscription.custom_header,
                    "secret": secret(subscription),
                    "this_bridge": ours(subscription),
                })
            })
            .collect();
        return format!("{:#}\n", serde_json::Value::Array(items));
    }
    if subscriptions.is_empty() {
        return "Enate lists no webhook subscriptions (that this account may see).\n".into();
    }
    let lines = subscriptions
        .iter()
        .map(|subscription| {
            let cells = vec![
                subscription.guid.to_string(),
                known(&subscription.webhook, |w| w.enate_name().to_string()),
                filter(subscription),
                subscription.subscriber_url.clone(),
                subscription
                    .custom_header
                    .clone()
                    .unwrap_or_else(|| "-".into()),
                secret(subscription),
                if ours(subscription) { "yes" } else { "" }.to_string(),
            ];
            (cells, Vec::new())
        })
        .collect();
    let mut text = table(&LIST_HEADERS, lines);
    let own = subscriptions.iter().filter(|s| ours(s)).count();
    text.push_str(&format!(
        "\n{} subscription(s), {own} pointing at this bridge.\n",
        subscriptions.len()
    ));
    text
}

/// `verify`: one line per subscription, its result, and under it the causes
/// (or Enate's error, or why the URL reaches no bridge).
pub fn verified(lines: &[Verified], json: bool) -> String {
    let delivered = lines
        .iter()
        .filter(|line| line.verdict.is_delivered())
        .count();
    if json {
        let document = json!({
            "all_delivered": delivered == lines.len(),
            "subscriptions": lines,
        });
        return format!("{document:#}\n");
    }
    if lines.is_empty() {
        return "Nothing to verify: enate.subscriptions lists no subscriptions.\n".into();
    }
    let rows = lines
        .iter()
        .map(|line| {
            let (result, notes) = match &line.verdict {
                Verdict::Delivered {
                    seconds,
                    destination,
                } => {
                    let place = if *destination == "quarantine" {
                        " (to the quarantine)"
                    } else {
                        ""
                    };
                    (format!("delivered {seconds:.2} s{place}"), Vec::new())
                }
                Verdict::NotDelivered { causes } => ("not delivered".to_string(), causes.clone()),
                Verdict::TestRefused { error } => {
                    (line.verdict.label().into(), vec![error.clone()])
                }
                Verdict::UrlUnreachable { reason } => {
                    (line.verdict.label().into(), vec![reason.clone()])
                }
                Verdict::Missing => (
                    line.verdict.label().into(),
                    vec!["configured but not in Enate: `subscriptions apply` creates it".into()],
                ),
            };
            let cells = vec![
                result,
                line.webhook.clone(),
                line.filter.clone(),
                line.subscriber_url.clone(),
                line.subscription
                    .map_or_else(|| "-".to_string(), |guid| guid.to_string()),
            ];
            (cells, notes)
        })
        .collect();
    let mut text = table(&VERIFY_HEADERS, rows);
    text.push_str(&format!(
        "\nVerify: {delivered} of {} subscription(s) delivered.\n",
        lines.len()
    ));
    text
}

/// One line about a subscription: webhook, filter, URL.
pub fn describe(subscription: &Subscription) -> String {
    format!(
        "{} {} -> {}",
        known(&subscription.webhook, |w| w.enate_name().to_string()),
        filter(subscription),
        subscription.subscriber_url
    )
}

const PLAN_HEADERS: [&str; 5] = [
    "ACTION",
    "WEBHOOK",
    "FILTER",
    "SUBSCRIBER URL",
    "SUBSCRIPTION",
];
const APPLY_HEADERS: [&str; 5] = [
    "RESULT",
    "WEBHOOK",
    "FILTER",
    "SUBSCRIBER URL",
    "SUBSCRIPTION",
];
const VERIFY_HEADERS: [&str; 5] = [
    "RESULT",
    "WEBHOOK",
    "FILTER",
    "SUBSCRIBER URL",
    "SUBSCRIPTION",
];
const LIST_HEADERS: [&str; 7] = [
    "SUBSCRIPTION",
    "WEBHOOK",
    "FILTER",
    "SUBSCRIBER URL",
    "HEADER",
    "SECRET",
    "BRIDGE",
];

/// WEBHOOK, FILTER, SUBSCRIBER URL, SUBSCRIPTION of a plan line.
fn row_cells(row: &Row) -> Vec<String> {
    let subscriptions = if row.subscriptions.is_empty() {
        "-".to_string()
    } else {
        row.subscriptions
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    vec![
        row.webhook.clone(),
        format!("{} {}", row.filter_object_type, row.filter_object_guid),
        row.subscriber_url.clone(),
        subscriptions,
    ]
}

fn filter(subscription: &Subscription) -> String {
    format!(
        "{} {}",
        known(&subscription.filter_object_type, |t| t.name().to_string()),
        known(&subscription.filter_object_guid, |g| g.to_string())
    )
}

fn known<T>(value: &Known<T>, show: impl Fn(&T) -> String) -> String {
    match value {
        Known::Known(value) => show(value),
        Known::Other(text) if text.is_empty() => "-".into(),
        Known::Other(text) => text.clone(),
    }
}

/// Columns padded to their widest cell (the last one not); each line's notes
/// below it, indented to the second column.
fn table(headers: &[&str], lines: Vec<(Vec<String>, Vec<String>)>) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for (cells, _) in &lines {
        for (width, cell) in widths.iter_mut().zip(cells) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let render = |cells: &[String]| {
        let last = cells.len() - 1;
        let mut line = String::new();
        for (index, cell) in cells.iter().enumerate() {
            if index == last {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  ", width = widths[index]));
            }
        }
        line.trim_end().to_string() + "\n"
    };
    let indent = " ".repeat(widths[0] + 2);
    let mut text = render(&headers.iter().map(ToString::to_string).collect::<Vec<_>>());
    for (cells, notes) in lines {
        text.push_str(&render(&cells));
        for note in notes {
            text.push_str(&format!("{indent}- {note}\n"));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns_and_indent_notes() {
        let text = table(
            &["A", "BB", "C"],
            vec![
                (
                    vec!["long".into(), "x".into(), "last".into()],
                    vec!["why".into()],
                ),
                (vec!["s".into(), "yyy".into(), "z".into()], Vec::new()),
            ],
        );
        assert_eq!(
            text,
            "A     BB   C\nlong  x    last\n      - why\ns     yyy  z\n"
        );
    }
}
