//! Aligned tables for a terminal, and JSON for scripts.

use std::io::{self, Write};

/// A table: a header and rows of cells, printed with every column aligned.
#[derive(Debug)]
pub struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column names.
    pub fn new(header: Vec<&'static str>) -> Self {
        Self { header, rows: Vec::new() }
    }

    /// Adds a row (as many cells as columns).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Whether no row was added.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Prints the table; the last column is not padded (it may be long, like a
    /// payload or an error).
    pub fn print(&self, out: &mut impl Write) -> io::Result<()> {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let line = |out: &mut dyn Write, cells: &mut dyn Iterator<Item = &str>| -> io::Result<()> {
            let mut text = String::new();
            let cells: Vec<&str> = cells.collect();
            for (index, cell) in cells.iter().enumerate() {
                if index + 1 == cells.len() {
                    text.push_str(cell);
                } else {
                    let pad = widths[index].saturating_sub(cell.chars().count());
                    text.push_str(cell);
                    text.extend(std::iter::repeat_n(' ', pad + 2));
                }
            }
            writeln!(out, "{}", text.trim_end())
        };
        line(out, &mut self.header.iter().copied())?;
        for row in &self.rows {
            line(out, &mut row.iter().map(String::as_str))?;
        }
        Ok(())
    }
}

/// Prints a value as pretty JSON on its own.
pub fn print_json(out: &mut impl Write, value: &impl serde::Serialize) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value).map_err(io::Error::other)?;
    writeln!(out)
}

/// A duration for people: `950ms`, `42s`, `3m 12s`, `5h 02m`, `3d 4h`.
pub fn human_duration(micros: i64) -> String {
    let micros = micros.max(0);
    let seconds = micros / 1_000_000;
    match seconds {
        0 => format!("{}ms", micros / 1000),
        1..60 => format!("{seconds}s"),
        60..3600 => format!("{}m {:02}s", seconds / 60, seconds % 60),
        3600..86_400 => format!("{}h {:02}m", seconds / 3600, seconds % 3600 / 60),
        _ => format!("{}d {}h", seconds / 86_400, seconds % 86_400 / 3600),
    }
}

/// Text made safe for one table cell: control characters (a newline in an error
/// message, an escape sequence in a stream id) are shown escaped, never sent to the
/// terminal.
pub fn cell(text: &str) -> String {
    if text.chars().any(char::is_control) { text.escape_default().to_string() } else { text.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_and_the_last_is_not_padded() {
        let mut table = Table::new(vec!["A", "LONGER", "LAST"]);
        table.row(vec!["xyz".into(), "1".into(), "tail".into()]);
        let mut out = Vec::new();
        table.print(&mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "A    LONGER  LAST\nxyz  1       tail\n");
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(human_duration(950_000), "950ms");
        assert_eq!(human_duration(42_000_000), "42s");
        assert_eq!(human_duration(192_000_000), "3m 12s");
        assert_eq!(human_duration(-5), "0ms");
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(cell("a\nb\u{1b}[31m"), "a\\nb\\u{1b}[31m");
        assert_eq!(cell("plain"), "plain");
    }
}
