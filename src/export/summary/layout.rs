//! A small page layout for the summary PDF: styled runs wrapped into lines on A4 pages,
//! then drawn with krilla as real text in embedded DejaVu Sans (Latin, Greek, Cyrillic).

use krilla::Document;
use krilla::action::{Action, LinkAction};
use krilla::annotation::{Annotation, LinkAnnotation, Target};
use krilla::color::rgb;
use krilla::geom::{PathBuilder, Point, Rect};
use krilla::num::NormalizedF32;
use krilla::page::PageSettings;
use krilla::paint::{Fill, FillRule};
use krilla::text::{Font, TextDirection};

/// A4 in points, and the margins.
const PAGE_WIDTH: f32 = 595.28;
const PAGE_HEIGHT: f32 = 841.89;
const MARGIN: f32 = 56.0;
/// Room kept at the bottom for the page footer.
const FOOTER: f32 = 28.0;

/// How a run of text looks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Style {
    pub bold: bool,
    pub italic: bool,
    pub underline: bool,
    /// The target of a link.
    pub link: Option<String>,
}

/// Text in one style.
#[derive(Debug, Clone)]
pub struct Span {
    pub text: String,
    pub style: Style,
}

impl Span {
    pub fn plain(text: impl Into<String>) -> Self {
        Span { text: text.into(), style: Style::default() }
    }

    pub fn bold(text: impl Into<String>) -> Self {
        Span { text: text.into(), style: Style { bold: true, ..Style::default() } }
    }
}

/// The four faces of DejaVu Sans, from the `dejavu` crate, with their metrics for measuring.
pub struct Fonts {
    faces: [(Font, ttf_parser::Face<'static>); 4],
}

impl Fonts {
    pub fn load() -> Option<Self> {
        let face = |data: &'static [u8]| -> Option<(Font, ttf_parser::Face<'static>)> {
            Some((Font::new(data.into(), 0)?, ttf_parser::Face::parse(data, 0).ok()?))
        };
        Some(Fonts {
            faces: [
                face(dejavu::sans::regular())?,
                face(dejavu::sans::bold())?,
                face(dejavu::sans::oblique())?,
                face(dejavu::sans::bold_oblique())?,
            ],
        })
    }

    fn index(style: &Style) -> usize {
        usize::from(style.bold) + 2 * usize::from(style.italic)
    }

    fn font(&self, style: &Style) -> Font {
        self.faces[Self::index(style)].0.clone()
    }

    /// The advance width of `text` at `size` points (no kerning: a close upper bound).
    fn width(&self, style: &Style, size: f32, text: &str) -> f32 {
        let face = &self.faces[Self::index(style)].1;
        let units = f32::from(face.units_per_em());
        let advance: f32 = text
            .chars()
            .map(|c| {
                face.glyph_index(c)
                    .and_then(|g| face.glyph_hor_advance(g))
                    .map_or(units / 2.0, f32::from)
            })
            .sum();
        advance * size / units
    }
}

/// Something to draw on a page.
#[derive(Debug, Clone)]
enum Op {
    Text { x: f32, y: f32, size: f32, style: Style, text: String },
    Rule { x: f32, y: f32, width: f32, thickness: f32 },
}

/// Lays text out into pages.
pub struct Layout<'f> {
    fonts: &'f Fonts,
    pages: Vec<Vec<Op>>,
    /// The top of the next line on the current page.
    y: f32,
}

impl<'f> Layout<'f> {
    pub fn new(fonts: &'f Fonts) -> Self {
        Layout { fonts, pages: vec![Vec::new()], y: MARGIN }
    }

    fn width() -> f32 {
        PAGE_WIDTH - 2.0 * MARGIN
    }

    fn ops(&mut self) -> &mut Vec<Op> {
        if self.pages.is_empty() {
            self.pages.push(Vec::new());
        }
        let last = self.pages.len() - 1;
        &mut self.pages[last]
    }

    /// Starts a new page when `height` more does not fit on this one.
    fn room(&mut self, height: f32) {
        if self.y + height > PAGE_HEIGHT - MARGIN - FOOTER && self.y > MARGIN {
            self.pages.push(Vec::new());
            self.y = MARGIN;
        }
    }

    /// Vertical space.
    pub fn gap(&mut self, points: f32) {
        self.y += points;
    }

    /// A section heading with a rule under it, kept together with what follows.
    pub fn heading(&mut self, text: &str, size: f32) {
        self.room(size * 5.0);
        self.gap(size * 0.6);
        self.paragraph(&[Span::bold(text)], size, 0.0, None);
        if size >= 14.0 {
            let y = self.y;
            self.ops().push(Op::Rule { x: MARGIN, y, width: Self::width(), thickness: 0.6 });
            self.gap(4.0);
        }
    }

