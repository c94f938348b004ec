//! The kernel's `sock:inet_sock_set_state` tracepoint as tracefs describes
//! it: its perf event id and where each field sits in a raw sample.
//!
//! Offsets are read from the tracepoint's `format` file rather than assumed,
//! so a kernel that reorders or widens a field still parses.
//!
//! tracefs is found where it is mounted (`/sys/kernel/tracing`, the older
//! `/sys/kernel/debug/tracing`, or wherever mountinfo says). Where it is not
//! mounted at all and we may mount (root), it is mounted on a private
//! temporary directory just long enough to read two small files, then
//! unmounted: the host's mount table is left as it was.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The tracepoint, relative to tracefs's `events/`.
const EVENT: &str = "sock/inet_sock_set_state";

/// Where each field of `inet_sock_set_state` sits in the raw sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The perf event id (`PERF_TYPE_TRACEPOINT` config).
    pub id: u64,
    pub skaddr: usize,
    pub oldstate: usize,
    pub newstate: usize,
    pub sport: usize,
    pub dport: usize,
    pub family: usize,
    pub protocol: usize,
    pub saddr: usize,
    pub daddr: usize,
    pub saddr_v6: usize,
    pub daddr_v6: usize,
    /// The raw sample must be at least this long.
    pub min_len: usize,
}

/// Reads the tracepoint's id and layout, mounting tracefs privately if
/// needed. The error says what to do (mount tracefs, run as root). Read once
/// per process: the answer does not change while the kernel runs.
pub fn inet_sock_set_state() -> io::Result<Layout> {
    static LAYOUT: OnceLock<Result<Layout, (io::ErrorKind, String)>> = OnceLock::new();
    LAYOUT
        .get_or_init(|| {
            let found = match mounted() {
                Some(dir) => read_layout(&dir),
                None => with_private_mount(read_layout),
            };
            found.map_err(|e| (e.kind(), e.to_string()))
        })
        .clone()
        .map_err(|(kind, msg)| io::Error::new(kind, msg))
}

/// A mounted tracefs whose events directory has the tracepoint.
fn mounted() -> Option<PathBuf> {
    let mut candidates = vec![
        PathBuf::from("/sys/kernel/tracing"),
        PathBuf::from("/sys/kernel/debug/tracing"),
    ];
    if let Ok(info) = fs::read_to_string("/proc/self/mountinfo") {
        candidates.extend(tracefs_mounts(&info));
    }
    candidates
        .into_iter()
        .find(|d| d.join("events").join(EVENT).join("id").exists())
}

/// Mount points of tracefs in a mountinfo text (fields: ... mount point is
/// the 5th; the filesystem type follows the " - " separator).
fn tracefs_mounts(mountinfo: &str) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let mount_point = left.split_whitespace().nth(4)?;
            (right.split_whitespace().next()? == "tracefs").then(|| PathBuf::from(mount_point))
        })
        .collect()
}

/// Mounts tracefs on a fresh temporary directory, runs `f`, unmounts.
fn with_private_mount<T>(f: impl FnOnce(&Path) -> io::Result<T>) -> io::Result<T> {
    let dir = std::env::temp_dir().join(format!("leakless-tracefs-{}", std::process::id()));
    fs::create_dir_all(&dir)?;
    let c_dir = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // SAFETY: plain mount(2) with NUL-terminated strings that outlive the call.
    let rc = unsafe {
        libc::mount(
            c"nodev".as_ptr(),
            c_dir.as_ptr(),
            c"tracefs".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        let e = io::Error::last_os_error();
        let _ = fs::remove_dir(&dir);
        return Err(io::Error::new(
            e.kind(),
            format!(
                "tracefs is not mounted and mounting it failed ({e}); mount it at /sys/kernel/tracing"
            ),
        ));
    }
    let out = f(&dir);
    // SAFETY: umount2(2) of the directory mounted above.
    unsafe {
        libc::umount2(c_dir.as_ptr(), libc::MNT_DETACH);
    }
    let _ = fs::remove_dir(&dir);
    out
}

fn read_layout(tracefs: &Path) -> io::Result<Layout> {
    let dir = tracefs.join("events").join(EVENT);
    let id = fs::read_to_string(dir.join("id"))?;
    let format = fs::read_to_string(dir.join("format"))?;
    let id = id.trim().parse::<u64>().map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {e}", dir.join("id").display()),
        )
    })?;
    parse_format(id, &format).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{}: a field watch needs is missing",
                dir.join("format").display()
            ),
        )
    })
}

