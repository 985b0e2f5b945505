//! Draws a [`Model`] with ratatui widgets: a title line, then four boxes: Regions (with the
//! gateway), nodes, the synchronizer per Region pair, and the injected faults. The same drawing
//! serves the terminal, the tests' `TestBackend` and the plain text of `kmsim top --once`
//! ([`render_text`]).

use ratatui::buffer::Buffer;
use ratatui::layout::{Alignment, Constraint, Flex, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, Widget};
use ratatui::Frame;

use super::faults::FaultRow;
use super::histogram::Quantile;
use super::model::{Model, NodeRow, PairRow, RegionRow, Role, Traffic};

/// Draws `model` over the whole frame.
pub fn render(frame: &mut Frame<'_>, model: &Model) {
    let area = frame.area();
    render_into(model, area, frame.buffer_mut());
}

/// The lines the whole model needs (the height [`render_text`] draws at).
pub fn height(model: &Model) -> u16 {
    let [_, regions, nodes, pairs, faults] = heights(model);
    1 + regions + nodes + pairs + faults
}

/// The model drawn `width` columns wide as plain text, every line without trailing blanks and
/// ended by a newline: no colours and no terminal control codes.
pub fn render_text(model: &Model, width: u16) -> String {
    let mut buf = Buffer::empty(Rect::new(0, 0, width, height(model)));
    render_into(model, buf.area, &mut buf);
    let mut out = String::new();
    for line in buffer_lines(&buf) {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The text of every line of `buf`, as wide as the buffer.
pub fn buffer_lines(buf: &Buffer) -> Vec<String> {
    let width = usize::from(buf.area.width).max(1);
    buf.content
        .chunks(width)
        .map(|row| {
            let mut line = String::new();
            // A wide symbol covers the cells after it.
            let mut covered = 0;
            for cell in row {
                if covered > 0 {
                    covered -= 1;
                    continue;
                }
                let symbol = cell.symbol();
                line.push_str(symbol);
                covered = unicode_columns(symbol).saturating_sub(1);
            }
            line
        })
        .collect()
}

/// The columns a symbol takes: the characters of a box, an arrow or a name take one each.
fn unicode_columns(symbol: &str) -> usize {
    Line::from(symbol).width()
}

/// Heights of the title and the four boxes (borders and header rows included).
fn heights(model: &Model) -> [u16; 5] {
    let rows = |n: usize| u16::try_from(n).unwrap_or(u16::MAX).saturating_add(2);
    [
        1,
        rows(model.regions.len() + usize::from(model.gateway.is_some()) + 1),
        rows(model.nodes.len() + 1),
        rows(model.pairs.len().max(1) + 1),
        rows(model.faults.len().max(1)),
    ]
}

/// Draws `model` into `area` of `buf`.
/// On a terminal shorter than the model, the nodes box gives up rows first (down to one), so
/// the Regions, the synchronizer and the faults stay in view; its title says how many it shows.
fn render_into(model: &Model, area: Rect, buf: &mut Buffer) {
    let [title, regions, mut nodes, pairs, faults] = heights(model);
    let missing = (title + regions + nodes + pairs + faults).saturating_sub(area.height);
    nodes = nodes.saturating_sub(missing).max(nodes.min(4));
    let [title_area, regions_area, nodes_area, pairs_area, faults_area] = Layout::vertical([
        Constraint::Length(title),
        Constraint::Length(regions),
        Constraint::Length(nodes),
        Constraint::Length(pairs),
        Constraint::Length(faults),
    ])
    .flex(Flex::Start)
    .areas(area);
    Paragraph::new(title_line(model)).render(title_area, buf);
    regions_table(model).render(regions_area, buf);
    let shown = usize::from(nodes_area.height.saturating_sub(3));
    nodes_table(&model.nodes, shown).render(nodes_area, buf);
    pairs_table(&model.pairs).render(pairs_area, buf);
    faults_list(&model.faults).render(faults_area, buf);
}

const BOLD: Style = Style::new().add_modifier(Modifier::BOLD);
const GOOD: Style = Style::new().fg(Color::Green);
const WARN: Style = Style::new().fg(Color::Yellow);
const BAD: Style = Style::new().fg(Color::Red).add_modifier(Modifier::BOLD);
const DIM: Style = Style::new().add_modifier(Modifier::DIM);

/// The title, then what the model covers.
fn title_line(model: &Model) -> Line<'static> {
    let down = model.nodes.iter().filter(|n| n.role == Role::Down).count();
    let mut spans = vec![Span::styled(model.title.clone(), BOLD)];
    let mut summary = format!(
        "  {}, {}",
        counted(model.regions.len(), "Region"),
        counted(model.nodes.len(), "node")
    );
    if down == 0 {
        spans.push(Span::raw(summary));
    } else {
        spans.push(Span::raw(summary.clone() + ", "));
        summary = format!("{down} down");
        spans.push(Span::styled(summary, BAD));
    }
    spans.push(Span::raw(match model.interval {
        Some(d) => format!("  rates over {:.2}s", d.as_secs_f64()),
        None => "  rates after the next sample".to_string(),
    }));
    Line::from(spans)
}

/// `1 node`, `3 nodes`.
fn counted(n: usize, what: &str) -> String {
    match n {
        1 => format!("1 {what}"),
        n => format!("{n} {what}s"),
    }
}

/// A bordered box titled `title`.
fn boxed(title: &str) -> Block<'static> {
    Block::bordered().title(Span::styled(format!(" {title} "), BOLD))
}

