//! The findings (sanitized basic HTML) laid out with their headings, paragraphs, emphasis,
//! lists and links, parsed with a real HTML parser (`scraper`, on html5ever).

use scraper::{ElementRef, Html, Node};

use super::layout::{Layout, Span, Style};

/// Body text size, in points.
pub const BODY: f32 = 10.0;

/// Lays out `html` (a case's findings).
pub fn render(layout: &mut Layout<'_>, html: &str) {
    let fragment = Html::parse_fragment(html);
    let mut block = Block::default();
    walk_children(layout, fragment.root_element(), &Style::default(), &mut block, 0.0);
    block.flush(layout, 0.0);
}

/// The inline text gathered for the block being built.
#[derive(Default)]
struct Block {
    spans: Vec<Span>,
    marker: Option<String>,
}

impl Block {
    fn flush(&mut self, layout: &mut Layout<'_>, indent: f32) {
        let has_text = self.spans.iter().any(|s| !s.text.trim().is_empty());
        if has_text {
            layout.paragraph(&self.spans, BODY, indent, self.marker.as_deref());
            layout.gap(BODY * 0.4);
        }
        self.spans.clear();
        self.marker = None;
    }
}

fn walk_children(
    layout: &mut Layout<'_>,
    element: ElementRef<'_>,
    style: &Style,
    block: &mut Block,
    indent: f32,
) {
    for child in element.children() {
        match child.value() {
            Node::Text(text) => {
                block.spans.push(Span { text: text.to_string(), style: style.clone() })
            }
            Node::Element(_) => {
                if let Some(child) = ElementRef::wrap(child) {
                    walk(layout, child, style, block, indent);
                }
            }
            _ => {}
        }
    }
}

fn walk(
    layout: &mut Layout<'_>,
    element: ElementRef<'_>,
    style: &Style,
    block: &mut Block,
    indent: f32,
) {
    let name = element.value().name();
    match name {
        "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => {
            block.flush(layout, indent);
            let size = match name {
                "h1" => 15.0,
                "h2" => 13.5,
                "h3" => 12.0,
                _ => 11.0,
            };
            let text: String = element.text().collect::<Vec<_>>().join("");
            layout.heading(text.trim(), size);
        }
        "p" | "div" | "blockquote" | "pre" => {
            block.flush(layout, indent);
            walk_children(layout, element, style, block, indent);
            block.flush(layout, indent);
        }
        "br" => {
            block.flush(layout, indent);
        }
        "ul" | "ol" => {
            block.flush(layout, indent);
            let ordered = name == "ol";
            let mut number = 0;
            for item in element.child_elements().filter(|e| e.value().name() == "li") {
                number += 1;
                let mut inner = Block {
                    spans: Vec::new(),
                    marker: Some(if ordered { format!("{number}.") } else { "•".to_owned() }),
                };
                walk_children(layout, item, style, &mut inner, indent + 18.0);
                inner.flush(layout, indent + 18.0);
            }
        }
        "li" => {
            block.flush(layout, indent);
            block.marker = Some("•".to_owned());
            walk_children(layout, element, style, block, indent + 18.0);
            block.flush(layout, indent + 18.0);
        }
        _ => {
            let mut inner = style.clone();
            match name {
                "strong" | "b" => inner.bold = true,
                "em" | "i" => inner.italic = true,
                "u" => inner.underline = true,
                "a" => inner.link = element.value().attr("href").map(str::to_owned),
                _ => {}
            }
            walk_children(layout, element, &inner, block, indent);
        }
    }
}
