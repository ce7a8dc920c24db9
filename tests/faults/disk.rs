//! Spool directories on file systems a test can break for real. Root ignores
//! file permissions, so a read-only or full spool needs a file system of its own:
//!
//! - `Tmpfs`: a small tmpfs, filled up with a file (ENOSPC for the spool);
//! - `Ext4`: an ext4 image on a loop device, mounted `errors=remount-ro`, made
//!   read-only under the running bridge with ext4's own error path (the
//!   `trigger_fs_error` knob), as a disk error does in production. A plain
//!   `mount -o remount,ro` is refused ("mount point is busy") while the bridge
//!   holds its spool file open for writing, on tmpfs as on any file system.
//!
//! Both are unmounted on drop, even during a panic.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use enate_bridge_test_support::node::run;

fn mount_failed(what: &str, error: String) -> ! {
    panic!(
        "the spool-disk fault needs to mount {what} (root and mount(8) required); \
         mounting failed, so this test cannot run here: {error}"
    )
}

pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    pub fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::Builder::new()
            .prefix("enate-bridge-faults-tmpfs")
            .tempdir()
            .unwrap();
        let target = dir.path().to_str().unwrap();
        if let Err(error) = run(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}"),
                "tmpfs",
                target,
            ],
        ) {
            mount_failed("a tmpfs", error);
        }
        Tmpfs { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    fn filler(&self) -> PathBuf {
        self.path().join("filler")
    }

    /// Writes a file until the file system is full; returns its size.
    pub fn fill(&self) -> u64 {
        let mut file = std::fs::File::create(self.filler()).unwrap();
        let mut written = 0u64;
        for chunk in [1 << 20, 4096, 512] {
            let bytes = vec![0xa5u8; chunk];
            while file.write_all(&bytes).is_ok() {
                written += chunk as u64;
            }
        }
        let _ = file.sync_all();
        written
    }

    pub fn unfill(&self) {
        std::fs::remove_file(self.filler()).expect("the filler file can be removed");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = run("umount", &["-l", self.dir.path().to_str().unwrap()]);
    }
}

pub struct Ext4 {
    dir: tempfile::TempDir,
    image: PathBuf,
    device: String,
}

impl Ext4 {
    pub fn mount(size_mb: u64) -> Ext4 {
        let dir = tempfile::Builder::new()
            .prefix("enate-bridge-faults-ext4")
            .tempdir()
            .unwrap();
        let image = dir.path().with_extension("img");
        let file = std::fs::File::create(&image).unwrap();
        file.set_len(size_mb << 20).unwrap();
        drop(file);
        let image_path = image.to_str().unwrap();
        if let Err(error) = run("mkfs.ext4", &["-q", "-F", image_path]) {
            mount_failed("an ext4 image", error);
        }
        let device = match run("losetup", &["-f", "--show", image_path]) {
            Ok(device) => device.trim().to_string(),
            Err(error) => mount_failed("a loop device", error),
        };
        let disk = Ext4 { dir, image, device };
        disk.mount_rw();
        disk
    }

    fn mount_rw(&self) {
        if let Err(error) = run(
            "mount",
            &[
                "-o",
                "errors=remount-ro",
                &self.device,
                self.dir.path().to_str().unwrap(),
            ],
        ) {
            mount_failed("an ext4 loop device", error);
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// ext4 meets an error and remounts itself read-only: open files included.
    pub fn break_read_only(&self) {
        let name = Path::new(&self.device)
            .file_name()
            .unwrap()
            .to_str()
            .unwrap();
        std::fs::write(format!("/sys/fs/ext4/{name}/trigger_fs_error"), "1")
            .expect("ext4's trigger_fs_error can be written");
        let probe = self.path().join("probe");
        assert!(
            std::fs::write(&probe, "x").is_err(),
            "the ext4 spool disk is still writable after its error"
        );
    }

    /// What an operator does: unmount (the bridge must be stopped), fsck, mount again.
    pub fn repair(&self) {
        run("umount", &[self.dir.path().to_str().unwrap()]).expect("umount the spool disk");
        // e2fsck exits 1 when it corrected something: that is success too.
        let fsck = std::process::Command::new("e2fsck")
            .args(["-f", "-y", &self.device])
            .output()
            .expect("e2fsck runs");
        assert!(
            matches!(fsck.status.code(), Some(0 | 1)),
            "e2fsck failed: {fsck:?}"
        );
        self.mount_rw();
    }
}

impl Drop for Ext4 {
    fn drop(&mut self) {
        let _ = run("umount", &["-l", self.dir.path().to_str().unwrap()]);
        let _ = run("losetup", &["-d", &self.device]);
        let _ = std::fs::remove_file(&self.image);
    }
}
