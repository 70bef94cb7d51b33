//! What the embedded peers remember of a run (log lines, requests): the latest ones only.
//! A run that goes on for hours (the demo) must not keep everything it ever saw; the
//! oldest entries go first, and how many went is counted.

use std::collections::VecDeque;

/// The latest `limit` items pushed, in order, with the count of all ever pushed.
#[derive(Debug)]
pub struct Recent<T> {
    kept: VecDeque<T>,
    limit: usize,
    /// Items ever pushed (the absolute number of the next one).
    pub total: usize,
}

impl<T: Clone> Recent<T> {
    /// Keeps at most `limit` items.
    pub fn new(limit: usize) -> Recent<T> {
        Recent { kept: VecDeque::new(), limit, total: 0 }
    }

    /// Appends `item`, dropping the oldest beyond the limit.
    pub fn push(&mut self, item: T) {
        if self.kept.len() == self.limit {
            self.kept.pop_front();
        }
        self.kept.push_back(item);
        self.total += 1;
    }

    /// The kept items numbered `from` (counting from 0) and after.
    pub fn since(&self, from: usize) -> Vec<T> {
        let first = self.total - self.kept.len();
        self.kept.iter().skip(from.saturating_sub(first)).cloned().collect()
    }

    /// Items dropped to stay within the limit.
    pub fn dropped(&self) -> usize {
        self.total - self.kept.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_latest_and_counts_the_rest() {
        let mut r = Recent::new(3);
        for i in 0..5 {
            r.push(i);
        }
        assert_eq!((r.since(0), r.total, r.dropped()), (vec![2, 3, 4], 5, 2));
        assert_eq!(r.since(3), vec![3, 4], "numbers are absolute");
        assert_eq!(r.since(9), Vec::<i32>::new());
    }
}
