//! The live terminal view (ratatui + crossterm).
//!
//! [`draw`] is a pure function of a [`Snapshot`], so it is tested on
//! ratatui's TestBackend. [`Screen`] owns the real terminal: raw mode and the
//! alternate screen are undone on drop and, through a panic hook, on panic.

use std::io::{self, Stdout};
use std::time::Duration;

use ratatui::Frame;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Sparkline, Table, Wrap};

use super::series::SockState;
use super::snapshot::{EndpointView, ProcessView, Snapshot};
use super::verdict::Kind;
use crate::duration::human;

/// Static facts for the header.
pub struct Header {
    pub interval: Duration,
    pub all: bool,
}

fn kind_style(k: Option<Kind>) -> Style {
    match k {
        Some(Kind::Leak) => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        Some(Kind::StalePool) => Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
        Some(Kind::Churn) => Style::new().fg(Color::Magenta).add_modifier(Modifier::BOLD),
        Some(Kind::Ok) => Style::new().fg(Color::Green),
        None => Style::new(),
    }
}

/// A sparkline in text, for table cells: the whole history (minutes of it)
/// squeezed into `width` columns, each the maximum of its slice of samples,
/// scaled to the overall maximum.
pub fn spark(values: &[u64], width: usize) -> String {
    const BARS: [char; 9] = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    if values.is_empty() || width == 0 {
        return String::new();
    }
    let cols = width.min(values.len());
    let buckets: Vec<u64> = (0..cols)
        .map(|c| {
            let (a, b) = (c * values.len() / cols, (c + 1) * values.len() / cols);
            values[a..b].iter().copied().max().unwrap_or(0)
        })
        .collect();
    let max = buckets.iter().copied().max().unwrap_or(0);
    buckets
        .iter()
        .map(|v| {
            if max == 0 {
                BARS[0]
            } else {
                BARS[((v * 8).div_ceil(max)) as usize]
            }
        })
        .collect()
}

fn state(e: &EndpointView, name: &str) -> u32 {
    e.states.get(name).copied().unwrap_or(0)
}

fn endpoints_table(p: &ProcessView, all: bool) -> Table<'static> {
    let header = Row::new(
        [
            "ENDPOINT", "SOCK", "ESTAB", "CLOSE-W", "FD-ONLY", "TIME-W", "OTHER", "OPEN/s",
            "CLOSE/s", "OLDEST", "IDLE", "HISTORY", "VERDICT",
        ]
        .map(|h| Cell::from(h).style(Style::new().add_modifier(Modifier::BOLD))),
    );
    let rows = p.endpoints.iter().map(|e| {
        let (est, cw, fd_only, tw) = (
            state(e, "ESTABLISHED"),
            state(e, "CLOSE_WAIT"),
            state(e, SockState::FD_ONLY),
            state(e, "TIME_WAIT"),
        );
        let other = e.sockets - est - cw - fd_only - tw;
        let name = if e.folded > 0 {
            format!("other ({})", e.folded)
        } else {
            e.endpoint.clone()
        };
        let tw_text = if e.time_wait_unattributed > 0 {
            format!("{tw}+{}?", e.time_wait_unattributed)
        } else {
            tw.to_string()
        };
        Row::new(vec![
            Cell::from(name),
            Cell::from(e.sockets.to_string()),
            Cell::from(est.to_string()),
            Cell::from(cw.to_string()).style(if cw > 0 {
                Style::new().fg(Color::Yellow)
            } else {
                Style::new()
            }),
            Cell::from(fd_only.to_string()).style(if fd_only > 0 {
                Style::new().fg(Color::Red)
            } else {
                Style::new()
            }),
            Cell::from(tw_text),
            Cell::from(other.to_string()),
            Cell::from(format!("{:.1}", e.opens_per_s)),
            Cell::from(format!("{:.1}", e.closes_per_s)),
            Cell::from(format!(
                "{}{}",
                if e.age_at_least { "≥" } else { "" },
                human(e.oldest_age_s)
            )),
            Cell::from(e.max_idle_s.map_or("-".to_string(), human)),
            Cell::from(spark(&e.history, 16)),
            Cell::from(e.verdict.map_or("", Kind::name)).style(kind_style(e.verdict)),
        ])
    });
    Table::new(
        rows,
        [
            Constraint::Min(22),
            Constraint::Length(5),
            Constraint::Length(6),
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Length(9),
            Constraint::Length(6),
            Constraint::Length(7),
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Length(7),
            Constraint::Length(16),
            Constraint::Length(10),
        ],
    )
    .header(header)
    .block(Block::bordered().title(format!(
        " endpoints{} (top by verdict and count; TIME-W n+m? = attributed + unattributed) ",
        if all {
            format!(" of pid {} ({})", p.pid, p.comm)
        } else {
            String::new()
        }
    )))
}

