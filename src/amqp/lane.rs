//! A lane: one confirm-mode channel and the one task that owns it. The task
//! sends the messages queued to it, in queue order, and settles their confirms,
//! many of them in flight at once.
//!
//! Why a task owns the channel, rather than requests publishing on clones of it:
//!
//! - **Send order.** lapin takes a message's delivery tag and queues its frames
//!   under separate locks. Two tasks publishing on one channel at the same
//!   moment can put their frames on the wire in the opposite order to their
//!   tags; the broker numbers messages by arrival, so each confirm then resolves
//!   the *other* message's future, and with a `reject-publish` queue the ack
//!   meant for an accepted message lands on a rejected one. (The fault suite
//!   first blamed RabbitMQ's multi-ack for this; that bug existed in
//!   3.7.0-3.7.14 and was fixed in 3.7.15/3.8.0, rabbitmq-server #1719. The
//!   reproducer in `tests/faults/raw_confirms.rs` shows the real cause.) Here a
//!   single task sends, so tags follow the queue.
//! - **Returned messages.** lapin attaches a `basic.return` to whichever confirm
//!   it completes next, not to the message that was returned. With several
//!   confirms in flight (an ack with `multiple=true` completes them in hash-map
//!   order), the return of message B can ride on A's ack while B's own ack
//!   carries nothing: B would look published while no queue has it. So a return
//!   is matched to its message by `message_id`: every confirm the task can
//!   settle at once is looked at first, every return collected, and only then is
//!   each message judged. A message whose own ack carries someone else's return
//!   may have its return still waiting in lapin: it is judged returned (sent
//!   again later, at worst a duplicate), never published.
//!
//! Confirms are not serialized: up to `window` are in flight per lane, so the
//! broker acks in batches. A confirm that never comes does not block the lane;
//! the requester times out and the lane settles it whenever it arrives.

use std::{
    collections::{HashMap, VecDeque},
    future::{Future, poll_fn},
    pin::Pin,
    sync::Arc,
    task::Poll,
    time::Instant,
};

use futures::{
    FutureExt, StreamExt,
    future::{MaybeDone, maybe_done},
    stream::FuturesUnordered,
};
use lapin::{Channel, Confirmation, Connection, options::ConfirmSelectOptions, types::ShortString};
use tokio::sync::{mpsc, oneshot};
use tokio_util::task::TaskTracker;

use super::message::{Confirmed, Message, PublishError};

/// What a requester learns about its message.
pub type Verdict = Result<Confirmed, PublishError>;

struct Request {
    message: Message,
    /// When it was submitted: its wait for the lane is counted from here.
    queued_at: Instant,
    reply: oneshot::Sender<Verdict>,
}

/// The sending side of a lane; cheap to clone.
#[derive(Clone)]
pub struct LaneHandle {
    requests: mpsc::Sender<Request>,
}

/// A message queued on a lane; resolves to its verdict.
pub struct Ticket(oneshot::Receiver<Verdict>);

impl LaneHandle {
    /// Starts the lane's task on `connection`, with `window` confirms in flight
    /// at most, tracked by `tasks` so a shutdown waits for its last confirms.
    /// The task ends once every handle is dropped and its confirms are settled.
    pub fn start(connection: Arc<Connection>, window: usize, tasks: &TaskTracker) -> Self {
        // Room for one window queued beside the one in flight: enough to keep the
        // channel busy, small enough that a stalled broker backs requesters up.
        let (requests, queue) = mpsc::channel(window);
        tasks.spawn(Lane::new(connection, window).run(queue));
        Self { requests }
    }

    /// Queues `message`; it is sent after everything queued before it on this lane.
    /// Waits while the lane's queue is full.
    pub async fn submit(&self, message: Message) -> Result<Ticket, PublishError> {
        let (reply, verdict) = oneshot::channel();
        self.requests
            .send(Request {
                message,
                queued_at: Instant::now(),
                reply,
            })
            .await
            .map_err(|_| PublishError::Disconnected)?;
        Ok(Ticket(verdict))
    }
}

