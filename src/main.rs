/// jemalloc rather than glibc's malloc: after a burst (thousands of connections,
/// a 1 MB body of many objects) glibc kept the freed memory in its per-thread
/// arenas for good (319 MiB an idle minute later), jemalloc gives it back (67 MiB).
/// The library leaves the choice to the binary.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read at its start: background threads purge unused pages
/// within about a second, instead of only when an allocating thread passes by
/// (an idle bridge allocates nothing, so without them nothing would be returned).
/// `_RJEM_MALLOC_CONF` in the environment overrides them.
#[allow(non_upper_case_globals)]
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static malloc_conf: &[u8] = b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:1000\0";

fn main() -> std::process::ExitCode {
    enate_bridge::cli::run()
}