/// The layout from a tracepoint `format` file: each field line reads
/// `field:TYPE NAME;  offset:N;  size:M;  signed:S;`.
pub fn parse_format(id: u64, format: &str) -> Option<Layout> {
    let fields: Vec<(&str, usize, usize)> = format
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let decl = l.strip_prefix("field:")?.split(';').next()?;
            // The name is the last word, without an array suffix.
            let name = decl.split_whitespace().last()?.split('[').next()?;
            let num = |key: &str| -> Option<usize> {
                l.split(';')
                    .find_map(|p| p.trim().strip_prefix(key))?
                    .trim()
                    .parse()
                    .ok()
            };
            Some((name, num("offset:")?, num("size:")?))
        })
        .collect();
    let at = |name: &str, size: usize| -> Option<usize> {
        fields
            .iter()
            .find(|(n, _, s)| *n == name && *s == size)
            .map(|(_, o, _)| *o)
    };
    let layout = Layout {
        id,
        skaddr: at("skaddr", 8)?,
        oldstate: at("oldstate", 4)?,
        newstate: at("newstate", 4)?,
        sport: at("sport", 2)?,
        dport: at("dport", 2)?,
        family: at("family", 2)?,
        protocol: at("protocol", 2)?,
        saddr: at("saddr", 4)?,
        daddr: at("daddr", 4)?,
        saddr_v6: at("saddr_v6", 16)?,
        daddr_v6: at("daddr_v6", 16)?,
        min_len: fields.iter().map(|(_, o, s)| o + s).max()?,
    };
    Some(layout)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The format file of Linux 6.18, as tracefs prints it.
    const FORMAT: &str = "name: inet_sock_set_state
ID: 2287
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:const void * skaddr;\toffset:8;\tsize:8;\tsigned:0;
\tfield:int oldstate;\toffset:16;\tsize:4;\tsigned:1;
\tfield:int newstate;\toffset:20;\tsize:4;\tsigned:1;
\tfield:__u16 sport;\toffset:24;\tsize:2;\tsigned:0;
\tfield:__u16 dport;\toffset:26;\tsize:2;\tsigned:0;
\tfield:__u16 family;\toffset:28;\tsize:2;\tsigned:0;
\tfield:__u16 protocol;\toffset:30;\tsize:2;\tsigned:0;
\tfield:__u8 saddr[4];\toffset:32;\tsize:4;\tsigned:0;
\tfield:__u8 daddr[4];\toffset:36;\tsize:4;\tsigned:0;
\tfield:__u8 saddr_v6[16];\toffset:40;\tsize:16;\tsigned:0;
\tfield:__u8 daddr_v6[16];\toffset:56;\tsize:16;\tsigned:0;

print fmt: \"family=%s ...\"
";

    #[test]
    fn parses_the_field_offsets_of_the_format_file() {
        let l = parse_format(2287, FORMAT).unwrap();
        assert_eq!((l.skaddr, l.oldstate, l.newstate), (8, 16, 20));
        assert_eq!((l.sport, l.dport, l.family, l.protocol), (24, 26, 28, 30));
        assert_eq!((l.saddr, l.daddr, l.saddr_v6, l.daddr_v6), (32, 36, 40, 56));
        assert_eq!(l.min_len, 72);
    }

    #[test]
    fn a_format_without_a_needed_field_is_refused() {
        let cut: String = FORMAT
            .lines()
            .filter(|l| !l.contains("daddr_v6"))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(parse_format(1, &cut).is_none());
    }

    #[test]
    fn finds_tracefs_mount_points_in_mountinfo() {
        let info = "22 1 0:20 / /sys rw - sysfs sysfs rw\n\
                    40 22 0:12 / /sys/kernel/tracing rw,nosuid - tracefs tracefs rw\n";
        assert_eq!(
            tracefs_mounts(info),
            vec![PathBuf::from("/sys/kernel/tracing")]
        );
    }

    /// On the real kernel: found mounted, or mounted privately and left
    /// unmounted afterwards.
    #[test]
    fn reads_the_real_tracepoint_and_leaves_no_mount_behind() {
        let l = match inet_sock_set_state() {
            Ok(l) => l,
            Err(e) if std::env::var_os("LEAKLESS_REQUIRE_EVENTS").is_none() => {
                eprintln!("skipped: {e}");
                return;
            }
            Err(e) => panic!("{e}"),
        };
        assert!(l.id > 0);
        let after = fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!after.contains("leakless-tracefs-"), "{after}");
    }
}
