//! `--report FILE.html`: one self-contained file, and it renders in a real
//! browser (headless Chromium, Debian's `chromium` package). Without
//! Chromium the rendering half is skipped with a message, unless
//! LEAKLESS_REQUIRE_CHROMIUM is set (CI), where it fails instead.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{code, leakless};

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| {
            std::env::var_os("PATH")
                .map(|p| {
                    std::env::split_paths(&p)
                        .map(|d| d.join(name))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        })
        .find(|p| p.is_file())
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("leakless-bench-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn the_report_is_self_contained_and_renders() {
    let html = scratch("report.html");
    let out = leakless()
        .args([
            "bench",
            "-d",
            "1s",
            "-c",
            "4",
            "--rate",
            "2000",
            "--max-idle-per-host",
            "1",
        ])
        .arg("--report")
        .arg(&html)
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let page = std::fs::read_to_string(&html).unwrap();
    assert_eq!(
        page.matches("<svg").count(),
        7,
        "4 charts over time and the histogram, the latency ones also from the schedule (--rate)"
    );
    assert!(page.contains("<polyline") && page.contains("<rect"));
    for fetch in ["<script", "src=", "href=", "@import", "url("] {
        assert!(
            !page.contains(fetch),
            "the page must fetch nothing: found {fetch}"
        );
    }
    for title in [
        "Throughput",
        "Latency percentiles, from the send",
        "Latency percentiles, from the scheduled start",
        "Open connections",
        "Latency histogram, from the send",
        "Latency histogram, from the scheduled start",
    ] {
        assert!(page.contains(title), "no {title} chart");
    }

    let Some(chromium) = chromium() else {
        assert!(
            std::env::var_os("LEAKLESS_REQUIRE_CHROMIUM").is_none(),
            "LEAKLESS_REQUIRE_CHROMIUM is set but chromium is not installed"
        );
        eprintln!("skipping the rendering check: no chromium (apt-get install chromium)");
        return;
    };
    let png = scratch("report.png");
    render(&chromium, &html, &png);
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[1..4], b"PNG");
    // A blank 800x1800 page compresses to a few KiB; five charts do not.
    assert!(
        bytes.len() > 40_000,
        "the screenshot is nearly empty: {} bytes",
        bytes.len()
    );
    let dom = Command::new(&chromium)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom"])
        .arg(format!("file://{}", html.display()))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert_eq!(dom.matches("<svg").count(), 7, "Chromium parsed seven SVGs");
    let _ = std::fs::remove_dir_all(html.parent().unwrap());
}

fn render(chromium: &Path, html: &Path, png: &Path) {
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=840,1800",
        ])
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", html.display()))
        .output()
        .unwrap();
    assert!(
        png.is_file(),
        "chromium wrote no screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
