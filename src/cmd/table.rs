//! What the listing commands (`sources`, `streams`, `numbers`) print: a JSON array or a plain
//! table (columns padded to their widest cell, the last one left ragged), on stdout.

/// Print `rows` as pretty JSON when `json`, else the `table` made of them, to stdout with
/// secrets masked. A closed pipe (`lineup sources | head -1`) is not an error.
pub fn print<T: serde::Serialize + ?Sized>(
    json: bool,
    rows: &T,
    table: impl FnOnce(&T) -> String,
) -> anyhow::Result<()> {
    use anyhow::Context;
    use std::io::Write;
    let text = if json {
        let mut json = serde_json::to_string_pretty(rows).context("cannot encode JSON")?;
        json.push('\n');
        json
    } else {
        table(rows)
    };
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(crate::secrets::mask(&text).as_bytes());
    let _ = stdout.flush();
    Ok(())
}

/// `head` and `cells` as a table, one line each.
pub fn render<const N: usize>(head: [&str; N], cells: &[[String; N]]) -> String {
    let mut widths = head.map(str::len);
    for line in cells {
        for (w, cell) in widths.iter_mut().zip(line) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut push = |line: &[String]| {
        let mut text = String::new();
        for (i, (cell, w)) in line.iter().zip(widths).enumerate() {
            if i + 1 == line.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    push(&head.map(String::from));
    for line in cells {
        push(line);
    }
    out
}

/// `2026-11-22T08:30:00.123Z` as `2026-11-22 08:30:00Z`: the table has no use for milliseconds.
pub fn short_time(t: &str) -> String {
    match (t.get(..10), t.get(11..19)) {
        (Some(date), Some(time)) => format!("{date} {time}Z"),
        _ => t.to_string(),
    }
}