/// The header row of a table.
fn header<const N: usize>(names: [&'static str; N], right_from: usize) -> Row<'static> {
    Row::new(
        names
            .into_iter()
            .enumerate()
            .map(|(i, n)| right_if(i >= right_from, n.to_string(), BOLD)),
    )
}

/// A cell aligned right (numbers) or left.
fn right_if(right: bool, text: String, style: Style) -> Cell<'static> {
    let line = Line::styled(text, style);
    Cell::from(if right {
        line.alignment(Alignment::Right)
    } else {
        line
    })
}

/// A number cell.
fn num(text: String, style: Style) -> Cell<'static> {
    right_if(true, text, style)
}

/// The widths of a table: the first column as wide as its longest entry, the others fixed.
fn widths(first: usize, rest: &[u16]) -> Vec<Constraint> {
    let mut w = vec![Constraint::Length(u16::try_from(first).unwrap_or(40))];
    w.extend(rest.iter().map(|n| Constraint::Length(*n)));
    w
}

fn regions_table(model: &Model) -> Table<'static> {
    let mut rows: Vec<Row> = model.regions.iter().map(region_row).collect();
    if let Some(g) = &model.gateway {
        let (state, style) = if g.up { ("up", GOOD) } else { ("down", BAD) };
        rows.push(Row::new(
            [
                right_if(false, "gateway".into(), Style::new()),
                num("-".into(), DIM),
                num("-".into(), DIM),
                num(state.into(), style),
            ]
            .into_iter()
            .chain(traffic_cells(&g.traffic)),
        ));
    }
    let first = model
        .regions
        .iter()
        .map(|r| r.region.len())
        .chain([7, "REGION".len()])
        .max()
        .unwrap_or(7);
    Table::new(rows, widths(first, &[6, 5, 5, 9, 8, 9]))
        .header(header(
            ["REGION", "LEADER", "TERM", "UP", "OPS/s", "ERR/s", "P99"],
            1,
        ))
        .column_spacing(2)
        .block(boxed("Regions"))
}

fn region_row(r: &RegionRow) -> Row<'static> {
    let (leader, leader_style) = match r.leader {
        Some(id) => (id.to_string(), GOOD),
        None => ("none".to_string(), BAD),
    };
    let up_style = if r.up == r.nodes { Style::new() } else { BAD };
    Row::new(
        [
            right_if(false, r.region.clone(), Style::new()),
            num(leader, leader_style),
            num(opt(r.term), Style::new()),
            num(format!("{}/{}", r.up, r.nodes), up_style),
        ]
        .into_iter()
        .chain(traffic_cells(&r.traffic)),
    )
}

/// OPS/s, ERR/s and P99 of some traffic.
fn traffic_cells(t: &Traffic) -> [Cell<'static>; 3] {
    let errors_style = if t.errors.is_some_and(|e| e > 0.0) {
        WARN
    } else {
        Style::new()
    };
    [
        num(rate(t.ops), Style::new()),
        num(rate(t.errors), errors_style),
        num(latency(t.p99), Style::new()),
    ]
}

