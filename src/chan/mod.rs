//! Channels: Go's `chan` with crossbeam-channel's shape.
//!
//! [`bounded`]`(n)` is a channel with a buffer of `n` values (`bounded(0)` is Go's
//! unbuffered channel: a send waits for a receiver and hands the value straight over);
//! [`unbounded`] never blocks senders. A channel is closed by [`Sender::close`] or when
//! every `Sender` is dropped: receivers then drain the buffer and get
//! [`RecvError`]. When every `Receiver` is dropped, sends fail instead of blocking
//! forever. Blocking operations park the goroutine, or block the thread outside the
//! runtime. [`select!`](crate::select) waits on several operations at once.
//!
//! ```
//! use gort::chan;
//! gort::run(|| {
//!     let (tx, rx) = chan::bounded::<u64>(0);
//!     let producer = gort::go(move || {
//!         for i in 0..10 {
//!             tx.send(i).unwrap();
//!         }
//!         // dropping the last sender closes the channel
//!     });
//!     let sum: u64 = rx.iter().sum();
//!     assert_eq!(sum, 45);
//!     producer.join().unwrap();
//! });
//! ```

mod hchan;
#[doc(hidden)]
pub mod select;
mod waitq;

use hchan::{Chan, RecvFail, SendFail};
use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Creates a channel with a buffer of `cap` values; `cap == 0` is a rendezvous.
pub fn bounded<T>(cap: usize) -> (Sender<T>, Receiver<T>) {
    let c = Arc::new(Chan::new(cap));
    (Sender { chan: c.clone() }, Receiver { chan: c })
}

/// Creates a channel whose sends never block.
pub fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
    bounded(usize::MAX)
}

/// A channel that receives the current instant once, after `d` (Go's `time.After`).
///
/// ```
/// use std::time::Duration;
/// gort::run(|| {
///     let (_tx, rx) = gort::chan::bounded::<u8>(0);
///     let timed_out = gort::select! {
///         recv(rx) -> _ => false,
///         recv(gort::chan::after(Duration::from_millis(2))) -> _ => true,
///     };
///     assert!(timed_out);
/// });
/// ```
pub fn after(d: std::time::Duration) -> Receiver<std::time::Instant> {
    timer_chan(d, None)
}

/// A channel that receives the current instant every `d` (Go's `time.Tick`); ticks a
/// slow receiver misses are dropped. A zero `d` gives a channel that never receives
/// (Go's `Tick` returns a nil channel for non-positive durations).
pub fn tick(d: std::time::Duration) -> Receiver<std::time::Instant> {
    if d.is_zero() {
        return never();
    }
    timer_chan(d, Some(d))
}

/// A channel that never receives anything (Go's nil channel in a `select`).
pub fn never<T>() -> Receiver<T> {
    let (tx, rx) = bounded(0);
    std::mem::forget(tx); // never closed
    rx
}

fn timer_chan(
    d: std::time::Duration,
    period: Option<std::time::Duration>,
) -> Receiver<std::time::Instant> {
    crate::sched::init::ensure_init();
    let (tx, rx) = bounded(1);
    let ns = |d: std::time::Duration| d.as_nanos().min(i64::MAX as u128 / 2) as i64;
    crate::time::add_timer(crate::time::heap::Entry {
        when: crate::time::heap::nanotime().saturating_add(ns(d)),
        seq: 0,
        action: crate::time::heap::Action::Send {
            tx,
            period: period.map_or(0, ns),
            shared: Default::default(),
            fired: None,
        },
    });
    rx
}

/// The sending side of a channel. Cloning it adds a sender; the channel closes when
/// the last one is dropped.
pub struct Sender<T> {
    chan: Arc<Chan<T>>,
}

/// The receiving side of a channel. Cloning it adds a receiver (each value goes to one
/// of them).
pub struct Receiver<T> {
    chan: Arc<Chan<T>>,
}

/// The value could not be sent: the channel is closed, or every receiver is gone.
#[derive(PartialEq, Eq, Clone, Copy)]
pub struct SendError<T>(pub T);

