//! [`Chaos`]: misbehaviour drawn at random for each connection, for soak
//! runs. Every accepted connection draws one [`Mischief`] (by weight, from
//! a seeded generator, so a run can be replayed) and a count `n` from 1 to
//! 4; the mischief strikes at the connection's `n`th request, or shapes
//! the connection from the start. Each is made of the faults and knobs the
//! rest of the server already has: the connection's context (`ctx.rs`)
//! turns its plan into a [`Fault`] on one reply, or into that
//! connection's own [`Config`].
//!
//! [`Fault`]: crate::Fault
//! [`Config`]: crate::Config
//!
//! [`Chaos::struck`] counts each mischief as it strikes, so a soak can set
//! what it saw against what was done to it.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

/// One way a connection misbehaves, drawn per connection by [`Chaos`].
/// "Request `n`" is the connection's `n`th (1 to 4, drawn with it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Mischief {
    /// Behave.
    None,
    /// Request `n` is answered with a reset (RST), nothing written; on
    /// HTTP/2 the whole connection is reset.
    ResetBeforeHead,
    /// Request `n` gets half a status line and headers, then a close. On
    /// HTTP/2, where a head is one frame, the connection closes without
    /// answering.
    CloseMidHead,
    /// Request `n` gets its head and half its body, then a close (HTTP/2:
    /// `RST_STREAM(INTERNAL_ERROR)`).
    CloseMidBody,
    /// Request `n` is never answered.
    Stall,
    /// The connection closes after `n` requests (`Connection: close` on
    /// the `n`th; HTTP/2: GOAWAY after `n` streams).
    CloseAfterRequests,
    /// HTTP/2: GOAWAY after `n` streams. HTTP/1.1 has none: it closes
    /// after `n` requests instead.
    GoAway,
    /// HTTP/2: the first `n` streams are refused (`REFUSED_STREAM`,
    /// unprocessed). HTTP/1.1 cannot refuse a request: it closes after `n`
    /// requests instead.
    RefuseStreams,
    /// After request `n` is answered the connection goes deaf: it reads
    /// nothing more, answers nothing, and stays open.
    Silence,
}

impl Mischief {
    /// Every mischief, in a stable order.
    pub const ALL: [Mischief; 9] = [
        Mischief::None,
        Mischief::ResetBeforeHead,
        Mischief::CloseMidHead,
        Mischief::CloseMidBody,
        Mischief::Stall,
        Mischief::CloseAfterRequests,
        Mischief::GoAway,
        Mischief::RefuseStreams,
        Mischief::Silence,
    ];

    /// A snake_case name, for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Mischief::None => "none",
            Mischief::ResetBeforeHead => "reset_before_head",
            Mischief::CloseMidHead => "close_mid_head",
            Mischief::CloseMidBody => "close_mid_body",
            Mischief::Stall => "stall",
            Mischief::CloseAfterRequests => "close_after_requests",
            Mischief::GoAway => "goaway",
            Mischief::RefuseStreams => "refuse_streams",
            Mischief::Silence => "silence",
        }
    }

    fn index(self) -> usize {
        Mischief::ALL
            .iter()
            .position(|&m| m == self)
            .expect("listed")
    }
}

/// Misbehaviour at random per connection: set [`Config::chaos`]. Clones
/// share their counts.
///
/// [`Config::chaos`]: crate::Config::chaos
#[derive(Clone, Debug)]
pub struct Chaos {
    seed: u64,
    mix: Vec<(Mischief, u32)>,
    struck: Arc<[AtomicU64; 9]>,
}

impl Chaos {
    /// Every mischief with weight 1, `None` included, from `seed`.
    pub fn new(seed: u64) -> Chaos {
        Chaos {
            seed,
            mix: Mischief::ALL.iter().map(|&m| (m, 1)).collect(),
            struck: Arc::default(),
        }
    }

    /// Sets how often `mischief` is drawn, against the others' weights
    /// (0: never).
    pub fn weight(mut self, mischief: Mischief, weight: u32) -> Chaos {
        for (m, w) in &mut self.mix {
            if *m == mischief {
                *w = weight;
            }
        }
        self
    }

    /// How many times each mischief struck (`None`: connections that drew
    /// it), zeros included.
    pub fn struck(&self) -> Vec<(Mischief, u64)> {
        Mischief::ALL
            .iter()
            .map(|&m| (m, self.struck[m.index()].load(Ordering::Relaxed)))
            .collect()
    }

    /// Connection `id`'s plan.
    pub(crate) fn draw(&self, id: u64) -> Plan {
        let mut rng = fastrand::Rng::with_seed(self.seed ^ id.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let total: u32 = self.mix.iter().map(|(_, w)| w).sum();
        let mut pick = rng.u32(0..total.max(1));
        let mut mischief = Mischief::None;
        for &(m, w) in &self.mix {
            if pick < w {
                mischief = m;
                break;
            }
            pick -= w;
        }
        if mischief == Mischief::None {
            self.count(Mischief::None);
        }
        Plan {
            mischief,
            n: rng.u64(1..=4),
            chaos: self.clone(),
        }
    }

    fn count(&self, m: Mischief) {
        self.struck[m.index()].fetch_add(1, Ordering::Relaxed);
    }
}

/// One connection's draw.
#[derive(Debug)]
pub(crate) struct Plan {
    mischief: Mischief,
    n: u64,
    chaos: Chaos,
}

/// The knobs a plan turns on its connection's config.
#[derive(Debug, Default)]
pub(crate) struct Knobs {
    pub max_requests_per_conn: Option<u64>,
    pub h2_goaway_after: Option<u64>,
    pub h2_refuse_streams: u64,
}

impl Plan {
    /// The connection's own knobs (`h2`: it speaks HTTP/2).
    pub(crate) fn knobs(&self, h2: bool) -> Knobs {
        let mut k = Knobs::default();
        match (self.mischief, h2) {
            (Mischief::GoAway, true) => k.h2_goaway_after = Some(self.n),
            (Mischief::RefuseStreams, true) => k.h2_refuse_streams = self.n,
            (Mischief::CloseAfterRequests | Mischief::GoAway | Mischief::RefuseStreams, _) => {
                k.max_requests_per_conn = Some(self.n);
            }
            _ => {}
        }
        k
    }

    /// Request `seq` (1 for the connection's first) is about to be
    /// answered: the mischief that strikes it now, counted, if any.
    pub(crate) fn strikes(&self, seq: u64, h2: bool) -> Option<Mischief> {
        let m = self.mischief;
        // Refusals happened before the first stream served (they are not
        // requests); the other knobs act on request `n`.
        let now = match m {
            Mischief::None => false,
            Mischief::RefuseStreams if h2 => seq == 1,
            _ => seq == self.n,
        };
        now.then(|| {
            self.chaos.count(m);
            m
        })
    }
}
