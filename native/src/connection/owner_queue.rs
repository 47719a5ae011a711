//! The bound on what waits in the owner's mailbox (`owner_queue_limit`)
//! for a WebSocket that runs without `flow`.

/// What a delivered message costs the owner beyond its payload: the
/// tuple, the binary's header, the mailbox entry.
const MESSAGE_OVERHEAD: u64 = 64;

/// Keeps what waits in the owner's mailbox under `owner_queue_limit`
/// without `flow`. Only Erlang can see a mailbox: every quarter of the
/// limit delivered, the process behind ConnPid is asked for the owner's
/// queue length, and that times the mean size of what was delivered
/// meanwhile is taken as the bytes waiting there.
pub(super) struct OwnerQueue {
    limit: u64,
    /// Bytes and messages delivered since the last question.
    bytes: u64,
    messages: u64,
    /// A question is out; reading stops if another quarter is delivered
    /// before its answer.
    asked: bool,
}

impl OwnerQueue {
    pub(super) fn new(limit: u64) -> Self {
        OwnerQueue {
            limit,
            bytes: 0,
            messages: 0,
            asked: false,
        }
    }

    fn quarter(&self) -> u64 {
        (self.limit / 4).max(1)
    }

    /// Counts a delivery; `Some(mean message size)` when it is time to ask.
    pub(super) fn delivered(&mut self, payload: usize) -> Option<u64> {
        self.bytes += payload as u64 + MESSAGE_OVERHEAD;
        self.messages += 1;
        if self.asked || self.bytes < self.quarter() {
            return None;
        }
        let mean = self.bytes / self.messages;
        self.asked = true;
        self.bytes = 0;
        self.messages = 0;
        Some(mean)
    }

    pub(super) fn waiting_for_answer(&self) -> bool {
        self.asked && self.bytes >= self.quarter()
    }

    /// The answer: `false` when the owner holds too much.
    pub(super) fn answered(&mut self, queued_bytes: u64) -> bool {
        self.asked = false;
        queued_bytes <= self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asks_once_a_quarter_of_the_limit_is_delivered() {
        let mut queue = OwnerQueue::new(4 * 1000);
        // 436 + 64 = 500 bytes a message: two make the quarter.
        assert_eq!(queue.delivered(436), None);
        assert_eq!(queue.delivered(436), Some(500));
        assert!(!queue.waiting_for_answer());
    }

    #[test]
    fn a_second_quarter_before_the_answer_stalls_reading() {
        let mut queue = OwnerQueue::new(4 * 1000);
        assert_eq!(queue.delivered(936), Some(1000));
        // Asked: no second question while the first is out.
        assert_eq!(queue.delivered(436), None);
        assert!(!queue.waiting_for_answer());
        assert_eq!(queue.delivered(436), None);
        assert!(queue.waiting_for_answer());
        assert!(queue.answered(4000));
        assert!(!queue.waiting_for_answer());
        // What was delivered meanwhile counts towards the next question.
        assert_eq!(queue.delivered(0), Some((500 + 500 + 64) / 3));
    }

    #[test]
    fn an_answer_over_the_limit_is_refused() {
        let mut queue = OwnerQueue::new(4000);
        assert_eq!(queue.delivered(2000), Some(2064));
        assert!(!queue.answered(4001));
        assert!(queue.answered(4000));
    }

    #[test]
    fn a_tiny_limit_asks_at_every_message() {
        let mut queue = OwnerQueue::new(1);
        assert_eq!(queue.delivered(0), Some(MESSAGE_OVERHEAD));
        assert!(queue.answered(0));
        assert_eq!(queue.delivered(10), Some(10 + MESSAGE_OVERHEAD));
    }
}