/// Why `try_send` did not send.
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum TrySendError<T> {
    /// The buffer is full and no receiver is waiting.
    Full(T),
    /// The channel is closed, or every receiver is gone.
    Disconnected(T),
}

/// The channel is closed and empty.
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
pub struct RecvError;

/// Why `recv_timeout` did not receive.
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
pub enum RecvTimeoutError {
    /// Nothing arrived in time.
    Timeout,
    /// The channel is closed and empty.
    Disconnected,
}

/// Why `send_timeout` did not send; carries the value back.
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum SendTimeoutError<T> {
    /// No room and no receiver in time.
    Timeout(T),
    /// The channel is closed, or every receiver is gone.
    Disconnected(T),
}

impl<T> fmt::Debug for SendTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendTimeoutError::Timeout(_) => f.write_str("Timeout(..)"),
            SendTimeoutError::Disconnected(_) => f.write_str("Disconnected(..)"),
        }
    }
}
impl<T> fmt::Display for SendTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendTimeoutError::Timeout(_) => f.write_str("timed out sending on a full channel"),
            SendTimeoutError::Disconnected(_) => f.write_str("sending on a closed channel"),
        }
    }
}
impl<T> std::error::Error for SendTimeoutError<T> {}

impl fmt::Display for RecvTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvTimeoutError::Timeout => f.write_str("timed out receiving on an empty channel"),
            RecvTimeoutError::Disconnected => {
                f.write_str("receiving on a closed and empty channel")
            }
        }
    }
}
impl std::error::Error for RecvTimeoutError {}

/// Why `try_recv` did not receive.
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
pub enum TryRecvError {
    /// Nothing buffered and no sender waiting.
    Empty,
    /// The channel is closed and empty.
    Disconnected,
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendError(..)")
    }
}
impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sending on a closed channel")
    }
}
impl<T> std::error::Error for SendError<T> {}

impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("Full(..)"),
            TrySendError::Disconnected(_) => f.write_str("Disconnected(..)"),
        }
    }
}
impl<T> fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("sending on a full channel"),
            TrySendError::Disconnected(_) => f.write_str("sending on a closed channel"),
        }
    }
}
impl<T> std::error::Error for TrySendError<T> {}

impl<T> TrySendError<T> {
    /// The value that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            TrySendError::Full(v) | TrySendError::Disconnected(v) => v,
        }
    }
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("receiving on a closed and empty channel")
    }
}
impl std::error::Error for RecvError {}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryRecvError::Empty => f.write_str("receiving on an empty channel"),
            TryRecvError::Disconnected => f.write_str("receiving on a closed and empty channel"),
        }
    }
}
impl std::error::Error for TryRecvError {}

impl<T> Sender<T> {
    /// Sends `v`, parking while the buffer is full and no receiver waits. Fails with the
    /// value if the channel is closed or every receiver is gone.
    pub fn send(&self, v: T) -> Result<(), SendError<T>> {
        self.chan.send(v, true).map_err(|e| match e {
            SendFail::Full(v) | SendFail::Disconnected(v) => SendError(v),
        })
    }

    /// Sends `v` only if that needs no waiting.
    pub fn try_send(&self, v: T) -> Result<(), TrySendError<T>> {
        self.chan.send(v, false).map_err(|e| match e {
            SendFail::Full(v) => TrySendError::Full(v),
            SendFail::Disconnected(v) => TrySendError::Disconnected(v),
        })
    }

    /// Sends `v`, waiting at most `timeout` for room or a receiver.
    pub fn send_timeout(
        &self,
        v: T,
        timeout: std::time::Duration,
    ) -> Result<(), SendTimeoutError<T>> {
        let timer = after(timeout);
        let mut send = select::SendCase::new(self, v);
        let mut tick = select::RecvCase::new(&timer);
        let won = {
            let mut cases: [&mut dyn select::Case; 2] = [&mut send, &mut tick];
            select::select_impl(&mut cases, true)
        };
        match won {
            Some(0) => send
                .into_result()
                .map_err(|SendError(v)| SendTimeoutError::Disconnected(v)),
            _ => match send.take_value() {
                Some(v) => Err(SendTimeoutError::Timeout(v)),
                None => crate::throw!("send_timeout: the send case lost but its value is gone"),
            },
        }
    }