impl Ticket {
    /// The verdict: `Ok` (with the lane's timings) when the broker acked the
    /// message and did not return it.
    pub async fn verdict(self) -> Verdict {
        self.0.await.unwrap_or(Err(PublishError::Disconnected))
    }
}

/// A sent message waiting for its confirm.
struct InFlight {
    message_id: Option<ShortString>,
    taken_at: Instant,
    queued_at: Instant,
    sent_at: Instant,
    reply: oneshot::Sender<Verdict>,
}

struct Lane {
    connection: Arc<Connection>,
    channel: Option<Channel>,
    window: usize,
    /// Ids of messages the broker returned, waiting to be matched to their
    /// message; bounded, since a return only concerns messages in flight.
    returned: ReturnedIds,
}

impl Lane {
    fn new(connection: Arc<Connection>, window: usize) -> Self {
        Self {
            connection,
            channel: None,
            window,
            returned: ReturnedIds::new(window.max(64) * 2),
        }
    }

    async fn run(mut self, mut queue: mpsc::Receiver<Request>) {
        // Opened now so the first message does not wait for it; if this fails,
        // `send` tries again with the first message.
        self.channel = confirm_channel(&self.connection).await.ok();
        let mut in_flight = FuturesUnordered::new();
        let mut open = true;
        while open || !in_flight.is_empty() {
            tokio::select! {
                // Settle first: it frees the window and answers requesters.
                biased;
                Some(first) = in_flight.next(), if !in_flight.is_empty() => {
                    let mut settled = vec![first];
                    // Every confirm already resolved, so that a return riding on
                    // another message's ack is seen before anyone is judged.
                    while let Some(Some(more)) = in_flight.next().now_or_never() {
                        settled.push(more);
                    }
                    self.settle(settled);
                }
                request = queue.recv(), if open && in_flight.len() < self.window => {
                    let Some(first) = request else {
                        open = false;
                        continue;
                    };
                    let batch = take_queued(first, &mut queue, self.window - in_flight.len());
                    for (tracked, confirm) in self.send_batch(batch).await {
                        in_flight.push(confirm.map(move |result| (tracked, result)));
                    }
                }
            }
        }
    }

    /// Sends the batch; returns the messages lapin took, each with the confirm
    /// that will settle it, and answers the others with their error.
    async fn send_batch(
        &mut self,
        batch: Vec<Request>,
    ) -> Vec<(InFlight, lapin::PublisherConfirm)> {
        // Every requester gave up: nothing to send, no channel to open for it.
        if batch.is_empty() {
            return Vec::new();
        }
        let taken_at = Instant::now();
        let mut messages = Vec::with_capacity(batch.len());
        let mut requests = Vec::with_capacity(batch.len());
        for request in batch {
            let message_id = request.message.properties.message_id().clone();
            requests.push((message_id, request.queued_at, request.reply));
            messages.push(request.message);
        }
        let sent = self.send(messages).await;
        let sent_at = Instant::now();
        let mut taken = Vec::with_capacity(sent.len());
        for ((message_id, queued_at, reply), result) in requests.into_iter().zip(sent) {
            match result {
                Ok(confirm) => {
                    let tracked = InFlight {
                        message_id,
                        taken_at,
                        queued_at,
                        sent_at,
                        reply,
                    };
                    taken.push((tracked, confirm));
                }
                Err(error) => {
                    let _ = reply.send(Err(error));
                }
            }
        }
        taken
    }

    /// Hands the messages to lapin on this lane's channel, in their order, and
    /// waits until its I/O thread has written them; opens the channel if it is
    /// not open (first use, or closed by the broker after an error).
    async fn send(
        &mut self,
        messages: Vec<Message>,
    ) -> Vec<Result<lapin::PublisherConfirm, PublishError>> {
        let channel = match &self.channel {
            Some(channel) if channel.status().connected() => channel.clone(),
            _ => match confirm_channel(&self.connection).await {
                Ok(channel) => {
                    self.channel = Some(channel.clone());
                    channel
                }
                Err(error) => {
                    let error = self.failure(error);
                    return messages.iter().map(|_| Err(error.clone())).collect();
                }
            },
        };
        let sends = messages
            .into_iter()
            .map(|message| Box::pin(message.send(&channel)))
            .collect();
        all_in_order(sends)
            .await
            .into_iter()
            .map(|sent| sent.map_err(|error| self.failure(error)))
            .collect()
    }

