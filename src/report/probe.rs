//! The human form of `advisor probe`: one row per measurement (value, spread
//! or size, how it was measured), then the notes. Rendering only: the profile
//! arrives measured, nothing here prints.
use super::table;
use crate::probe::NetworkProfile;
use crate::units::{Bytes, Seconds};

/// A rate in binary units per second (`112 MiB/s`).
pub(super) fn rate(bytes_per_s: f64) -> String {
    format!("{}/s", Bytes(bytes_per_s.max(0.0).round() as u64))
}

fn or_none(v: Option<Seconds>, why: &str) -> String {
    v.map_or_else(|| format!("— ({why})"), |s| s.to_string())
}

/// The profile as a table and its notes.
pub fn render(p: &NetworkProfile) -> String {
    let mut t = table(["measure", "value", "detail"]);
    let r = &p.rtt_s;
    t.add_row([
        "round trip".to_string(),
        r.median.to_string(),
        format!(
            "median; p10 {} p90 {}; {} × {} on one connection",
            r.p10, r.p90, r.samples, p.rtt_request
        ),
    ]);
    t.add_row([
        "TCP connect".to_string(),
        p.connect_s.to_string(),
        format!("median to {}", p.address),
    ]);
    t.add_row([
        "TLS handshake".to_string(),
        or_none(p.tls_s, "plain HTTP"),
        format!(
            "connection set-up {} (fresh − kept-alive request)",
            p.setup_s
        ),
    ]);
    t.add_row([
        "authorization".to_string(),
        or_none(p.auth_s, "none"),
        "pull token exchange".to_string(),
    ]);
    match &p.single_stream {
        Some(s) => t.add_row([
            "1 stream".to_string(),
            rate(s.bytes_per_s),
            format!(
                "{} in {}; first byte after {}{}",
                s.bytes,
                s.seconds,
                s.ttfb_s,
                if s.verified { "; digest verified" } else { "" }
            ),
        ]),
        None => t.add_row(["1 stream", "—", "not measured (no blob)"].map(String::from)),
    };
    match &p.multi_stream {
        Some(m) => t.add_row([
            format!("{} streams", m.streams),
            rate(m.bytes_per_s),
            format!(
                "{} in {}; first byte after {}; one connection each",
                m.bytes, m.seconds, m.ttfb_s
            ),
        ]),
        None => t.add_row(["N streams", "—", "not measured (no blob)"].map(String::from)),
    };
    let mut out = format!(
        "{} ({}), {}{}\n{t}\n",
        p.registry,
        p.scheme,
        p.measured_at,
        p.blob
            .as_ref()
            .map(|b| format!("; blob {} ({})", b.digest, b.size))
            .unwrap_or_default()
    );
    for n in &p.notes {
        out.push_str(&format!("note: {n}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::render;
    use crate::probe::profile::tests::sample;

    #[test]
    fn lab_profile_table() {
        insta::assert_snapshot!(render(&sample()));
    }

    #[test]
    fn profile_without_blob() {
        let p = crate::probe::NetworkProfile {
            blob: None,
            single_stream: None,
            multi_stream: None,
            rtt_request: "GET /v2/".into(),
            notes: vec![
                "no --blob or --image: throughput was not measured (only round trips and connection set-up)".into(),
            ],
            ..sample()
        };
        insta::assert_snapshot!(render(&p));
    }
}