    /// Closes the channel (Go's `close(ch)`): receivers get the buffered values, then
    /// `RecvError`; blocked and later sends fail. Returns `false` if it was already
    /// closed (where Go would panic with "close of closed channel").
    pub fn close(&self) -> bool {
        self.chan.close()
    }

    /// Values in the buffer.
    pub fn len(&self) -> usize {
        self.chan.len()
    }

    /// Whether the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Buffer capacity (`None` for unbounded).
    pub fn capacity(&self) -> Option<usize> {
        (self.chan.cap != usize::MAX).then_some(self.chan.cap)
    }

    pub(crate) fn chan(&self) -> &Arc<Chan<T>> {
        &self.chan
    }

    /// Whether any receiver still exists (a ticker stops re-arming when none does).
    pub(crate) fn has_receivers(&self) -> bool {
        self.chan.receivers.load(Ordering::Relaxed) > 0
    }
}

impl<T> Receiver<T> {
    /// Receives a value, parking while the channel is empty and open. `Err` once the
    /// channel is closed and drained.
    pub fn recv(&self) -> Result<T, RecvError> {
        self.chan.recv(true).map_err(|_| RecvError)
    }

    /// Receives a value only if that needs no waiting.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        self.chan.recv(false).map_err(|e| match e {
            RecvFail::Empty => TryRecvError::Empty,
            RecvFail::Disconnected => TryRecvError::Disconnected,
        })
    }

    /// Receives a value, waiting at most `timeout`.
    pub fn recv_timeout(&self, timeout: std::time::Duration) -> Result<T, RecvTimeoutError> {
        crate::select! {
            recv(self) -> r => r.map_err(|_| RecvTimeoutError::Disconnected),
            default(timeout) => Err(RecvTimeoutError::Timeout),
        }
    }

    /// A blocking iterator over received values, ending when the channel is closed and
    /// drained.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { rx: self }
    }

    /// An iterator over the values available now.
    pub fn try_iter(&self) -> TryIter<'_, T> {
        TryIter { rx: self }
    }

    /// Values in the buffer.
    pub fn len(&self) -> usize {
        self.chan.len()
    }

    /// Whether the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Buffer capacity (`None` for unbounded).
    pub fn capacity(&self) -> Option<usize> {
        (self.chan.cap != usize::MAX).then_some(self.chan.cap)
    }

    pub(crate) fn chan(&self) -> &Arc<Chan<T>> {
        &self.chan
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.chan.senders.fetch_add(1, Ordering::Relaxed);
        Sender {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        self.chan.receivers.fetch_add(1, Ordering::Relaxed);
        Receiver {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        // acq_rel; the drops pair with each other (as Arc's count does), so the last one
        // closes after every other sender's last use
        if self.chan.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.chan.close();
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        // acq_rel; as in Sender::drop, for the last receiver
        if self.chan.receivers.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.chan.receivers_gone();
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sender { .. }")
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Receiver { .. }")
    }
}

/// Blocking iterator of [`Receiver::iter`].
#[derive(Debug)]
pub struct Iter<'a, T> {
    rx: &'a Receiver<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

/// Non-blocking iterator of [`Receiver::try_iter`].
#[derive(Debug)]
pub struct TryIter<'a, T> {
    rx: &'a Receiver<T>,
}

impl<T> Iterator for TryIter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.try_recv().ok()
    }
}

impl<'a, T> IntoIterator for &'a Receiver<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

/// Owning blocking iterator.
#[derive(Debug)]
pub struct IntoIter<T> {
    rx: Receiver<T>,
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

impl<T> IntoIterator for Receiver<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;
    fn into_iter(self) -> IntoIter<T> {
        IntoIter { rx: self }
    }
}