fn processes_table(s: &Snapshot) -> Table<'static> {
    let header = Row::new(
        [
            "PID", "COMM", "SOCK", "ESTAB", "CLOSE-W", "FD-ONLY", "TIME-W", "FDS", "VERDICT", "WHY",
        ]
        .map(|h| Cell::from(h).style(Style::new().add_modifier(Modifier::BOLD))),
    );
    let rows = s.processes.iter().map(|p| {
        let st = |n: &str| p.states.get(n).copied().unwrap_or(0).to_string();
        let why = p
            .verdicts
            .as_ref()
            .and_then(|v| v.first())
            .map_or(String::new(), |v| {
                format!("{}: {}", v.endpoint.as_deref().unwrap_or(""), v.summary)
            });
        Row::new(vec![
            Cell::from(p.pid.to_string()),
            Cell::from(p.comm.clone()),
            Cell::from(p.sockets.to_string()),
            Cell::from(st("ESTABLISHED")),
            Cell::from(st("CLOSE_WAIT")),
            Cell::from(st(SockState::FD_ONLY)),
            Cell::from(st("TIME_WAIT")),
            Cell::from(fds_text(p)),
            Cell::from(p.verdict.map_or("", Kind::name)).style(kind_style(p.verdict)),
            Cell::from(why),
        ])
    });
    Table::new(
        rows,
        [
            Constraint::Length(8),
            Constraint::Length(16),
            Constraint::Length(6),
            Constraint::Length(6),
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Length(7),
            Constraint::Length(12),
            Constraint::Length(10),
            Constraint::Min(20),
        ],
    )
    .header(header)
    .block(Block::bordered().title(format!(
        " processes by suspicion ({} unattributed TIME_WAIT on host) ",
        s.unattributed_time_wait
    )))
}

fn fds_text(p: &ProcessView) -> String {
    match (p.fds_open, p.fd_limit) {
        (Some(o), Some(l)) => format!("{o}/{l}"),
        (Some(o), None) => format!("{o}/∞"),
        _ => "?".to_string(),
    }
}

fn verdict_text(p: Option<&ProcessView>, s: &Snapshot) -> Text<'static> {
    let mut lines: Vec<Line<'static>> = Vec::new();
    for w in &s.warnings {
        lines.push(Line::styled(
            format!("warning: {w}"),
            Style::new().fg(Color::Yellow),
        ));
    }
    if let Some(limit) = s.events.limit {
        lines.push(Line::styled(
            format!("sampling only: {limit}"),
            Style::new().fg(Color::Yellow),
        ));
    }
    let Some(p) = p else {
        lines.push(Line::from("no process"));
        return Text::from(lines);
    };
    let verdicts = p.verdicts.clone().unwrap_or_default();
    if verdicts.is_empty() {
        let summary = match p.verdict {
            Some(_) => "OK: no leak, stale pool or churn seen".to_string(),
            None => "collecting".to_string(),
        };
        lines.push(Line::styled(summary, kind_style(p.verdict)));
    }
    for v in verdicts.iter().take(3) {
        lines.push(Line::from(vec![
            Span::styled(
                match v.cause {
                    Some(c) => format!("{} {c}", v.verdict.name()),
                    None => v.verdict.name().to_string(),
                },
                kind_style(Some(v.verdict)),
            ),
            Span::raw(format!(
                " {}{}: {}",
                v.endpoint.as_deref().unwrap_or(""),
                v.state.map_or(String::new(), |s| format!(" ({s})")),
                v.summary
            )),
        ]));
        for e in &v.evidence {
            lines.push(Line::from(format!("  - {e}")));
        }
        if let Some(a) = &v.advice {
            lines.push(Line::styled(
                format!("  advice: {a}"),
                Style::new().fg(Color::Cyan),
            ));
        }
    }
    for line in p.go.iter().flat_map(|g| g.lines()) {
        lines.push(Line::styled(line, Style::new().fg(Color::Blue)));
    }
    Text::from(lines)
}

