//! Memory pools: fixed-size objects recycled through a free list, with counters.
//!
//! Reproduces `memory.c` (1.5-dev8). HAProxy never returns a session, task or buffer to
//! `malloc` on the hot path: `pool_free2` pushes the object on its pool's free list and
//! `pool_alloc2` pops it again, so a busy proxy stops allocating after warm-up. Each pool
//! counts the objects it `allocated` (live or on the free list), the ones `used` right
//! now, and the allocations that `failed` (the pool `limit` was hit, HAProxy's `-m`).
//! The counters are how haflow's tests prove that every error path frees what it took:
//! after the traffic stops, `used` is back to zero in every pool.

/// The numbers `show pools` prints for one pool (a copy, for observers).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolStats {
    /// Pool name as HAProxy spells it (`session`, `task`, `buffer`...).
    pub name: &'static str,
    /// Size of one object in bytes.
    pub size: usize,
    /// Objects obtained from the allocator and not released (used + on the free list).
    pub allocated: u64,
    /// Objects handed out and not yet freed.
    pub used: u64,
    /// Allocations refused because the pool limit was reached.
    pub failed: u64,
}

/// A pool of `T`: a free list of boxed objects plus HAProxy's counters.
#[derive(Debug)]
pub struct Pool<T> {
    name: &'static str,
    size: usize,
    free_list: Vec<Box<T>>,
    allocated: u64,
    used: u64,
    failed: u64,
    /// Maximum number of objects this pool may allocate (`None`: unlimited).
    limit: Option<u64>,
}

impl<T> Pool<T> {
    /// memory.c:create_pool() in 1.5-dev8: an empty pool of objects of `size` bytes.
    pub fn create_pool(name: &'static str, size: usize) -> Pool<T> {
        Pool { name, size, free_list: Vec::new(), allocated: 0, used: 0, failed: 0, limit: None }
    }

    /// Caps the number of objects this pool may hold (HAProxy's global memory limit).
    pub fn set_limit(&mut self, limit: Option<u64>) {
        self.limit = limit;
    }

    // ANCHOR: pool_alloc2
    /// memory.h:pool_alloc2() in 1.5-dev8: pop an object from the free list, or allocate one
    /// (`pool_refill_alloc`). `init` gives the object its initial value either way.
    /// Returns `None` (and counts a failure) when the pool limit is reached.
    pub fn pool_alloc2(&mut self, init: impl FnOnce() -> T) -> Option<Box<T>> {
        if let Some(mut obj) = self.free_list.pop() {
            *obj = init();
            self.used += 1;
            return Some(obj);
        }
        if self.limit.is_some_and(|l| self.allocated >= l) {
            self.failed += 1;
            return None;
        }
        self.allocated += 1;
        self.used += 1;
        Some(Box::new(init()))
    }
    // ANCHOR_END: pool_alloc2

    /// Like `pool_alloc2`, but lets the caller reuse a recycled object in place instead of
    /// rebuilding it (buffers keep their storage: only their indexes are reset).
    pub fn pool_alloc2_with(
        &mut self,
        new: impl FnOnce() -> T,
        reset: impl FnOnce(&mut T),
    ) -> Option<Box<T>> {
        if let Some(mut obj) = self.free_list.pop() {
            reset(&mut obj);
            self.used += 1;
            return Some(obj);
        }
        self.pool_alloc2(new)
    }

    // ANCHOR: pool_free2
    /// memory.h:pool_free2() in 1.5-dev8: put the object back on the free list.
    pub fn pool_free2(&mut self, obj: Box<T>) {
        debug_assert!(self.used > 0, "pool_free2 on pool '{}' with nothing in use", self.name);
        self.used = self.used.saturating_sub(1);
        self.free_list.push(obj);
    }
    // ANCHOR_END: pool_free2

    /// memory.c:pool_gc2() in 1.5-dev8: give the free objects back to the system.
    pub fn pool_gc2(&mut self) {
        self.allocated -= self.free_list.len() as u64;
        self.free_list.clear();
        self.free_list.shrink_to_fit();
    }

    /// Objects in use right now.
    pub fn used(&self) -> u64 {
        self.used
    }

    /// The pool's counters, for `show pools`, the TUI and tests.
    pub fn stats(&self) -> PoolStats {
        PoolStats {
            name: self.name,
            size: self.size,
            allocated: self.allocated,
            used: self.used,
            failed: self.failed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freed_objects_are_reused_and_counted() {
        let mut p: Pool<u32> = Pool::create_pool("test", 4);
        let a = p.pool_alloc2(|| 1).unwrap();
        let b = p.pool_alloc2(|| 2).unwrap();
        assert_eq!((p.stats().allocated, p.stats().used), (2, 2));
        p.pool_free2(a);
        assert_eq!((p.stats().allocated, p.stats().used), (2, 1));
        let c = p.pool_alloc2(|| 3).unwrap();
        assert_eq!(*c, 3, "a recycled object gets its new value");
        assert_eq!(p.stats().allocated, 2, "no new allocation while the free list has objects");
        p.pool_free2(b);
        p.pool_free2(c);
        p.pool_gc2();
        assert_eq!((p.stats().allocated, p.stats().used), (0, 0));
    }

    #[test]
    fn limit_makes_allocation_fail_and_counts_it() {
        let mut p: Pool<u8> = Pool::create_pool("lim", 1);
        p.set_limit(Some(1));
        let a = p.pool_alloc2(|| 0).unwrap();
        assert!(p.pool_alloc2(|| 0).is_none());
        assert_eq!(p.stats().failed, 1);
        p.pool_free2(a);
        assert!(p.pool_alloc2(|| 0).is_some(), "a freed object can be handed out again");
    }
}
