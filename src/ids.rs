//! Identifiers and the table that maps them to objects.
//!
//! HAProxy links its objects with pointers (`fdtab[fd].owner`, `t->context`, `s->listener`).
//! haflow uses small typed ids instead: a `SessionId` cannot be passed where a `TaskId` is
//! expected, and an id stays valid to print (in spans, `show sess`, the TUI) after the
//! object is gone. `Table` holds the live objects by id and reuses freed slots, the way
//! HAProxy's pools reuse freed memory.

use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub u32);

        impl $name {
            /// The slot index this id designates.
            pub fn idx(self) -> usize {
                self.0 as usize
            }
        }

        impl From<usize> for $name {
            fn from(i: usize) -> Self {
                $name(i as u32)
            }
        }
    };
}

id_type!(
    /// A slot in the session table (not the session's `uniq_id`, which is never reused).
    SessionId
);
id_type!(
    /// A task in the scheduler's table.
    TaskId
);
id_type!(
    /// A listener (one `bind` address), in configuration order.
    ListenerId
);
id_type!(
    /// A proxy (`frontend`, `backend` or `listen` section), in configuration order.
    ProxyId
);

/// A file descriptor number, the index of `fdtab[]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fd(pub i32);

impl fmt::Display for Fd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A server: the backend it belongs to and its index among that backend's servers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ServerId {
    /// The backend holding the server.
    pub px: ProxyId,
    /// Position in the backend's server list (configuration order).
    pub idx: u32,
}

/// Live objects by id, with freed slots reused (lowest first is not guaranteed).
#[derive(Debug)]
pub struct Table<T> {
    slots: Vec<Option<Box<T>>>,
    free_slots: Vec<u32>,
    len: usize,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Table { slots: Vec::new(), free_slots: Vec::new(), len: 0 }
    }
}

impl<T> Table<T> {
    /// Stores `obj` in a free slot and returns the slot's index.
    pub fn insert(&mut self, obj: Box<T>) -> usize {
        self.len += 1;
        match self.free_slots.pop() {
            Some(i) => {
                self.slots[i as usize] = Some(obj);
                i as usize
            }
            None => {
                self.slots.push(Some(obj));
                self.slots.len() - 1
            }
        }
    }

    /// Removes the object from its slot and frees the slot.
    pub fn remove(&mut self, i: usize) -> Option<Box<T>> {
        let obj = self.slots.get_mut(i)?.take()?;
        self.free_slots.push(i as u32);
        self.len -= 1;
        Some(obj)
    }

    /// Takes the object out while keeping its slot reserved (to work on it while the rest
    /// of the process state is borrowed); give it back with `put_back`.
    pub fn take(&mut self, i: usize) -> Option<Box<T>> {
        self.slots.get_mut(i)?.take()
    }

    /// Returns an object taken with `take` to its slot.
    pub fn put_back(&mut self, i: usize, obj: Box<T>) {
        debug_assert!(self.slots[i].is_none(), "put_back into an occupied slot {i}");
        self.slots[i] = Some(obj);
    }

    /// Marks a slot taken with `take` as free (the object was destroyed meanwhile).
    pub fn release_taken(&mut self, i: usize) {
        debug_assert!(self.slots[i].is_none(), "release_taken on an occupied slot {i}");
        self.free_slots.push(i as u32);
        self.len -= 1;
    }

    /// The object in slot `i`, if present (and not taken out).
    pub fn get(&self, i: usize) -> Option<&T> {
        self.slots.get(i)?.as_deref()
    }

    /// The object in slot `i`, mutably.
    pub fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        self.slots.get_mut(i)?.as_deref_mut()
    }

    /// Number of live objects (taken ones included).
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no object is live.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Live objects with their slot index (taken ones are skipped).
    pub fn iter(&self) -> impl Iterator<Item = (usize, &T)> {
        self.slots.iter().enumerate().filter_map(|(i, s)| s.as_deref().map(|o| (i, o)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_reused_after_remove() {
        let mut t: Table<&str> = Table::default();
        let a = t.insert(Box::new("a"));
        let b = t.insert(Box::new("b"));
        assert_eq!(t.remove(a).as_deref(), Some(&"a"));
        let c = t.insert(Box::new("c"));
        assert_eq!(c, a, "the freed slot is reused");
        assert_eq!(t.len(), 2);
        assert_eq!(t.get(b), Some(&"b"));
    }

    #[test]
    fn take_keeps_the_slot_reserved() {
        let mut t: Table<u8> = Table::default();
        let a = t.insert(Box::new(1));
        let obj = t.take(a).unwrap();
        let b = t.insert(Box::new(2));
        assert_ne!(a, b, "a taken slot is not handed out");
        t.put_back(a, obj);
        assert_eq!(t.get(a), Some(&1));
    }
}