    /// Styled text wrapped to the width, indented by `indent`; `marker` (a bullet or a
    /// number) hangs in the indent on the first line.
    pub fn paragraph(&mut self, spans: &[Span], size: f32, indent: f32, marker: Option<&str>) {
        let words = words(spans);
        let line_height = size * 1.35;
        let left = MARGIN + indent;
        let max = Self::width() - indent;
        let space = self.fonts.width(&Style::default(), size, " ");
        let mut line: Vec<(f32, &Style, String, bool)> = Vec::new();
        let mut x = 0.0;
        let marker = std::cell::Cell::new(marker);
        let flush = |this: &mut Self, line: &mut Vec<(f32, &Style, String, bool)>| {
            this.room(line_height);
            let baseline = this.y + size;
            if let Some(text) = marker.take() {
                let width = this.fonts.width(&Style::default(), size, text);
                this.ops().push(Op::Text {
                    x: left - width - 4.0,
                    y: baseline,
                    size,
                    style: Style::default(),
                    text: text.to_owned(),
                });
            }
            // Consecutive words in one style are drawn as one run, spaces included.
            let mut runs: Vec<(f32, Style, String)> = Vec::new();
            for (wx, style, text, space_before) in line.drain(..) {
                match runs.last_mut() {
                    Some((_, s, t)) if s == style => {
                        if space_before {
                            t.push(' ');
                        }
                        t.push_str(&text);
                    }
                    _ => runs.push((wx, style.clone(), text)),
                }
            }
            for (wx, style, text) in runs {
                let width = this.fonts.width(&style, size, &text);
                if style.underline || style.link.is_some() {
                    let rule_y = baseline + size * 0.12;
                    let op = Op::Rule { x: left + wx, y: rule_y, width, thickness: 0.5 };
                    this.ops().push(op);
                }
                this.ops().push(Op::Text { x: left + wx, y: baseline, size, style, text });
            }
            this.y += line_height;
        };
        for (style, word, space_before) in &words {
            let pieces = split_to_fit(self.fonts, style, size, word, max);
            for (i, piece) in pieces.into_iter().enumerate() {
                let space_before = *space_before && i == 0;
                let width = self.fonts.width(style, size, &piece);
                let gap = if line.is_empty() || !space_before { 0.0 } else { space };
                if !line.is_empty() && x + gap + width > max {
                    flush(self, &mut line);
                    x = 0.0;
                }
                let space_before = space_before && !line.is_empty();
                let gap = if space_before { space } else { 0.0 };
                line.push((x + gap, style, piece, space_before));
                x += gap + width;
            }
        }
        if !line.is_empty() || marker.get().is_some() {
            flush(self, &mut line);
        }
    }

    /// Draws every page with a footer and returns the PDF.
    pub fn render(self, document: &mut Document, footer: &str) {
        let count = self.pages.len();
        for (index, ops) in self.pages.into_iter().enumerate() {
            let settings = PageSettings::from_wh(PAGE_WIDTH, PAGE_HEIGHT).unwrap_or_default();
            let mut page = document.start_page_with(settings);
            let mut links = Vec::new();
            let mut surface = page.surface();
            for op in ops {
                match op {
                    Op::Text { x, y, size, style, text } => {
                        let color = if style.link.is_some() { (20, 60, 170) } else { (0, 0, 0) };
                        surface.set_fill(Some(fill(color)));
                        let font = self.fonts.font(&style);
                        surface.draw_text(
                            Point::from_xy(x, y),
                            font,
                            size,
                            &text,
                            false,
                            TextDirection::Auto,
                        );
                        if let Some(url) = style.link.clone() {
                            let width = self.fonts.width(&style, size, &text);
                            if let Some(rect) = Rect::from_xywh(x, y - size, width, size * 1.25) {
                                links.push((rect, url));
                            }
                        }
                    }
                    Op::Rule { x, y, width, thickness } => {
                        surface.set_fill(Some(fill((90, 90, 90))));
                        let mut path = PathBuilder::new();
                        if let Some(rect) = Rect::from_xywh(x, y, width, thickness) {
                            path.push_rect(rect);
                        }
                        if let Some(path) = path.finish() {
                            surface.draw_path(&path);
                        }
                    }
                }
            }
            let text = format!("{footer} · page {} of {count}", index + 1);
            surface.set_fill(Some(fill((90, 90, 90))));
            surface.draw_text(
                Point::from_xy(MARGIN, PAGE_HEIGHT - MARGIN + 8.0),
                self.fonts.font(&Style::default()),
                8.0,
                &text,
                false,
                TextDirection::Auto,
            );
            surface.finish();
            for (rect, url) in links {
                let target = Target::Action(Action::Link(LinkAction::new(url.clone())));
                page.add_annotation(Annotation::new_link(
                    LinkAnnotation::new(rect, target),
                    Some(url),
                ));
            }
            page.finish();
        }
    }
}

fn fill((r, g, b): (u8, u8, u8)) -> Fill {
    Fill {
        paint: rgb::Color::new(r, g, b).into(),
        opacity: NormalizedF32::ONE,
        rule: FillRule::NonZero,
    }
}

/// The words of the spans with their style and whether a space comes before each
/// (whitespace collapsed as HTML does).
fn words(spans: &[Span]) -> Vec<(&Style, String, bool)> {
    let mut out: Vec<(&Style, String, bool)> = Vec::new();
    let mut pending_space = false;
    for span in spans {
        let mut current = String::new();
        for c in span.text.chars() {
            if c.is_whitespace() {
                if !current.is_empty() {
                    out.push((&span.style, std::mem::take(&mut current), pending_space));
                }
                pending_space = true;
            } else {
                current.push(c);
            }
        }
        if !current.is_empty() {
            // A word continues into the next span when no space separates them.
            out.push((&span.style, current, pending_space));
            pending_space = false;
        }
    }
    out
}

/// A word wider than the line (a long hash or URL) cut into pieces that fit.
fn split_to_fit(fonts: &Fonts, style: &Style, size: f32, word: &str, max: f32) -> Vec<String> {
    if fonts.width(style, size, word) <= max {
        return vec![word.to_owned()];
    }
    let mut pieces = vec![String::new()];
    for c in word.chars() {
        let mut candidate = pieces.last().cloned().unwrap_or_default();
        candidate.push(c);
        if fonts.width(style, size, &candidate) > max && candidate.chars().count() > 1 {
            pieces.push(c.to_string());
        } else if let Some(last) = pieces.last_mut() {
            *last = candidate;
        }
    }
    pieces
}
