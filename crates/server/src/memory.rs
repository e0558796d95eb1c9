//! Giving memory back after a burst of programs. Each run's QuickJS heap is freed when the run
//! ends, but glibc keeps freed pages in the arenas of the threads that ran them, so after a
//! load peak the server would keep its peak RSS for good. Shortly after the last running
//! program ends, the free pages are returned to the system.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::ServerState;

/// A trim is already scheduled.
static SCHEDULED: AtomicBool = AtomicBool::new(false);

/// How long the server must stay idle before it trims (back-to-back runs trim once).
const IDLE: Duration = Duration::from_millis(200);

/// Called when a run ends: if no program is running, trims the allocator a moment later
/// unless another run has started by then.
pub fn release_when_idle(shared: &Arc<ServerState>) {
    if !idle(shared) || SCHEDULED.swap(true, Ordering::SeqCst) {
        return;
    }
    let shared = shared.clone();
    tokio::spawn(async move {
        tokio::time::sleep(IDLE).await;
        SCHEDULED.store(false, Ordering::SeqCst);
        if idle(&shared) {
            // Trimming walks every arena: keep it off the async workers.
            let _ = tokio::task::spawn_blocking(trim).await;
        }
    });
}

fn idle(shared: &ServerState) -> bool {
    shared.idle()
}

/// Returns the allocator's free pages to the system (glibc only; elsewhere a no-op).
fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases memory the allocator holds free; it touches no live
    // allocation and may be called from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}
