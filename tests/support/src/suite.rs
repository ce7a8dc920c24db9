//! What a fault suite tells the shared harness about itself: what cargo gives
//! only to the test binary, at its compile time (`env!`). Each suite calls
//! [`init_suite!`](crate::init_suite) before its tests use the harness (in its
//! `serial()`, which every test calls first).

use std::{
    path::{Path, PathBuf},
    sync::OnceLock,
};

pub struct Suite {
    /// `env!("CARGO_BIN_EXE_enate-bridge")`: the binary `bridge::Bridge` runs.
    pub bridge_binary: &'static str,
    /// Where `checker` writes the suite's `FAULT ...` lines, in target/.
    pub report: PathBuf,
}

impl Suite {
    /// The suite whose report is `report_file` in target/, beside
    /// `target_tmpdir` (`env!("CARGO_TARGET_TMPDIR")`, target/tmp).
    pub fn new(bridge_binary: &'static str, target_tmpdir: &str, report_file: &str) -> Suite {
        Suite {
            bridge_binary,
            report: Path::new(target_tmpdir)
                .parent()
                .expect("CARGO_TARGET_TMPDIR is target/tmp")
                .join(report_file),
        }
    }
}

/// `init_suite!("faults-report.txt")`: tells the harness that the test binary
/// calling it runs, whose report is that file in target/. A macro, so that
/// `env!` is read where cargo sets it: in the test binary.
#[macro_export]
macro_rules! init_suite {
    ($report_file:expr) => {
        $crate::suite::init(|| {
            $crate::suite::Suite::new(
                env!("CARGO_BIN_EXE_enate-bridge"),
                env!("CARGO_TARGET_TMPDIR"),
                $report_file,
            )
        })
    };
}

static SUITE: OnceLock<Suite> = OnceLock::new();

/// Tells the harness which suite runs it; the first call counts.
pub fn init(suite: impl FnOnce() -> Suite) {
    SUITE.get_or_init(suite);
}

pub(crate) fn get() -> &'static Suite {
    SUITE
        .get()
        .expect("the suite calls init_suite! first (in its serial())")
}
