//! Names inside an export package: each stored file under `files/`, in a folder named
//! `yyyymmdd-hhmmss - <file name>` from the event's `observedAt` in UTC (` (2)`, ` (3)`
//! for a second event of the same second and name), under its original name made safe
//! for every operating system.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use unicode_normalization::UnicodeNormalization;

/// Longest safe name, in bytes: file systems allow 255 per component, and the folder adds
/// its time stamp and a counter.
const MAX_NAME_BYTES: usize = 200;

/// Windows device names: a file called so (with any extension) opens the device.
const RESERVED: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "COM¹", "COM²", "COM³", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8",
    "LPT9", "LPT¹", "LPT²", "LPT³", "CONIN$", "CONOUT$",
];

/// Characters no file name may hold on some system: separators, Windows' reserved
/// punctuation, control characters, and the invisible marks that reorder text.
fn unsafe_char(c: char) -> bool {
    matches!(c, '/' | '\\' | '<' | '>' | ':' | '"' | '|' | '?' | '*')
        || c.is_control()
        || matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// `name` as a file name that is safe on Linux, macOS and Windows: NFC, no separators or
/// control characters (each becomes `_`), no `..` (runs of dots become one dot), no
/// leading dot, no trailing dots or spaces, not a reserved device name (`CON` becomes
/// `_CON`), at most 200 bytes (the extension kept); `file` when nothing is left.
pub fn safe_file_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.nfc() {
        let c = if unsafe_char(c) { '_' } else { c };
        if c == '.' && out.ends_with('.') {
            continue;
        }
        out.push(c);
    }
    let mut out = out.trim_end_matches(['.', ' ']).trim_start_matches(' ').to_owned();
    if out.starts_with('.') {
        out.replace_range(0..1, "_");
    }
    if out.is_empty() {
        return "file".to_owned();
    }
    let stem = out.split('.').next().unwrap_or_default().trim_end();
    if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(stem) || stem.to_uppercase() == *r) {
        out.insert(0, '_');
    }
    truncate(out)
}

/// Cuts a name to [`MAX_NAME_BYTES`] on a character boundary, keeping a short extension.
fn truncate(name: String) -> String {
    if name.len() <= MAX_NAME_BYTES {
        return name;
    }
    let extension = match name.rfind('.') {
        Some(dot) if name.len() - dot <= 16 => name[dot..].to_owned(),
        _ => String::new(),
    };
    let mut stem_end = MAX_NAME_BYTES - extension.len();
    while !name.is_char_boundary(stem_end) {
        stem_end -= 1;
    }
    let stem = name[..stem_end].trim_end_matches(['.', ' ']);
    format!("{stem}{extension}")
}

/// Gives each stored file of an export its path, in the order files are added.
#[derive(Debug, Default)]
pub struct FolderNamer {
    taken: HashMap<String, u32>,
}

impl FolderNamer {
    /// `files/<folder>/<safe name>` for a file event observed at `observed_at` named
    /// `file_name` (absent: `file`).
    pub fn path(&mut self, observed_at: DateTime<Utc>, file_name: Option<&str>) -> String {
        let name = safe_file_name(file_name.unwrap_or_default());
        let base = format!("{} - {name}", observed_at.format("%Y%m%d-%H%M%S"));
        let seen = self.taken.entry(base.to_lowercase()).or_insert(0);
        *seen += 1;
        let folder = match *seen {
            1 => base,
            n => format!("{base} ({n})"),
        };
        format!("files/{folder}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_names_become_safe_and_plain_ones_stay() {
        assert_eq!(safe_file_name("report final.pdf"), "report final.pdf");
        assert_eq!(safe_file_name("Отчёт Σ.docx"), "Отчёт Σ.docx");
        assert_eq!(safe_file_name("../../etc/passwd"), "__._etc_passwd");
        assert_eq!(safe_file_name("a\\b/c"), "a_b_c");
        assert_eq!(safe_file_name("CON"), "_CON");
        assert_eq!(safe_file_name("con.txt"), "_con.txt");
        assert_eq!(safe_file_name("lpt1.tar.gz"), "_lpt1.tar.gz");
        assert_eq!(safe_file_name("CONTRACT.txt"), "CONTRACT.txt");
        assert_eq!(safe_file_name("bad\u{0}\n\u{202E}name.exe"), "bad___name.exe");
        assert_eq!(safe_file_name("trailing. . "), "trailing");
        assert_eq!(safe_file_name(".."), "file");
        assert_eq!(safe_file_name(".bashrc"), "_bashrc");
        assert_eq!(safe_file_name(""), "file");
        let long = format!("{}.txt", "й".repeat(300));
        let cut = safe_file_name(&long);
        assert!(cut.len() <= MAX_NAME_BYTES && cut.ends_with(".txt"), "{cut}");
        for name in ["../x", "a..b", "...", "x/../../y"] {
            assert!(!safe_file_name(name).contains(".."), "{name}");
        }
    }

    #[test]
    fn folders_count_repeats_of_the_same_second_and_name() {
        let at = DateTime::parse_from_rfc3339("2026-03-04T05:06:07.900+02:00")
            .map(|t| t.with_timezone(&Utc))
            .expect("time");
        let mut namer = FolderNamer::default();
        assert_eq!(namer.path(at, Some("a.txt")), "files/20260304-030607 - a.txt/a.txt");
        assert_eq!(namer.path(at, Some("a.txt")), "files/20260304-030607 - a.txt (2)/a.txt");
        assert_eq!(namer.path(at, Some("b.txt")), "files/20260304-030607 - b.txt/b.txt");
        assert_eq!(namer.path(at, Some("a.txt")), "files/20260304-030607 - a.txt (3)/a.txt");
    }
}
