//! The spool's disk failing under load while the broker is down: an ext4
//! remounted read-only after an error, or a tmpfs full; then repaired.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use crate::{
    disk,
    harness::{check, serial, start},
};
use enate_bridge_test_support::{
    eventually,
    load::{self, Answer, Load, LoadSpec},
};

/// Which disk fault the spool meets.
enum DiskFault {
    ReadOnly(disk::Ext4),
    Full(disk::Tmpfs),
}

impl DiskFault {
    fn path(&self) -> &Path {
        match self {
            DiskFault::ReadOnly(disk) => disk.path(),
            DiskFault::Full(disk) => disk.path(),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            DiskFault::ReadOnly(_) => "spool-read-only",
            DiskFault::Full(_) => "spool-full",
        }
    }

    fn apply(&self) -> String {
        match self {
            DiskFault::ReadOnly(disk) => {
                disk.break_read_only();
                "ext4 error, remounted read-only".into()
            }
            DiskFault::Full(disk) => format!("filled with {} bytes", disk.fill()),
        }
    }
}

/// The broker down so events go to the spool, then the spool's disk fails
/// (read-only or full) under load: every answer from then on must be a 503.
/// Then the disk is fixed, the broker comes back, and every 200 is delivered.
async fn spool_disk_fails_under_load(mount: impl FnOnce() -> DiskFault) {
    let _serial = serial().await;
    let fault = mount();
    let name = fault.name();
    let (node, mut bridge) = start(name, fault.path()).await;
    let load = Load::start(
        bridge.webhook_url(),
        LoadSpec {
            rate: Some(250.0),
            ..LoadSpec::default()
        },
    );

    load.wait_sent(load.spec.total / 6).await;
    node.stop().await;
    assert!(
        load.wait_answers(200, |a| *a == Answer::Spooled, Duration::from_secs(20))
            .await,
        "the outage was not spooled"
    );
    let what = fault.apply();
    let broken_at = load.elapsed();
    // Where in the fault /readyz is sampled for the report (asserted on by
    // nothing), not a wait for something: the load goes on meanwhile.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let readyz = bridge.readyz().await;
    let mut history = load.finish().await;

    // Repair the disk, bring the broker back; the bridge should drain on its own.
    let restarted = match &fault {
        DiskFault::ReadOnly(disk) => {
            // A file system that remounted itself read-only needs an unmount:
            // the bridge has to let go of its spool file first.
            bridge.stop_any_way().await;
            disk.repair();
            node.boot().await;
            bridge.restart().await;
            "restart (unmount + fsck needed)".to_string()
        }
        DiskFault::Full(disk) => {
            // Room again, the broker still down: the spool must take events
            // again by itself (its writer reopens the store), with no restart.
            disk.unfill();
            let freed_at = Instant::now();
            eventually(
                Duration::from_secs(15),
                "the spool to become writable once the disk had room",
                || async {
                    match bridge.spool().await {
                        Ok(spool) if spool["writable"] == true => Ok(()),
                        last => Err(format!("/spool {last:?}")),
                    }
                },
            )
            .await;
            let writable_after = freed_at.elapsed();
            let again = Load::start(
                bridge.webhook_url(),
                LoadSpec {
                    total: 300,
                    prefix: "after-room-",
                    ..LoadSpec::default()
                },
            )
            .finish()
            .await;
            let spooled_again = again
                .records
                .iter()
                .filter(|r| r.answer == Answer::Spooled)
                .count();
            assert_eq!(
                spooled_again,
                again.records.len(),
                "with room again, every event must be spooled (no restart)"
            );
            history.extend(again);
            node.boot().await;
            bridge.wait_broker_connected(Duration::from_secs(60)).await;
            format!(
                "none: writable {:.1}s after room was freed, then {spooled_again} more events spooled",
                writable_after.as_secs_f64()
            )
        }
    };
    let mut verdict = check(name, &node, &bridge, &history).await;
    // The first load's events sent after the fault (not the events sent once
    // the disk had room again).
    let after: Vec<&load::Record> = history
        .records
        .iter()
        .filter(|r| r.reference.starts_with("c") && r.sent_at > broken_at)
        .collect();
    let after_count = |answer: Answer| after.iter().filter(|r| r.answer == answer).count();
    let (after_published, after_spooled, after_503) = (
        after_count(Answer::Published),
        after_count(Answer::Spooled),
        after_count(Answer::Unavailable),
    );
    verdict.note(format!(
        "fault=\"{what}\" sent_after_fault={} 503_after_fault={after_503} \
         spooled_after_fault={after_spooled} published_after_fault={after_published} \
         readyz_during={} recovery={restarted:?}",
        after.len(),
        readyz.map_or_else(|e| e, |(code, _)| code.to_string()),
    ));
    verdict.report_and_assert(&bridge);
    assert!(!after.is_empty(), "the load ended before the disk fault");
    assert_eq!(
        after_published, 0,
        "the broker was down: nothing could be published"
    );
    match fault {
        // Nothing can be written to a read-only file system: every answer is a 503.
        DiskFault::ReadOnly(_) => assert_eq!(
            after_503,
            after.len(),
            "every answer after the spool's disk turned read-only must be a 503"
        ),
        // A "full" tmpfs can still take a commit that fits in pages the spool
        // file already has: such a 200 is true (report_and_assert checked that
        // it was delivered), so only the 503s are required here.
        DiskFault::Full(_) => assert!(after_503 > 0, "a full spool disk never gave a 503"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_spool_disk_answers_503_never_200_and_loses_nothing() {
    spool_disk_fails_under_load(|| DiskFault::ReadOnly(disk::Ext4::mount(64))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_spool_disk_answers_503_never_200_and_loses_nothing() {
    spool_disk_fails_under_load(|| DiskFault::Full(disk::Tmpfs::mount("16m"))).await;
}