/// The nodes box; `shown` rows fit in it.
fn nodes_table(nodes: &[NodeRow], shown: usize) -> Table<'static> {
    let names: Vec<String> = nodes
        .iter()
        .map(|n| format!("{}/{}", n.region, n.id))
        .collect();
    let first = names
        .iter()
        .map(String::len)
        .chain(["NODE".len()])
        .max()
        .unwrap_or(4);
    let rows = nodes.iter().zip(names).map(|(n, name)| {
        let role_style = match n.role {
            Role::Leader => GOOD.add_modifier(Modifier::BOLD),
            Role::Follower => Style::new(),
            Role::Down => BAD,
            _ => WARN,
        };
        let behind_style = if n.behind.is_some_and(|b| b > 0) {
            WARN
        } else {
            Style::new()
        };
        let faults_style = if n.faults.is_some_and(|f| f > 0) {
            WARN
        } else {
            Style::new()
        };
        Row::new([
            right_if(false, name, Style::new()),
            right_if(false, n.role.as_str().to_string(), role_style),
            num(opt(n.term), Style::new()),
            num(opt(n.leader), Style::new()),
            num(opt(n.applied), Style::new()),
            num(opt(n.behind), behind_style),
            num(rate(n.ops), Style::new()),
            num(opt(n.faults), faults_style),
        ])
    });
    Table::new(rows, widths(first, &[9, 5, 6, 8, 6, 8, 6]))
        .header(header(
            [
                "NODE", "ROLE", "TERM", "LEADER", "APPLIED", "BEHIND", "OPS/s", "FAULTS",
            ],
            2,
        ))
        .column_spacing(2)
        .block(boxed(&if shown < nodes.len() {
            format!("Nodes ({shown} of {} shown)", nodes.len())
        } else {
            "Nodes".to_string()
        }))
}

fn pairs_table(pairs: &[PairRow]) -> Table<'static> {
    let names: Vec<String> = pairs
        .iter()
        .map(|p| format!("{} → {}", p.source, p.destination))
        .collect();
    let first = names
        .iter()
        .map(|n| n.chars().count())
        .chain(["SOURCE → DESTINATION".chars().count()])
        .max()
        .unwrap_or(20);
    let mut rows: Vec<Row> = pairs
        .iter()
        .zip(names)
        .map(|(p, name)| {
            let pending_style = if p.pending.is_some_and(|v| v > 0.0) {
                WARN
            } else {
                Style::new()
            };
            let failed_style = if p.failed.is_some_and(|v| v > 0.0) {
                BAD
            } else {
                Style::new()
            };
            Row::new([
                right_if(false, name, Style::new()),
                num(
                    p.pending
                        .map(|v| format!("{v:.0}"))
                        .unwrap_or_else(|| "-".into()),
                    pending_style,
                ),
                num(rate(p.failed), failed_style),
                num(latency(p.lag_p99), Style::new()),
            ])
        })
        .collect();
    if rows.is_empty() {
        rows.push(Row::new([right_if(false, "no Region pairs".into(), DIM)]));
    }
    Table::new(rows, widths(first, &[8, 9, 9]))
        .header(header(
            ["SOURCE → DESTINATION", "PENDING", "FAILED/s", "LAG P99"],
            1,
        ))
        .column_spacing(2)
        .block(boxed("Synchronizer"))
}

fn faults_list(faults: &[FaultRow]) -> Paragraph<'static> {
    let sides: Vec<String> = faults
        .iter()
        .map(|f| format!("{} → {}", f.from, f.to))
        .collect();
    let width = sides.iter().map(|s| s.chars().count()).max().unwrap_or(0);
    let mut lines: Vec<Line> = faults
        .iter()
        .zip(sides)
        .map(|(f, side)| {
            Line::from(vec![
                Span::raw(format!("{side:<width$}  ")),
                Span::styled(f.what.clone(), WARN),
            ])
        })
        .collect();
    if lines.is_empty() {
        lines.push(Line::styled("none", DIM));
    }
    Paragraph::new(lines).block(boxed("Faults"))
}

/// A number, or `-` when not known.
fn opt(v: Option<u64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
}

/// A rate per second with one decimal, or `-`.
fn rate(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.1}")).unwrap_or_else(|| "-".into())
}

/// A quantile of seconds in a readable unit, `>` before a lower bound, or `-`.
fn latency(q: Option<Quantile>) -> String {
    match q {
        None => "-".into(),
        Some(Quantile::Within(s)) => seconds(s),
        Some(Quantile::Above(s)) => format!(">{}", seconds(s)),
    }
}