/// Renders one frame.
pub fn draw(f: &mut Frame<'_>, s: &Snapshot, h: &Header) {
    let focus = s.processes.first();
    let title = match focus {
        Some(p) if !h.all => format!(
            " leakless watch · pid {} ({}){} · {} sockets · fds {} · every {} · {} ",
            p.pid,
            p.comm,
            if p.alive { "" } else { " exited" },
            p.sockets,
            fds_text(p),
            human(h.interval.as_secs_f64()),
            human(s.t)
        ),
        _ => format!(
            " leakless watch --all · {} processes · every {} · {} ",
            s.processes.len(),
            human(h.interval.as_secs_f64()),
            human(s.t)
        ),
    };
    let top = if h.all {
        Constraint::Percentage(35)
    } else {
        Constraint::Length(4)
    };
    let [head, mid, bottom, foot] = Layout::vertical([
        top,
        Constraint::Min(6),
        Constraint::Percentage(35),
        Constraint::Length(1),
    ])
    .areas(f.area());
    if h.all {
        f.render_widget(processes_table(s), head);
    } else {
        let empty = Vec::new();
        let history = focus.map_or(&empty, |p| &p.history);
        // Sparkline draws from the start of its data: give it the newest
        // samples that fit inside the border.
        let fit = usize::from(head.width.saturating_sub(2));
        let data = &history[history.len().saturating_sub(fit)..];
        let spark = Sparkline::default()
            .block(Block::bordered().title(title.clone()))
            .data(data)
            .style(Style::new().fg(Color::Cyan));
        f.render_widget(spark, head);
    }
    match focus {
        Some(p) => f.render_widget(endpoints_table(p, h.all), mid),
        None => f.render_widget(
            Paragraph::new("no process with TCP sockets yet").block(Block::bordered()),
            mid,
        ),
    }
    let vtitle = match focus.and_then(|p| p.verdict) {
        Some(k) => format!(" verdict: {} ", k.name()),
        None => " verdict ".to_string(),
    };
    f.render_widget(
        Paragraph::new(verdict_text(focus, s))
            .wrap(Wrap { trim: false })
            .block(
                Block::bordered()
                    .title(vtitle)
                    .border_style(kind_style(focus.and_then(|p| p.verdict))),
            ),
        bottom,
    );
    let footer = if h.all {
        title
    } else {
        " q / Esc / Ctrl-C: quit and print the report ".to_string()
    };
    f.render_widget(
        Paragraph::new(footer).style(Style::new().add_modifier(Modifier::DIM)),
        foot,
    );
}

/// The real terminal, restored on drop and on panic.
pub struct Screen {
    term: ratatui::Terminal<CrosstermBackend<Stdout>>,
}

fn restore() {
    let _ = disable_raw_mode();
    let _ = execute!(
        io::stdout(),
        LeaveAlternateScreen,
        ratatui::crossterm::cursor::Show
    );
}

impl Screen {
    pub fn open() -> io::Result<Screen> {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // Put the terminal back first so the panic message is readable.
            restore();
            prev(info);
        }));
        enable_raw_mode()?;
        execute!(io::stdout(), EnterAlternateScreen)?;
        let mut term = ratatui::Terminal::new(CrosstermBackend::new(io::stdout()))?;
        term.hide_cursor()?;
        term.clear()?;
        Ok(Screen { term })
    }

    pub fn draw(&mut self, s: &Snapshot, h: &Header) -> io::Result<()> {
        self.term.draw(|f| draw(f, s, h)).map(|_| ())
    }

    /// Waits up to `timeout` for a key; true when the user asked to quit.
    /// (Raw mode turns Ctrl-C into a key, so it arrives here, not as SIGINT.)
    pub fn wait_quit(&mut self, timeout: Duration) -> io::Result<bool> {
        if !event::poll(timeout)? {
            return Ok(false);
        }
        Ok(match event::read()? {
            Event::Key(k) if k.kind == KeyEventKind::Press => {
                matches!(k.code, KeyCode::Char('q') | KeyCode::Esc)
                    || (k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL))
            }
            _ => false,
        })
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        restore();
    }
}

/// Rendered into a buffer and read back as text, for tests.
#[cfg(test)]
pub fn render_to_string(s: &Snapshot, h: &Header, area: ratatui::layout::Rect) -> String {
    let backend = ratatui::backend::TestBackend::new(area.width, area.height);
    let mut term = ratatui::Terminal::new(backend).expect("test backend");
    term.draw(|f| draw(f, s, h)).expect("draw");
    let buf = term.backend().buffer();
    let mut out = String::new();
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            out.push_str(buf[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
#[path = "tui_tests.rs"]
mod tests;
