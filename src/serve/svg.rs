//! The console's pictures, drawn as SVG on the server: a build's phase timeline, a report
//! group's trend, a batch's build graph. Every text placed in a picture is escaped; sizes
//! are in a `viewBox`, so a picture scales to the page (360 px phones included).

use std::collections::HashMap;
use std::fmt::Write;

use quick_xml::escape::escape;

use super::model::{BatchNode, PhaseBar};
use crate::reports::kept::Point;

/// The colour of a status (readable on white, distinct for the colour-blind by lightness).
pub fn status_colour(status: &str) -> &'static str {
    match status {
        "SUCCEEDED" => "#1a7f37",
        "FAILED" | "FAULT" | "DAMAGED" => "#cf222e",
        "TIMED_OUT" | "STOPPED" => "#9a6700",
        "IN_PROGRESS" => "#0969da",
        _ => "#6e7781",
    }
}

/// `12 ms`, `1.23 s`, `2 min 05 s`.
pub fn duration_text(seconds: f64) -> String {
    if seconds < 0.0005 {
        "0 ms".to_owned()
    } else if seconds < 1.0 {
        format!("{:.0} ms", seconds * 1e3)
    } else if seconds < 60.0 {
        format!("{seconds:.2} s")
    } else {
        let whole = seconds.round() as u64;
        format!("{} min {:02} s", whole / 60, whole % 60)
    }
}

/// A horizontal bar per phase, placed by start and length, coloured by status, with the
/// phase's name and duration. Phases too short to see get a minimum width.
pub fn timeline(phases: &[PhaseBar]) -> String {
    let total = phases
        .iter()
        .map(|p| p.offset_seconds + p.duration_seconds)
        .fold(0.0_f64, f64::max)
        .max(0.001);
    let (width, label, row) = (720.0, 170.0, 26.0);
    let span = width - label - 90.0;
    let height = row * phases.len() as f64 + 24.0;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="timeline" role="img" aria-label="phase timeline" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg" font-family="system-ui, sans-serif" font-size="12">"#
    );
    for (i, phase) in phases.iter().enumerate() {
        let y = i as f64 * row + 4.0;
        let x = label + phase.offset_seconds / total * span;
        let w = (phase.duration_seconds / total * span).max(3.0);
        let colour = status_colour(&phase.status);
        let name = escape(phase.phase.as_str());
        let status = escape(phase.status.as_str());
        let _ = write!(
            svg,
            r##"<g class="phase" data-phase="{name}" data-status="{status}"><title>{name}: {status}, {}</title><text x="0" y="{}" fill="#24292f">{name}</text><rect x="{x:.1}" y="{y}" width="{w:.1}" height="{}" rx="3" fill="{colour}"/><text x="{:.1}" y="{}" fill="#57606a">{}</text></g>"##,
            duration_text(phase.duration_seconds),
            y + 14.0,
            row - 8.0,
            x + w + 6.0,
            y + 14.0,
            duration_text(phase.duration_seconds),
        );
    }
    let _ = write!(
        svg,
        r##"<line x1="{label}" x2="{}" y1="{}" y2="{}" stroke="#d0d7de"/><text x="{label}" y="{}" fill="#57606a">0 s</text><text x="{}" y="{}" fill="#57606a" text-anchor="end">{}</text></svg>"##,
        label + span,
        height - 16.0,
        height - 16.0,
        height - 3.0,
        label + span,
        height - 3.0,
        duration_text(total)
    );
    svg
}

/// A small chart of a group's last builds: pass rate (tests) or line coverage (coverage)
/// as a line from 0 to 100 %, a dot per build coloured by the report's status.
pub fn trend(points: &[Point]) -> String {
    let (width, height, pad) = (480.0, 140.0, 28.0);
    let mut svg = format!(
        r#"<svg class="trend" role="img" aria-label="trend" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg" font-family="system-ui, sans-serif" font-size="11">"#
    );
    let value = |p: &Point| p.pass_rate.or(p.line_coverage).unwrap_or(0.0);
    let step = if points.len() > 1 {
        (width - 2.0 * pad) / (points.len() - 1) as f64
    } else {
        0.0
    };
    let xy = |i: usize, p: &Point| {
        (
            pad + i as f64 * step,
            height - pad - value(p) / 100.0 * (height - 2.0 * pad),
        )
    };
    let _ = write!(
        svg,
        r##"<line x1="{pad}" x2="{}" y1="{}" y2="{}" stroke="#d0d7de"/><line x1="{pad}" x2="{}" y1="{pad}" y2="{pad}" stroke="#eaeef2"/><text x="2" y="{}" fill="#57606a">100%</text><text x="2" y="{}" fill="#57606a">0%</text>"##,
        width - pad,
        height - pad,
        height - pad,
        width - pad,
        pad + 4.0,
        height - pad + 4.0,
    );
    let path: Vec<String> = points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let (x, y) = xy(i, p);
            format!("{x:.1},{y:.1}")
        })
        .collect();
    if path.len() > 1 {
        let _ = write!(
            svg,
            r##"<polyline points="{}" fill="none" stroke="#0969da" stroke-width="2"/>"##,
            path.join(" ")
        );
    }
    for (i, p) in points.iter().enumerate() {
        let (x, y) = xy(i, p);
        let _ = write!(
            svg,
            r##"<circle cx="{x:.1}" cy="{y:.1}" r="4" fill="{}"><title>build {}: {:.2}% ({})</title></circle><text x="{x:.1}" y="{}" fill="#57606a" text-anchor="middle">{}</text>"##,
            status_colour(&p.status),
            p.build_number,
            value(p),
            escape(p.status.as_str()),
            height - 8.0,
            p.build_number
        );
    }
    svg.push_str("</svg>");
    svg
}

