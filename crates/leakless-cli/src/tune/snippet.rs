//! The advice as code to paste: a leakless `ClientBuilder`, a Go
//! `http.Transport` + `http.Client`, a reqwest `ClientBuilder`. Each is a
//! complete expression or function so it compiles as printed (the Go one is
//! compiled in the tests when Go is installed).

use super::advice::Advice;

/// `Duration::from_millis(1500)` or `Duration::from_secs(2)`.
fn rust_duration(s: f64) -> String {
    let ms = (s * 1000.0).round() as u64;
    if ms % 1000 == 0 {
        format!("Duration::from_secs({})", ms / 1000)
    } else {
        format!("Duration::from_millis({ms})")
    }
}

/// `1500 * time.Millisecond` or `2 * time.Second`.
fn go_duration(s: f64) -> String {
    let ms = (s * 1000.0).round() as u64;
    if ms % 1000 == 0 {
        format!("{} * time.Second", ms / 1000)
    } else {
        format!("{ms} * time.Millisecond")
    }
}

pub fn leakless(a: &Advice) -> String {
    let mut o = String::from("// use std::time::Duration;\n");
    o += "let client = leakless::Client::builder()\n";
    o += &format!("    .max_conns_per_host({})\n", a.max_conns_per_host.value);
    o += &format!(
        "    .max_idle_conns_per_host({})\n",
        a.max_idle_conns_per_host.value
    );
    o += &format!(
        "    .idle_conn_timeout({})\n",
        rust_duration(a.idle_conn_timeout_s.value)
    );
    o += &format!(
        "    .response_header_timeout({})\n",
        rust_duration(a.response_header_timeout_s.value)
    );
    o += &format!("    .timeout({})\n", rust_duration(a.timeout_s.value));
    if !a.http2.value {
        o += "    .disable_http2(true)\n";
    }
    o += "    .build()?;\n";
    o
}

pub fn go(a: &Advice) -> String {
    let cap = a.max_conns_per_host.value;
    let mut o = String::from("// import (\"net\"; \"net/http\"; \"time\")\n");
    o += "func newClient() *http.Client {\n";
    o += "\ttransport := &http.Transport{\n";
    o += "\t\tProxy: http.ProxyFromEnvironment,\n";
    o += "\t\tDialContext: (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,\n";
    // MaxIdleConns is across hosts: at least the per-host cap, or Go's
    // default 100 would undercut it for a single busy host.
    o += &format!("\t\tMaxIdleConns:          {},\n", cap.max(100));
    o += &format!("\t\tMaxIdleConnsPerHost:   {cap}, // Go's default 2 churns under load\n");
    o += &format!("\t\tMaxConnsPerHost:       {cap},\n");
    o += &format!(
        "\t\tIdleConnTimeout:       {},\n",
        go_duration(a.idle_conn_timeout_s.value)
    );
    o += &format!(
        "\t\tResponseHeaderTimeout: {},\n",
        go_duration(a.response_header_timeout_s.value)
    );
    o += "\t\tTLSHandshakeTimeout:   10 * time.Second,\n";
    o += "\t\tExpectContinueTimeout: 1 * time.Second,\n";
    // A custom DialContext turns Go's automatic HTTP/2 off; this says which.
    o += &format!("\t\tForceAttemptHTTP2:     {},\n", a.http2.value);
    o += "\t}\n";
    o += &format!(
        "\treturn &http.Client{{Transport: transport, Timeout: {}}}\n",
        go_duration(a.timeout_s.value)
    );
    o += "}\n";
    o
}

pub fn reqwest(a: &Advice) -> String {
    let mut o = String::new();
    o += &format!(
        "// reqwest cannot cap connections per host: bound requests in flight\n\
         // yourself, e.g. an Arc<tokio::sync::Semaphore> with {} permits.\n\
         // Nor has it a response-header timeout: .timeout() covers the whole\n\
         // request, .read_timeout() each read.\n",
        a.max_conns_per_host.value
    );
    o += "// use std::time::Duration;\n";
    o += "let client = reqwest::Client::builder()\n";
    o += &format!(
        "    .pool_max_idle_per_host({})\n",
        a.max_idle_conns_per_host.value
    );
    o += &format!(
        "    .pool_idle_timeout({})\n",
        rust_duration(a.idle_conn_timeout_s.value)
    );
    o += "    .connect_timeout(Duration::from_secs(10))\n";
    o += &format!(
        "    .read_timeout({})\n",
        rust_duration(a.response_header_timeout_s.value)
    );
    o += &format!("    .timeout({})\n", rust_duration(a.timeout_s.value));
    if !a.http2.value {
        o += "    .http1_only()\n";
    }
    o += "    .build()?;\n";
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(rust_duration(2.0), "Duration::from_secs(2)");
        assert_eq!(rust_duration(1.5), "Duration::from_millis(1500)");
        assert_eq!(go_duration(90.0), "90 * time.Second");
        assert_eq!(go_duration(0.2), "200 * time.Millisecond");
    }
}
