//! Tables and ages as kubectl prints them.
//!
//! kubectl aligns columns with Go's tabwriter (`printers.GetNewTabWriter`: minimum width 6,
//! padding 3, spaces, no borders): each column but the last is as wide as its widest cell plus
//! three spaces. Ages are kubectl's `duration.HumanDuration` ([`human_duration`]).

use jiff::Timestamp;

use crate::duration::human_duration;

const MIN_WIDTH: usize = 6;
const PADDING: usize = 3;

/// Rows of cells under a header, printed as kubectl prints them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Self {
        Table {
            header: header.iter().map(|&cell| cell.to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    /// Each column's width: its widest cell plus the padding, at least the minimum.
    pub fn widths(&self) -> Vec<usize> {
        let mut widths = vec![MIN_WIDTH; self.header.len()];
        for row in std::iter::once(&self.header).chain(&self.rows) {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count() + PADDING);
            }
        }
        widths
    }

    /// The header and every row, each line ending in a newline.
    pub fn render(&self) -> String {
        let widths = self.widths();
        let mut out = line(&self.header, &widths);
        for row in &self.rows {
            out.push_str(&line(row, &widths));
        }
        out
    }
}

/// One line of cells in columns of `widths` (the last cell is not padded).
pub fn line(cells: &[String], widths: &[usize]) -> String {
    let mut out = String::new();
    for (index, cell) in cells.iter().enumerate() {
        let last = index + 1 == cells.len();
        match widths.get(index) {
            Some(&width) if !last => {
                out.push_str(cell);
                let used = cell.chars().count();
                out.extend(std::iter::repeat_n(' ', width.saturating_sub(used).max(1)));
            }
            _ => out.push_str(cell),
        }
    }
    out.truncate(out.trim_end().len());
    out.push('\n');
    out
}

/// How long ago `created` was, as kubectl's AGE column says it; `<unknown>` without a time.
pub fn age(created: Option<Timestamp>, now: Timestamp) -> String {
    created.map_or_else(
        || "<unknown>".into(),
        |created| human_duration(now.duration_since(created)),
    )
}

/// kubectl's `<none>` for an empty cell.
pub fn or_none(text: Option<&str>) -> String {
    match text {
        Some(text) if !text.is_empty() => text.to_owned(),
        _ => "<none>".into(),
    }
}

/// The first line of a message, for a table cell.
pub fn one_line(text: Option<&str>) -> String {
    text.and_then(|text| text.lines().next())
        .unwrap_or_default()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().expect("timestamp")
    }

    #[test]
    fn ages_read_as_kubectl_writes_them() {
        let now = at("2026-03-01T12:00:00Z");
        let ago = |seconds: i64| age(Some(now - jiff::SignedDuration::from_secs(seconds)), now);

        assert_eq!(ago(45), "45s");
        assert_eq!(ago(3 * 60 + 12), "3m12s");
        assert_eq!(ago(5 * 3600 + 2 * 60), "5h2m");
        assert_eq!(ago(3 * 86_400 + 4 * 3600), "3d4h");
        assert_eq!(ago(12 * 86_400), "12d");
        assert_eq!(ago(119), "119s");
        assert_eq!(ago(10 * 60), "10m");
        assert_eq!(ago(25 * 3600), "25h");
        assert_eq!(ago(-1), "0s", "a clock a second ahead reads as now");
        assert_eq!(ago(-5), "<invalid>");
        assert_eq!(age(None, now), "<unknown>");
    }

    #[test]
    fn columns_are_padded_by_three_spaces_like_kubectl() {
        let mut table = Table::new(&["NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
        table.push(vec![
            "sh-0193-abcde".into(),
            "1/1".into(),
            "Running".into(),
            "0".into(),
            "5s".into(),
        ]);
        table.push(vec![
            "sh-0194-fghij".into(),
            "0/1".into(),
            "ImagePullBackOff".into(),
            "12".into(),
            "3m12s".into(),
        ]);

        assert_eq!(
            table.render(),
            "\
NAME            READY   STATUS             RESTARTS   AGE
sh-0193-abcde   1/1     Running            0          5s
sh-0194-fghij   0/1     ImagePullBackOff   12         3m12s
"
        );
    }

    #[test]
    fn a_narrow_column_is_still_six_wide_and_an_empty_last_cell_leaves_no_trailing_space() {
        let mut table = Table::new(&["ID", "MESSAGE"]);
        table.push(vec!["a".into(), String::new()]);

        assert_eq!(table.render(), "ID    MESSAGE\na\n");
    }
}
