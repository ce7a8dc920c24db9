//! One live connection and its small pool of confirm-mode channels.
//!
//! Publishes are spread round-robin over the channels; many confirms may be
//! pending on each at once, so no request waits for another's confirm. A
//! channel the broker closed (e.g. after publishing to a missing exchange) is
//! replaced on next use instead of failing every later publish.

use std::sync::{
    Mutex,
    atomic::{AtomicUsize, Ordering},
};

use lapin::{Channel, Connection, options::ConfirmSelectOptions};

/// Which channel a publish goes out on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelChoice {
    /// The next in turn: concurrent requests spread over the pool.
    Next,
    /// Always the same one: messages published one after another reach the
    /// broker in that order (the spool's forwarder keeps arrival order this way).
    First,
}

pub struct Session {
    pub connection: Connection,
    slots: Vec<Slot>,
    next: AtomicUsize,
}

struct Slot {
    /// Held only to clone or swap the handle, never across an await.
    channel: Mutex<Channel>,
    /// Serializes the repair of this slot, so a burst of requests opens one channel, not many.
    repair: tokio::sync::Mutex<()>,
}

impl Session {
    pub async fn open(connection: Connection, channels: usize) -> lapin::Result<Self> {
        let mut slots = Vec::with_capacity(channels);
        for _ in 0..channels {
            slots.push(Slot {
                channel: Mutex::new(confirm_channel(&connection).await?),
                repair: tokio::sync::Mutex::new(()),
            });
        }
        Ok(Self {
            connection,
            slots,
            next: AtomicUsize::new(0),
        })
    }

    /// The channel to publish on, reopened first if the broker closed it.
    pub async fn channel(&self, choice: ChannelChoice) -> lapin::Result<Channel> {
        let index = match choice {
            ChannelChoice::Next => self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len(),
            ChannelChoice::First => 0,
        };
        let slot = &self.slots[index];
        let channel = slot.channel.lock().expect("channel slot poisoned").clone();
        if channel.status().connected() {
            return Ok(channel);
        }
        let _repairing = slot.repair.lock().await;
        let current = slot.channel.lock().expect("channel slot poisoned").clone();
        if current.status().connected() {
            return Ok(current);
        }
        let fresh = confirm_channel(&self.connection).await?;
        *slot.channel.lock().expect("channel slot poisoned") = fresh.clone();
        Ok(fresh)
    }

    pub fn is_connected(&self) -> bool {
        self.connection.status().connected()
    }

    pub fn is_blocked(&self) -> bool {
        self.connection.status().blocked()
    }
}

async fn confirm_channel(connection: &Connection) -> lapin::Result<Channel> {
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    Ok(channel)
}
