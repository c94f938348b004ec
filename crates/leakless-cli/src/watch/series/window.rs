//! A slice of an endpoint's history ([`Window`]) and the statistics the
//! verdict rules take over it: rates, trends, how a count rose ([`Rise`]).

use super::{CwEnd, Point};

/// How a quantity rose over a window ([`Window::rise`]).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Rise {
    /// Last point minus first.
    pub growth: f64,
    /// Least-squares slope per second.
    pub slope: f64,
    /// Share of sample-to-sample steps that rose or stayed flat.
    pub steady: f64,
    /// Samples that raised the running maximum (the first point aside).
    pub highs: u32,
    /// Seconds between the first and the last new high.
    pub highs_spread_s: f64,
    /// Seconds since the last new high (0: the last point is one).
    pub since_last_high_s: f64,
}

/// A slice of history the verdict rules look at.
pub struct Window<'a> {
    pub points: Vec<&'a Point>,
    /// CLOSE_WAIT sockets closed inside the window.
    pub cw_ended: Vec<CwEnd>,
}

impl Window<'_> {
    pub fn len(&self) -> usize {
        self.points.len()
    }

    pub fn span(&self) -> f64 {
        match (self.points.first(), self.points.last()) {
            (Some(a), Some(b)) => b.t - a.t,
            _ => 0.0,
        }
    }

    pub fn first(&self) -> Option<&Point> {
        self.points.first().copied()
    }

    pub fn last(&self) -> Option<&Point> {
        self.points.last().copied()
    }

    /// Least-squares slope of `f` per second.
    pub fn slope(&self, f: impl Fn(&Point) -> f64) -> f64 {
        let n = self.points.len() as f64;
        if n < 2.0 {
            return 0.0;
        }
        let mt = self.points.iter().map(|p| p.t).sum::<f64>() / n;
        let my = self.points.iter().map(|p| f(p)).sum::<f64>() / n;
        let (mut num, mut den) = (0.0, 0.0);
        for p in &self.points {
            num += (p.t - mt) * (f(p) - my);
            den += (p.t - mt) * (p.t - mt);
        }
        if den == 0.0 { 0.0 } else { num / den }
    }

    /// Share of sample-to-sample steps in which `f` did not go down.
    pub fn rising_steps(&self, f: impl Fn(&Point) -> f64) -> f64 {
        if self.points.len() < 2 {
            return 0.0;
        }
        let ups = self
            .points
            .windows(2)
            .filter(|w| f(w[1]) >= f(w[0]))
            .count();
        ups as f64 / (self.points.len() - 1) as f64
    }

    /// How `f` rose over the window: overall, its trend, and when its
    /// running maximum was raised (new highs), to tell a sustained rise from
    /// one step followed by a plateau.
    pub fn rise(&self, f: impl Fn(&Point) -> f64) -> Rise {
        let (Some(first), Some(last)) = (self.points.first(), self.points.last()) else {
            return Rise::default();
        };
        let mut high = f(first);
        let mut highs = 0;
        let (mut first_high, mut last_high) = (first.t, first.t);
        for p in self.points.iter().skip(1) {
            let v = f(p);
            if v > high {
                high = v;
                if highs == 0 {
                    first_high = p.t;
                }
                last_high = p.t;
                highs += 1;
            }
        }
        Rise {
            growth: f(last) - f(first),
            slope: self.slope(&f),
            steady: self.rising_steps(&f),
            highs,
            highs_spread_s: last_high - first_high,
            since_last_high_s: last.t - last_high,
        }
    }

    /// Share of samples in which `f` was above zero.
    pub fn present(&self, f: impl Fn(&Point) -> u32) -> f64 {
        if self.points.is_empty() {
            return 0.0;
        }
        self.points.iter().filter(|p| f(p) > 0).count() as f64 / self.points.len() as f64
    }

    /// Sum of `f` over the window, leaving out the first point (whose
    /// events happened before the window began).
    pub fn sum_after_first(&self, f: impl Fn(&Point) -> u32) -> u32 {
        self.points.iter().skip(1).map(|p| f(p)).sum()
    }

    /// `sum_after_first(f)` per second of span.
    pub fn rate(&self, f: impl Fn(&Point) -> u32) -> f64 {
        let span = self.span();
        if span <= 0.0 {
            return 0.0;
        }
        f64::from(self.sum_after_first(f)) / span
    }

    pub fn mean(&self, f: impl Fn(&Point) -> f64) -> f64 {
        if self.points.is_empty() {
            return 0.0;
        }
        self.points.iter().map(|p| f(p)).sum::<f64>() / self.points.len() as f64
    }

    pub fn max(&self, f: impl Fn(&Point) -> u32) -> u32 {
        self.points.iter().map(|p| f(p)).max().unwrap_or(0)
    }
}
