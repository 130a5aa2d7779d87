//! A notification's words: one subject, a lead sentence, labelled facts and, for a
//! message, the message itself, rendered once as plain text and once as HTML.
//!
//! Every value is data, never markup: the HTML escapes all of it
//! (`ammonia::clean_text`), the plain text drops control characters, and the subject
//! (a header) has no line break or other control character and a bounded length. The
//! bodies carry no links.

/// The most characters a subject keeps (longer ones end with `…`).
const SUBJECT_MAX: usize = 200;

/// What a notification says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The subject without the `[casefile] ` prefix.
    pub subject: String,
    /// One sentence saying what happened.
    pub lead: String,
    /// Labelled facts, in order.
    pub facts: Vec<(&'static str, String)>,
    /// A quoted text (the message being notified), kept with its line breaks.
    pub quote: Option<String>,
}

/// A notification ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    /// The `Subject` header: one line.
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The closing line of every mail.
const FOOTER: &str = "This notification was sent by casefile. Open the case in casefile for \
                      its details; replies to this mail are not read.";

impl Notice {
    /// The subject, the plain-text body and the HTML body.
    pub fn render(&self) -> Content {
        Content {
            subject: header_text(&format!("[casefile] {}", self.subject)),
            text: self.text(),
            html: self.html(),
        }
    }

    fn text(&self) -> String {
        let mut out = String::new();
        out.push_str(&line(&self.lead));
        out.push_str("\n\n");
        let width = self.facts.iter().map(|(label, _)| label.chars().count()).max().unwrap_or(0);
        for (label, value) in &self.facts {
            out.push_str(&format!(
                "{:width$}  {}\n",
                format!("{label}:"),
                line(value),
                width = width + 1
            ));
        }
        if let Some(quote) = &self.quote {
            out.push_str("\n----\n");
            out.push_str(&block(quote));
            out.push_str("\n----\n");
        }
        out.push('\n');
        out.push_str(FOOTER);
        out.push('\n');
        out
    }

    fn html(&self) -> String {
        let mut out = String::from(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head>\
             <body style=\"font-family: sans-serif\">\n",
        );
        out.push_str(&format!("<p>{}</p>\n<table>\n", escape(&line(&self.lead))));
        for (label, value) in &self.facts {
            out.push_str(&format!(
                "<tr><th style=\"text-align: left; padding-right: 1em\">{}</th><td>{}</td></tr>\n",
                escape(label),
                escape(&line(value)),
            ));
        }
        out.push_str("</table>\n");
        if let Some(quote) = &self.quote {
            out.push_str(&format!(
                "<blockquote style=\"white-space: pre-wrap\">{}</blockquote>\n",
                escape(&block(quote))
            ));
        }
        out.push_str(&format!("<p style=\"color: #666\">{}</p>\n</body></html>\n", escape(FOOTER)));
        out
    }
}

/// Text as HTML character data (every markup character escaped).
fn escape(text: &str) -> String {
    ammonia::clean_text(text)
}

/// One line: control characters and line breaks become spaces, runs of white space one.
pub fn line(text: &str) -> String {
    text.split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A header value: one line of at most [`SUBJECT_MAX`] characters.
pub fn header_text(text: &str) -> String {
    let one = line(text);
    if one.chars().count() <= SUBJECT_MAX {
        return one;
    }
    let mut cut: String = one.chars().take(SUBJECT_MAX - 1).collect();
    cut.push('…');
    cut
}

/// A block of text: line breaks kept (as `\n`), tabs kept, other control characters
/// dropped.
fn block(text: &str) -> String {
    text.replace("\r\n", "\n")
        .replace('\r', "\n")
        .chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice() -> Notice {
        Notice {
            subject: "Case #7 created: <b>Evil</b>\r\nBcc: victim@example.com".into(),
            lead: "Case #7 was created.".into(),
            facts: vec![
                ("Name", "<script>alert(1)</script> & \"x\"".into()),
                ("Devices", "a\u{1b}[31m\nb".into()),
            ],
            quote: Some("line one\r\nline <two>\u{7}".into()),
        }
    }

    #[test]
    fn headers_are_one_line_without_control_characters() {
        let content = notice().render();
        assert!(!content.subject.contains(['\r', '\n']));
        assert!(content.subject.starts_with("[casefile] Case #7 created: "));
        let long = header_text(&"x".repeat(500));
        assert_eq!(long.chars().count(), SUBJECT_MAX);
    }

    #[test]
    fn html_escapes_every_value() {
        let html = notice().render().html;
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("<b>"), "{html}");
        assert!(!html.contains("<two>"), "{html}");
        assert!(!html.contains('\u{1b}'));
        assert!(!html.contains("href"), "no links: {html}");
    }

    #[test]
    fn plain_text_keeps_the_quote_lines_and_drops_control_characters() {
        let text = notice().render().text;
        assert!(text.contains("line one\nline <two>\n"), "{text}");
        assert!(!text.contains(['\r', '\u{1b}', '\u{7}']), "{text}");
        assert!(text.contains("Devices:  a [31m b"), "{text}");
    }
}