/// `0.50ms`, `12.5ms`, `250ms`, `1.20s`.
fn seconds(s: f64) -> String {
    let ms = s * 1000.0;
    if ms < 10.0 {
        format!("{ms:.2}ms")
    } else if ms < 100.0 {
        format!("{ms:.1}ms")
    } else if ms < 1000.0 {
        format!("{ms:.0}ms")
    } else {
        format!("{s:.2}s")
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    use super::*;
    use crate::top::model::GatewayRow;

    /// Three Regions: us-east-1 with its leader and a down node, eu-west-1 healthy,
    /// ap-southeast-2 without a leader (a candidate) and partitioned from us-east-1; the gateway;
    /// a synchronizer backlog and lag; two faults.
    fn model() -> Model {
        let traffic = |ops: f64, errors: f64, p99: Option<Quantile>| Traffic {
            ops: Some(ops),
            errors: Some(errors),
            p99,
        };
        let region = |region: &str, leader, term, up, traffic| RegionRow {
            region: region.into(),
            leader,
            term: Some(term),
            up,
            nodes: 3,
            traffic,
        };
        let node = |region: &str, id, role, leader, applied, behind, ops, faults| NodeRow {
            region: region.into(),
            id,
            term: (role != Role::Down).then_some(if region == "ap-southeast-2" { 5 } else { 3 }),
            role,
            leader,
            applied,
            behind,
            ops,
            faults,
        };
        let pair = |source: &str, destination: &str, pending, failed, lag_p99| PairRow {
            source: source.into(),
            destination: destination.into(),
            pending,
            failed,
            lag_p99,
        };
        let fault = |from: &str, to: &str, what: &str| FaultRow {
            from: from.into(),
            to: to.into(),
            what: what.into(),
        };
        Model {
            title: "kmsim top · .kmsim · every 1s · q quits".into(),
            interval: Some(Duration::from_millis(1010)),
            regions: vec![
                region(
                    "us-east-1",
                    Some(1),
                    3,
                    2,
                    traffic(412.5, 2.0, Some(Quantile::Within(0.0031))),
                ),
                region("eu-west-1", Some(2), 3, 3, traffic(0.0, 0.0, None)),
                region(
                    "ap-southeast-2",
                    None,
                    5,
                    3,
                    traffic(3.0, 3.0, Some(Quantile::Above(16.384))),
                ),
            ],
            gateway: Some(GatewayRow {
                up: true,
                traffic: traffic(415.5, 5.0, Some(Quantile::Within(0.0042))),
            }),
            nodes: vec![
                node(
                    "us-east-1",
                    1,
                    Role::Leader,
                    Some(1),
                    Some(1204),
                    Some(0),
                    Some(250.0),
                    Some(3),
                ),
                node(
                    "us-east-1",
                    2,
                    Role::Follower,
                    Some(1),
                    Some(1201),
                    Some(3),
                    Some(162.5),
                    Some(3),
                ),
                node("us-east-1", 3, Role::Down, None, None, None, None, None),
                node(
                    "eu-west-1",
                    1,
                    Role::Follower,
                    Some(2),
                    Some(310),
                    Some(0),
                    Some(0.0),
                    Some(0),
                ),
                node(
                    "eu-west-1",
                    2,
                    Role::Leader,
                    Some(2),
                    Some(310),
                    Some(0),
                    Some(0.0),
                    Some(1),
                ),
                node(
                    "eu-west-1",
                    3,
                    Role::Follower,
                    Some(2),
                    Some(310),
                    Some(0),
                    Some(0.0),
                    Some(0),
                ),
                node(
                    "ap-southeast-2",
                    1,
                    Role::Candidate,
                    None,
                    Some(88),
                    Some(0),
                    Some(1.0),
                    Some(0),
                ),
                node(
                    "ap-southeast-2",
                    2,
                    Role::Follower,
                    None,
                    Some(88),
                    Some(0),
                    Some(1.0),
                    Some(0),
                ),
                node(
                    "ap-southeast-2",
                    3,
                    Role::Follower,
                    None,
                    Some(87),
                    Some(1),
                    Some(1.0),
                    Some(0),
                ),
            ],
            pairs: vec![
                pair(
                    "eu-west-1",
                    "us-east-1",
                    Some(0.0),
                    Some(0.0),
                    Some(Quantile::Within(0.0123)),
                ),
                pair("us-east-1", "ap-southeast-2", Some(12.0), Some(4.0), None),
                pair(
                    "us-east-1",
                    "eu-west-1",
                    Some(0.0),
                    Some(0.0),
                    Some(Quantile::Within(0.0081)),
                ),
            ],
            faults: vec![
                fault("eu-west-1/2", "us-east-1/1", "delay 80ms jitter 20ms"),
                fault("us-east-1", "ap-southeast-2", "partitioned"),
            ],
        }
    }

    /// The screen of [`model`] at 100 × 30, as a person would see it (without the colours).
    const SCREEN: &str = include_str!("testdata/screen.txt");

    #[test]
    fn a_known_cluster_state_renders_to_the_expected_screen() {
        let model = model();
        let mut terminal = Terminal::new(TestBackend::new(100, 30)).unwrap();
        terminal.draw(|frame| render(frame, &model)).unwrap();
        let buffer = terminal.backend().buffer();
        let actual = buffer_lines(buffer).join("\n");
        let expected: Vec<String> = SCREEN.lines().map(|l| format!("{l:<100}")).collect();
        assert_eq!(
            actual,
            expected.join("\n"),
            "the screen changed; if on purpose, write this into testdata/screen.txt:\n{}",
            render_text(&model, 100)
        );
        // Colours say what needs a look: the leader green, the down node red, a backlog yellow.
        let style_of = |text: &str, nth: usize| {
            let lines = buffer_lines(buffer);
            let (y, x) = lines
                .iter()
                .enumerate()
                .filter_map(|(y, l)| l.find(text).map(|x| (y, l[..x].chars().count())))
                .nth(nth)
                .unwrap_or_else(|| panic!("{text} on screen"));
            buffer[(x as u16, y as u16)].style()
        };
        assert_eq!(style_of("leader", 0).fg, Some(Color::Green));
        assert_eq!(style_of("down", 0).fg, Some(Color::Red));
        assert_eq!(style_of("candidate", 0).fg, Some(Color::Yellow));
        assert_eq!(style_of("none", 0).fg, Some(Color::Red));
        assert_eq!(style_of("partitioned", 0).fg, Some(Color::Yellow));
    }

    #[test]
    fn the_plain_text_is_the_screen_without_trailing_blanks() {
        let model = model();
        assert_eq!(height(&model), 30);
        assert_eq!(render_text(&model, 100), SCREEN);
        assert!(!SCREEN.contains('\x1b'));
    }

    #[test]
    fn a_short_terminal_drops_node_rows_first_and_a_tall_one_leaves_blank_below() {
        let draw = |width, height| {
            let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
            terminal.draw(|frame| render(frame, &model())).unwrap();
            buffer_lines(terminal.backend().buffer())
        };
        // 30 lines needed, 25 there: the nodes box shows 4 of its 9 rows, the rest all of theirs.
        let short = draw(100, 25);
        assert!(
            short[8].starts_with("┌ Nodes (4 of 9 shown) "),
            "{short:#?}"
        );
        assert!(short[13].starts_with("│eu-west-1/1 "), "{short:#?}");
        assert!(short[15].starts_with("┌ Synchronizer "), "{short:#?}");
        assert!(short[24].starts_with("└"), "{short:#?}");
        let tall = draw(100, 40);
        assert!(tall[29].starts_with("└"), "{tall:#?}");
        assert!(tall[30..].iter().all(|l| l.trim().is_empty()), "{tall:#?}");
        // Narrower than the tables: cut at the right edge, the title first on its line.
        let lines = draw(40, 10);
        assert!(lines[0].starts_with("kmsim top"), "{lines:?}");
        // An empty model (before the first sample) draws too.
        let empty = render_text(&Model::default(), 60);
        assert!(empty.contains("0 Regions, 0 nodes"), "{empty}");
        assert!(empty.contains("no Region pairs"), "{empty}");
    }

    #[test]
    fn durations_read_in_their_unit() {
        assert_eq!(latency(None), "-");
        assert_eq!(latency(Some(Quantile::Within(0.0005))), "0.50ms");
        assert_eq!(latency(Some(Quantile::Within(0.0125))), "12.5ms");
        assert_eq!(latency(Some(Quantile::Within(0.25))), "250ms");
        assert_eq!(latency(Some(Quantile::Within(1.2))), "1.20s");
        assert_eq!(latency(Some(Quantile::Above(16.384))), ">16.38s");
    }
}