    fn failure(&self, error: lapin::Error) -> PublishError {
        if self.connection.status().connected() {
            PublishError::Channel(error)
        } else {
            PublishError::Disconnected
        }
    }

    /// Judges every settled message, once all their returns are collected.
    fn settle(&mut self, settled: Vec<(InFlight, lapin::Result<Confirmation>)>) {
        let settled_at = Instant::now();
        for (_, result) in &settled {
            if let Some(id) = returned_id(result) {
                self.returned.insert(id.clone());
            }
        }
        for (message, result) in settled {
            let verdict = match &result {
                Err(error) => Err(self.failure(error.clone())),
                Ok(Confirmation::Nack(_)) => Err(PublishError::Nack),
                Ok(Confirmation::NotRequested) => Err(PublishError::NotConfirmMode),
                // Its own return (matched here), or someone else's: then its own
                // may still be waiting inside lapin, so it cannot be called published.
                Ok(Confirmation::Ack(Some(_))) => {
                    if let Some(own) = &message.message_id
                        && returned_id(&result) == Some(own)
                    {
                        self.returned.take(own);
                    }
                    Err(PublishError::Returned)
                }
                Ok(Confirmation::Ack(None)) => match &message.message_id {
                    Some(id) if self.returned.take(id) => Err(PublishError::Returned),
                    _ => Ok(Confirmed {
                        lane_wait: message.taken_at - message.queued_at,
                        send: message.sent_at - message.taken_at,
                        confirm: settled_at - message.sent_at,
                        settled_at,
                    }),
                },
            };
            // The requester may have timed out and gone; the verdict is then moot.
            let _ = message.reply.send(verdict);
        }
    }
}

/// `first` and every request already queued behind it, `room` at most: sent
/// as one batch, they wait for one write by lapin's I/O thread, where one
/// message at a time made the last of a burst wait for every write before its
/// own. Requesters that gave up before their message was sent are left out.
fn take_queued(first: Request, queue: &mut mpsc::Receiver<Request>, room: usize) -> Vec<Request> {
    let mut batch = vec![first];
    while batch.len() < room {
        let Ok(more) = queue.try_recv() else { break };
        batch.push(more);
    }
    batch.retain(|request| !request.reply.is_closed());
    batch
}

/// Awaits every future, polling them in their order each time. A
/// `basic_publish` takes its delivery tag and queues its frames on its first
/// poll, so the messages go out in this order (the broker numbers them by
/// arrival), and their writes are awaited together.
async fn all_in_order<F: Future + Unpin>(futures: Vec<F>) -> Vec<F::Output> {
    let mut pending: Vec<MaybeDone<F>> = futures.into_iter().map(maybe_done).collect();
    poll_fn(|cx| {
        let mut done = true;
        for future in &mut pending {
            done &= Pin::new(future).poll(cx).is_ready();
        }
        if done { Poll::Ready(()) } else { Poll::Pending }
    })
    .await;
    pending
        .iter_mut()
        .map(|future| {
            Pin::new(future)
                .take_output()
                .expect("every future is done")
        })
        .collect()
}

/// The `message_id` of the returned message a confirm carries, if any.
fn returned_id(result: &lapin::Result<Confirmation>) -> Option<&ShortString> {
    match result {
        Ok(Confirmation::Ack(Some(returned)) | Confirmation::Nack(Some(returned))) => {
            returned.delivery.properties.message_id().as_ref()
        }
        _ => None,
    }
}

/// A channel of `connection` in confirm mode.
async fn confirm_channel(connection: &Connection) -> lapin::Result<Channel> {
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    Ok(channel)
}

