//! Plain-text tables and the cells in them: a header row, every column padded to its widest
//! cell, two spaces between columns, no colours and no trailing spaces, so the output reads in
//! a terminal and splits on whitespace in a script. A cell never holds a control character or
//! is empty (`-` stands for null and for nothing).

use serde_json::Value;

pub struct Table {
    header: &'static [&'static str],
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &'static [&'static str]) -> Table {
        Table {
            header,
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Vec<String>) {
        debug_assert_eq!(row.len(), self.header.len());
        self.rows.push(row);
    }

    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let header = self
            .header
            .iter()
            .map(|h| h.to_string())
            .collect::<Vec<_>>();
        for row in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                line.push_str(cell);
                line.extend(std::iter::repeat_n(' ', w - cell.chars().count()));
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// A JSON value as one cell: strings bare, lists comma-joined, objects as compact JSON.
pub fn cell(v: Option<&Value>) -> String {
    let text = match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| cell(Some(i)))
            .collect::<Vec<_>>()
            .join(","),
        Some(other) => other.to_string(),
    };
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if clean.trim().is_empty() {
        "-".to_string()
    } else {
        clean
    }
}

/// The models cell: an empty or absent list means every model.
pub fn models(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "all".to_string(),
        Some(Value::Array(items)) if items.is_empty() => "all".to_string(),
        v => cell(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn columns_pad_to_the_widest_cell_without_trailing_spaces() {
        let mut t = Table::new(&["ID", "ALIAS", "STATE"]);
        t.push(vec!["key_1".into(), "-".into(), "active".into()]);
        t.push(vec![
            "k".into(),
            "a much longer alias".into(),
            "blocked".into(),
        ]);
        assert_eq!(
            t.render(),
            "ID     ALIAS                STATE\n\
             key_1  -                    active\n\
             k      a much longer alias  blocked\n"
        );
        assert_eq!(Table::new(&["ID", "NAME"]).render(), "ID  NAME\n");
    }

    #[test]
    fn width_counts_characters_not_bytes() {
        let mut t = Table::new(&["A", "B"]);
        t.push(vec!["été".into(), "x".into()]);
        t.push(vec!["abcd".into(), "y".into()]);
        assert_eq!(t.render(), "A     B\nété   x\nabcd  y\n");
    }

    #[test]
    fn cells_show_null_and_empty_as_a_dash_and_never_break_a_line() {
        assert_eq!(cell(None), "-");
        assert_eq!(cell(Some(&json!(null))), "-");
        assert_eq!(cell(Some(&json!(""))), "-");
        assert_eq!(cell(Some(&json!([]))), "-");
        assert_eq!(cell(Some(&json!("a\nb\tc"))), "a b c");
        assert_eq!(cell(Some(&json!(["a", 1, null]))), "a,1,-");
        assert_eq!(cell(Some(&json!(2.5))), "2.5");
        assert_eq!(cell(Some(&json!(true))), "true");
        assert_eq!(cell(Some(&json!({"a": 1}))), r#"{"a":1}"#);
    }

    #[test]
    fn no_models_means_all_models() {
        assert_eq!(models(None), "all");
        assert_eq!(models(Some(&json!([]))), "all");
        assert_eq!(models(Some(&json!(null))), "all");
        assert_eq!(models(Some(&json!(["gpt-4o", "claude"]))), "gpt-4o,claude");
    }
}
