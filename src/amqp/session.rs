//! One live connection and its pool of confirm-mode channels.
//!
//! By default each channel carries **one unconfirmed message at a time**;
//! concurrency comes from many channels, not from many confirms pending on one.
//! The reason is a broker behaviour the fault suite caught: with a
//! `reject-publish` queue bound, RabbitMQ (seen on 3.10) can send an ack with
//! `multiple=true` that covers a message which that queue then nacks. A
//! publisher with several confirms pending on the channel takes that message as
//! confirmed, and it is lost. With one message per channel, every ack and nack
//! is about exactly one message. `amqp.confirms_per_channel` above 1 lets the
//! broker batch acks again (faster) where no such queue is bound.
//!
//! A channel offers `confirms_per_channel` slots. A publish leases a free slot
//! (opening a channel if none is free, up to `amqp.channels`), publishes, waits
//! for the confirm, and gives the slot back. So no request waits for another's
//! confirm until every slot is busy. A slot whose confirm did not come back in
//! time is never given back; with one slot per channel, that channel is closed.

use std::sync::Mutex;

use lapin::{Channel, Connection, options::ConfirmSelectOptions};
use tokio::sync::{Semaphore, SemaphorePermit};

pub struct Session {
    pub connection: Connection,
    /// Free slots: a channel appears once per confirm it may still carry.
    /// Locked only to push or pop.
    idle: Mutex<Vec<Channel>>,
    /// One permit per slot that may be in use at once.
    leases: Semaphore,
    confirms_per_channel: usize,
}

/// A channel with nothing else pending on it, for one publish.
pub struct Lease<'a> {
    session: &'a Session,
    channel: Option<Channel>,
    _permit: SemaphorePermit<'a>,
}

impl Session {
    /// Opens `warm` channels now (so the first requests do not pay for it), and
    /// allows up to `max_channels` of `confirms_per_channel` slots each.
    pub async fn open(
        connection: Connection,
        warm: usize,
        max_channels: usize,
        confirms_per_channel: usize,
    ) -> lapin::Result<Self> {
        let mut idle = Vec::with_capacity(max_channels * confirms_per_channel);
        for _ in 0..warm.min(max_channels) {
            let channel = confirm_channel(&connection).await?;
            idle.extend(std::iter::repeat_n(channel, confirms_per_channel));
        }
        Ok(Self {
            connection,
            idle: Mutex::new(idle),
            leases: Semaphore::new(max_channels * confirms_per_channel),
            confirms_per_channel,
        })
    }

    /// An idle channel, or a new one. Waits only when `amqp.channels` publishes
    /// are already pending.
    pub async fn lease(&self) -> lapin::Result<Lease<'_>> {
        let permit = self
            .leases
            .acquire()
            .await
            .expect("the lease semaphore is never closed");
        let reusable = loop {
            let candidate = self.idle.lock().expect("idle channels poisoned").pop();
            match candidate {
                Some(channel) if channel.status().connected() => break Some(channel),
                // Closed by the broker (e.g. a publish to a missing exchange): drop it.
                Some(_) => continue,
                None => break None,
            }
        };
        let channel = match reusable {
            Some(channel) => channel,
            None => {
                let channel = confirm_channel(&self.connection).await?;
                // This lease takes one slot; the channel's others are free.
                let others = std::iter::repeat_n(channel.clone(), self.confirms_per_channel - 1);
                self.idle
                    .lock()
                    .expect("idle channels poisoned")
                    .extend(others);
                channel
            }
        };
        Ok(Lease {
            session: self,
            channel: Some(channel),
            _permit: permit,
        })
    }

    pub fn is_connected(&self) -> bool {
        self.connection.status().connected()
    }

    pub fn is_blocked(&self) -> bool {
        self.connection.status().blocked()
    }
}

impl Lease<'_> {
    pub fn channel(&self) -> &Channel {
        self.channel
            .as_ref()
            .expect("a lease holds its channel until dropped")
    }

    /// The confirm is settled: the channel can carry the next message.
    pub fn give_back(mut self) {
        if let Some(channel) = self.channel.take() {
            self.session
                .idle
                .lock()
                .expect("idle channels poisoned")
                .push(channel);
        }
    }
}

impl Drop for Lease<'_> {
    /// A lease dropped without `give_back` may still have a confirm pending (a
    /// timeout, a cancelled request): its slot is never reused, and a channel
    /// of one slot is closed.
    fn drop(&mut self) {
        let Some(channel) = self.channel.take() else {
            return;
        };
        if self.session.confirms_per_channel > 1 {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = channel.close(200, "confirm abandoned".into()).await;
            });
        }
    }
}

async fn confirm_channel(connection: &Connection) -> lapin::Result<Channel> {
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    Ok(channel)
}