/// The batch's builds in columns by depth (a build right of everything it depends on),
/// arrows from each dependency, each box coloured by its build's status.
pub fn batch_graph(nodes: &[BatchNode], href: impl Fn(&BatchNode) -> Option<String>) -> String {
    let index: HashMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.identifier.as_str(), i))
        .collect();
    // Depth = longest chain of dependencies (the plan has no cycles; bounded anyway).
    let mut depth = vec![0usize; nodes.len()];
    for _ in 0..nodes.len() {
        let mut changed = false;
        for (i, node) in nodes.iter().enumerate() {
            for dep in &node.depends_on {
                if let Some(&d) = index.get(dep.as_str())
                    && depth[i] < depth[d] + 1
                {
                    depth[i] = depth[d] + 1;
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    let columns = depth.iter().max().map_or(1, |d| d + 1);
    let mut rows = vec![0usize; columns];
    let mut place = vec![(0usize, 0usize); nodes.len()];
    for (i, &d) in depth.iter().enumerate() {
        place[i] = (d, rows[d]);
        rows[d] += 1;
    }
    let (box_w, box_h, gap_x, gap_y) = (170.0, 44.0, 60.0, 18.0);
    let width = columns as f64 * (box_w + gap_x);
    let height = rows.iter().max().copied().unwrap_or(1) as f64 * (box_h + gap_y) + gap_y;
    let pos = |i: usize| {
        let (c, r) = place[i];
        (
            c as f64 * (box_w + gap_x) + 10.0,
            r as f64 * (box_h + gap_y) + gap_y,
        )
    };
    let mut svg = format!(
        r##"<svg class="graph" role="img" aria-label="batch graph" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg" font-family="system-ui, sans-serif" font-size="12"><defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#57606a"/></marker></defs>"##
    );
    for (i, node) in nodes.iter().enumerate() {
        for dep in &node.depends_on {
            if let Some(&d) = index.get(dep.as_str()) {
                let (x1, y1) = pos(d);
                let (x2, y2) = pos(i);
                let _ = write!(
                    svg,
                    r##"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#57606a" marker-end="url(#arrow)"/>"##,
                    x1 + box_w,
                    y1 + box_h / 2.0,
                    x2,
                    y2 + box_h / 2.0
                );
            }
        }
    }
    for (i, node) in nodes.iter().enumerate() {
        let (x, y) = pos(i);
        let colour = status_colour(&node.status);
        let name = escape(node.identifier.as_str());
        let status = escape(node.status.as_str());
        let body = format!(
            r##"<rect x="{x:.1}" y="{y:.1}" width="{box_w}" height="{box_h}" rx="6" fill="#ffffff" stroke="{colour}" stroke-width="3"/><text x="{:.1}" y="{:.1}" fill="#24292f" font-weight="600">{name}</text><text x="{:.1}" y="{:.1}" fill="{colour}">{status}{}</text>"##,
            x + 10.0,
            y + 18.0,
            x + 10.0,
            y + 35.0,
            node.build_number
                .map(|n| format!(" · #{n}"))
                .unwrap_or_default(),
        );
        match href(node) {
            Some(link) => {
                let _ = write!(
                    svg,
                    r#"<a href="{}" class="node" data-status="{status}"><title>{name}</title>{body}</a>"#,
                    escape(link.as_str())
                );
            }
            None => {
                let _ = write!(
                    svg,
                    r#"<g class="node" data-status="{status}"><title>{name}</title>{body}</g>"#
                );
            }
        }
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(phase: &str, status: &str, offset: f64, duration: f64) -> PhaseBar {
        PhaseBar {
            phase: phase.to_owned(),
            status: status.to_owned(),
            offset_seconds: offset,
            duration_seconds: duration,
            message: None,
        }
    }

    #[test]
    fn timeline_places_and_colours_each_phase() {
        let svg = timeline(&[
            bar("INSTALL", "SUCCEEDED", 0.0, 1.0),
            bar("BUILD", "FAILED", 1.0, 3.0),
        ]);
        assert_eq!(svg.matches("<rect").count(), 2);
        assert!(svg.contains(r##"fill="#cf222e""##), "{svg}");
        assert!(svg.contains("3.00 s"));
        assert_eq!(duration_text(0.0123), "12 ms");
        assert_eq!(duration_text(125.0), "2 min 05 s");
        // BUILD starts a quarter of the way along the span and takes the rest.
        assert!(svg.contains(r#"x="285.0""#), "{svg}");
    }

    #[test]
    fn text_in_pictures_is_escaped() {
        let node = BatchNode {
            identifier: "<script>x</script>".to_owned(),
            depends_on: Vec::new(),
            status: "SUCCEEDED".to_owned(),
            build_number: Some(1),
            ignore_failure: false,
        };
        let svg = batch_graph(&[node], |_| Some("/a?b=\"c\"".to_owned()));
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("&lt;script&gt;"));
        assert!(!svg.contains("\"c\""));
    }

    #[test]
    fn graph_puts_a_build_right_of_its_dependencies() {
        let node = |id: &str, deps: &[&str]| BatchNode {
            identifier: id.to_owned(),
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
            status: "SUCCEEDED".to_owned(),
            build_number: None,
            ignore_failure: false,
        };
        let svg = batch_graph(
            &[
                node("package", &["test"]),
                node("test", &["compile"]),
                node("compile", &[]),
            ],
            |_| None,
        );
        // Three columns of 230 px.
        assert!(svg.contains(r#"viewBox="0 0 690 "#), "{svg}");
        assert_eq!(svg.matches("marker-end").count(), 2);
    }
}
