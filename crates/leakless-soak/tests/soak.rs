//! The soak, for 30 seconds: mixed protocols against faults drawn per
//! connection and nginx's tiny keep-alive limits, with cancellations and
//! dropped bodies; nothing may leak, outlive its deadline, or reach a
//! caller that should not. `scripts/soak` runs it for longer.

use std::time::Duration;

#[test]
fn thirty_seconds_of_faults_and_cancellations_leave_nothing_behind() {
    let opts = leakless_soak::Options {
        duration: Duration::from_secs(30),
        ..Default::default()
    };
    let report = leakless_soak::run(&opts);
    println!("{report}");
    assert!(report.requests() > 0);
    let breaches = report.breaches();
    assert!(breaches.is_empty(), "{report}");
}
