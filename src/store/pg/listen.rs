//! The `LISTEN` side of change propagation: a thread with its own connection that waits for
//! another replica's `NOTIFY` and calls control's callback, which wakes the control thread to
//! republish its key table. After it (re)connects it calls the callback once too, since
//! notifications sent while it was away are lost. The control thread's periodic version check
//! is the backstop for anything this misses.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::{BACKOFF, CHANNEL, OnChange};

/// The listener thread; it ends when its handle is dropped (within a backoff period).
pub struct Listener {
    stop: Arc<AtomicBool>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Listener {
    pub fn start(config: postgres::Config, on_change: OnChange) -> Listener {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let spawned = std::thread::Builder::new()
            .name("store-listen".into())
            .spawn(move || listen(config, on_change, flag));
        if let Err(e) = spawned {
            ::log::error!("store: the change listener did not start ({e}); polling only");
        }
        Listener { stop }
    }
}

fn changed(on_change: &OnChange) {
    if let Some(f) = on_change.get() {
        f();
    }
}

fn listen(config: postgres::Config, on_change: OnChange, stop: Arc<AtomicBool>) {
    let mut backoff = BACKOFF.0;
    while !stop.load(Ordering::Relaxed) {
        let mut client = match config.connect(postgres::NoTls) {
            Ok(c) => c,
            Err(_) => {
                // The control thread logs the outage; this one only retries.
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(BACKOFF.1);
                continue;
            }
        };
        if client.batch_execute(&format!("LISTEN {CHANNEL}")).is_err() {
            continue;
        }
        backoff = BACKOFF.0;
        changed(&on_change);
        // Wakes at least every second to see `stop`; ends on a lost connection.
        loop {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let heard = {
                let mut n = client.notifications();
                let mut it = n.timeout_iter(Duration::from_secs(1));
                postgres::fallible_iterator::FallibleIterator::next(&mut it).map(|n| n.is_some())
            };
            match heard {
                Ok(true) => changed(&on_change),
                Ok(false) if client.is_closed() => break,
                Ok(false) => {}
                Err(_) => break,
            }
        }
    }
}
