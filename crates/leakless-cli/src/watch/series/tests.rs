use super::*;
use crate::sockets::TcpState;

fn at<'a>(t: f64, socks: &'a [Obs], tw: &'a [u64], baseline: bool) -> EndpointSample<'a> {
    EndpointSample {
        t,
        socks,
        tw_unattributed: tw,
        baseline,
        ..EndpointSample::default()
    }
}

fn obs(cookie: u64, state: TcpState, idle: f64) -> Obs {
    Obs {
        cookie,
        state: state.into(),
        recv_q: 0,
        idle_s: Some(idle),
        recv_idle_s: Some(idle),
    }
}

#[test]
fn opens_closes_and_time_wait_arrivals() {
    let mut s = EndpointSeries::default();
    s.observe(&at(0.0, &[obs(1, TcpState::Established, 0.0)], &[], true));
    assert_eq!(s.last().unwrap().opens, 0, "baseline sockets are not opens");
    s.observe(&at(
        1.0,
        &[
            obs(1, TcpState::Established, 0.0),
            obs(2, TcpState::Established, 0.0),
        ],
        &[],
        false,
    ));
    assert_eq!(s.last().unwrap().opens, 1);
    // Socket 1 closed by us: it is gone and its TIME_WAIT (same cookie) arrives.
    s.observe(&at(
        2.0,
        &[
            obs(2, TcpState::Established, 0.0),
            obs(1, TcpState::TimeWait, 0.0),
        ],
        &[7],
        false,
    ));
    let p = s.last().unwrap();
    assert_eq!((p.opens, p.closes, p.tw_unattributed), (0, 1, 1));
    assert_eq!((p.tw_new_attributed, p.tw_new_unattributed), (1, 1));
    assert_eq!(p.get(TcpState::TimeWait), 1);
    s.observe(&at(
        3.0,
        &[
            obs(2, TcpState::Established, 0.0),
            obs(1, TcpState::TimeWait, 0.0),
        ],
        &[7],
        false,
    ));
    let p = s.last().unwrap();
    assert_eq!(
        p.tw_new_attributed + p.tw_new_unattributed,
        0,
        "same TIME_WAIT sockets are not new"
    );
    assert_eq!(s.last().unwrap().oldest_age_s, 2.0);
}

#[test]
fn learns_peer_keepalive_from_transitions() {
    let mut s = EndpointSeries::default();
    s.observe(&at(0.0, &[obs(1, TcpState::Established, 0.3)], &[], true));
    s.observe(&at(0.5, &[obs(1, TcpState::Established, 0.8)], &[], false));
    s.observe(&at(1.0, &[obs(1, TcpState::CloseWait, 1.3)], &[], false));
    assert_eq!(s.keepalive.lo, Some(0.8));
    assert_eq!(s.keepalive.hi, Some(1.3));
    s.observe(&at(1.5, &[], &[], false));
    let w = s.window(10.0);
    assert_eq!(w.cw_ended.len(), 1);
    assert_eq!(w.cw_ended[0].since, 1.0);
}

#[test]
fn window_statistics() {
    let mut s = EndpointSeries::default();
    for i in 0..11 {
        let socks: Vec<Obs> = (0..i).map(|c| obs(c, TcpState::CloseWait, 1.0)).collect();
        s.observe(&at(f64::from(i as u32), &socks, &[], i == 0));
    }
    let w = s.window(5.0);
    assert_eq!(w.len(), 6);
    assert_eq!(w.span(), 5.0);
    assert!((w.slope(|p| f64::from(p.get(TcpState::CloseWait))) - 1.0).abs() < 1e-9);
    assert_eq!(
        w.rising_steps(|p| f64::from(p.get(TcpState::CloseWait))),
        1.0
    );
    assert_eq!(w.rate(|p| p.opens), 1.0);
    assert_eq!(w.present(|p| p.get(TcpState::CloseWait)), 1.0);
}
