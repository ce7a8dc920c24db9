//! Making messages safe: published with a confirm, or spooled, as
//! `spool.mode` says. A 200 is answered only on `Ok`.

use crate::{
    amqp::{Broker, PublishError},
    dispatch::{Destinations, Outgoing, publish_all},
    spool::{Spool, SpoolError, SpoolMode},
};

pub struct Delivery {
    pub broker: Broker,
    pub destinations: Destinations,
    /// `None` when `spool.mode` is `off`.
    pub spool: Option<Spool>,
    pub mode: SpoolMode,
}

/// Where the messages are safe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Safe {
    /// Every message confirmed by RabbitMQ.
    Published,
    /// Some or all fsynced in the spool, the rest confirmed.
    Spooled,
}

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error(transparent)]
    Unconfirmed(#[from] PublishError),
    #[error(transparent)]
    Spool(#[from] SpoolError),
}

impl Delivery {
    pub async fn deliver(&self, messages: &[Outgoing]) -> Result<Safe, DeliveryError> {
        if let (Some(spool), SpoolMode::Always) = (&self.spool, self.mode) {
            spool.append(messages).await?;
            return Ok(Safe::Spooled);
        }
        let results = publish_all(&self.broker, &self.destinations, messages).await;
        let mut first_error = None;
        let unconfirmed: Vec<Outgoing> = messages
            .iter()
            .zip(results)
            .filter_map(|(message, result)| {
                let error = result.err()?;
                first_error.get_or_insert(error);
                Some(message.clone())
            })
            .collect();
        let Some(error) = first_error else {
            return Ok(Safe::Published);
        };
        match &self.spool {
            Some(spool) => {
                // A timed-out publish may still reach the broker: then the spool
                // sends it again, with the same id, and consumers drop the copy.
                spool.append(&unconfirmed).await?;
                Ok(Safe::Spooled)
            }
            None => Err(error.into()),
        }
    }

    /// `Ok(what accepts events now)` while a request can be answered 200.
    pub fn readiness(&self) -> Result<&'static str, String> {
        let broker = self.broker.readiness();
        let spool = self.spool.as_ref().map(Spool::writable);
        match (self.mode, broker, spool) {
            (SpoolMode::Always, _, Some(Ok(()))) => Ok("spool"),
            (SpoolMode::Always, _, Some(Err(spool))) => {
                Err(format!("the spool cannot take events: {spool}"))
            }
            (_, Ok(()), _) => Ok("broker"),
            (_, Err(_), Some(Ok(()))) => Ok("spool"),
            (_, Err(broker), Some(Err(spool))) => Err(format!(
                "{broker}; and the spool cannot take events: {spool}"
            )),
            (_, Err(broker), None) => Err(broker),
        }
    }
}