/// The returned ids not matched to a message yet, counted: two messages with
/// the same id (an event sent twice, a spooled copy beside a live one) can both
/// be returned, and each return must judge one of them. The oldest are
/// forgotten beyond `capacity`.
struct ReturnedIds {
    capacity: usize,
    /// Per id, the insertion numbers of its returns not yet matched, oldest first.
    outstanding: HashMap<ShortString, VecDeque<u64>>,
    /// Every insertion, oldest first, for forgetting beyond capacity.
    order: VecDeque<(ShortString, u64)>,
    inserted: u64,
}

impl ReturnedIds {
    fn new(capacity: usize) -> Self {
        Self {
            capacity,
            outstanding: HashMap::new(),
            order: VecDeque::new(),
            inserted: 0,
        }
    }

    fn insert(&mut self, id: ShortString) {
        self.inserted += 1;
        self.outstanding
            .entry(id.clone())
            .or_default()
            .push_back(self.inserted);
        self.order.push_back((id, self.inserted));
        while self.order.len() > self.capacity {
            let Some((oldest, number)) = self.order.pop_front() else {
                break;
            };
            // Still unmatched, it is the oldest of its id: forget it.
            if let Some(numbers) = self.outstanding.get_mut(&oldest)
                && numbers.front() == Some(&number)
            {
                numbers.pop_front();
                if numbers.is_empty() {
                    self.outstanding.remove(&oldest);
                }
            }
        }
    }

    /// Matches one return of `id` to a message: whether there was one.
    fn take(&mut self, id: &ShortString) -> bool {
        let Some(numbers) = self.outstanding.get_mut(id) else {
            return false;
        };
        numbers.pop_front();
        if numbers.is_empty() {
            self.outstanding.remove(id);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A future that notes its first poll in `log` (its index), is pending
    /// once, then notes that it is done (its index + 1000).
    fn noting(
        index: usize,
        log: Arc<std::sync::Mutex<Vec<usize>>>,
    ) -> Pin<Box<impl Future<Output = usize>>> {
        Box::pin(async move {
            log.lock().unwrap().push(index);
            tokio::task::yield_now().await;
            log.lock().unwrap().push(index + 1000);
            index
        })
    }

    #[tokio::test]
    async fn all_in_order_starts_every_future_in_its_order_before_any_ends() {
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let futures = (0..40).map(|index| noting(index, log.clone())).collect();
        let outputs = all_in_order(futures).await;
        assert_eq!(outputs, (0..40).collect::<Vec<_>>());
        let log = log.lock().unwrap();
        let (first_polls, ends) = log.split_at(40);
        assert_eq!(
            first_polls,
            (0..40).collect::<Vec<_>>(),
            "every future started, in order, before any ended"
        );
        assert_eq!(ends.len(), 40);
    }

    #[test]
    fn each_return_judges_one_message_of_its_id() {
        let mut ids = ReturnedIds::new(10);
        ids.insert("a".into());
        ids.insert("a".into());
        assert!(ids.take(&"a".into()), "the first message with id a");
        assert!(ids.take(&"a".into()), "its twin, returned too");
        assert!(!ids.take(&"a".into()), "no third return");
        assert!(!ids.take(&"b".into()));
    }

    #[test]
    fn the_oldest_unmatched_returns_are_forgotten_beyond_capacity() {
        let mut ids = ReturnedIds::new(2);
        for id in ["a", "b", "c"] {
            ids.insert(id.into());
        }
        assert!(!ids.take(&"a".into()), "forgotten");
        assert!(ids.take(&"b".into()));
        assert!(ids.take(&"c".into()));
    }

    #[test]
    fn a_matched_return_that_ages_out_never_takes_a_newer_one_with_it() {
        let mut ids = ReturnedIds::new(2);
        ids.insert("a".into());
        assert!(ids.take(&"a".into()));
        ids.insert("a".into());
        // The first, matched insertion of a ages out here; the second stays.
        ids.insert("b".into());
        assert!(ids.take(&"a".into()));
        assert!(ids.take(&"b".into()));
    }
}
