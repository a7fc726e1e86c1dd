//! Rendering helpers shared by every command: tables (comfy-table) and, later,
//! plots. Rendering only: values arrive computed.
use comfy_table::{ContentArrangement, Table, presets};

/// A table in advisor's house style with the given header.
pub fn table<I, S>(header: I) -> Table
where
    I: IntoIterator<Item = S>,
    S: Into<comfy_table::Cell>,
{
    let mut t = Table::new();
    t.load_style(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(
            header
                .into_iter()
                .map(Into::into)
                .collect::<Vec<comfy_table::Cell>>(),
        );
    t
}

pub mod advise;
pub mod plot;

/// `value [low, high]` with a unit-aware time format.
pub fn interval_s(e: &crate::units::Estimate) -> String {
    use crate::units::Seconds;
    if e.high - e.low <= 1e-12 {
        return Seconds(e.value).to_string();
    }
    format!(
        "{} [{} – {}]",
        Seconds(e.value),
        Seconds(e.low),
        Seconds(e.high)
    )
}
