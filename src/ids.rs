//! Identifiers and the table that maps them to objects.
//!
//! HAProxy links its objects with pointers (`fdtab[fd].owner`, `t->context`, `s->listener`).
//! haflow uses small typed ids instead: a `SessionId` cannot be passed where a `TaskId` is
//! expected, and an id stays valid to print (in spans, `show sess`, the TUI) after the
//! object is gone. `Table` holds the live objects and reuses freed slots, the way HAProxy's
//! pools reuse freed memory; unlike a pointer into a pool, an id of a `Table` carries the
//! slot's generation, so an id kept after its object was freed names nothing, even once
//! the slot holds a new object.

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

/// Where an object lives in a `Table`: the slot, and the slot's generation when the object
/// was stored there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Index {
    slot: u32,
    generation: u32,
}

impl Index {
    /// The slot (reused by later objects: not an identity on its own).
    pub fn slot(self) -> u32 {
        self.slot
    }
}

macro_rules! table_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub Index);

        impl $name {
            /// Where the object is in its table.
            pub fn idx(self) -> Index {
                self.0
            }

            /// The slot number, as spans print the id.
            pub fn slot(self) -> u32 {
                self.0.slot
            }
        }

        impl From<Index> for $name {
            fn from(i: Index) -> Self {
                $name(i)
            }
        }
    };
}

table_id!(
    /// A session in the session table (not the session's `uniq_id`, which is never reused).
    SessionId
);
table_id!(
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
id_type!(
    /// A `cache` section, in configuration order (`Haproxy::caches`).
    CacheId
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

/// One slot of a `Table`: its object, if any, and its generation (bumped each time the
/// slot is freed).
#[derive(Debug)]
struct Slot<T> {
    generation: u32,
    obj: Option<Box<T>>,
}

/// Live objects by `Index`, with freed slots reused (lowest first is not guaranteed). A
/// slot's generation wraps after 2^32 reuses, far beyond what an id is kept for.
#[derive(Debug)]
pub struct Table<T> {
    slots: Vec<Slot<T>>,
    free_slots: Vec<u32>,
    len: usize,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Table { slots: Vec::new(), free_slots: Vec::new(), len: 0 }
    }
}

impl<T> Table<T> {
    /// Stores `obj` in a free slot and returns where.
    pub fn insert(&mut self, obj: Box<T>) -> Index {
        self.len += 1;
        match self.free_slots.pop() {
            Some(i) => {
                let s = &mut self.slots[i as usize];
                s.obj = Some(obj);
                Index { slot: i, generation: s.generation }
            }
            None => {
                self.slots.push(Slot { generation: 0, obj: Some(obj) });
                Index { slot: (self.slots.len() - 1) as u32, generation: 0 }
            }
        }
    }

    /// The slot `i` names, if it still holds `i`'s generation.
    fn slot_mut(&mut self, i: Index) -> Option<&mut Slot<T>> {
        self.slots.get_mut(i.slot as usize).filter(|s| s.generation == i.generation)
    }

    /// Frees slot `i` for a later object, of the next generation.
    fn free(&mut self, i: Index) {
        let s = &mut self.slots[i.slot as usize];
        s.generation = s.generation.wrapping_add(1);
        self.free_slots.push(i.slot);
        self.len -= 1;
    }

    /// Removes the object and frees its slot.
    pub fn remove(&mut self, i: Index) -> Option<Box<T>> {
        let obj = self.slot_mut(i)?.obj.take()?;
        self.free(i);
        Some(obj)
    }

    /// Takes the object out while keeping its slot reserved (to work on it while the rest
    /// of the process state is borrowed); give it back with `put_back`.
    pub fn take(&mut self, i: Index) -> Option<Box<T>> {
        self.slot_mut(i)?.obj.take()
    }

    /// Returns an object taken with `take` to its slot.
    pub fn put_back(&mut self, i: Index, obj: Box<T>) {
        let s = &mut self.slots[i.slot as usize];
        debug_assert!(s.generation == i.generation && s.obj.is_none(), "put_back into slot {i:?} not taken");
        s.obj = Some(obj);
    }

    /// Marks a slot taken with `take` as free (the object was destroyed meanwhile).
    pub fn release_taken(&mut self, i: Index) {
        let s = &self.slots[i.slot as usize];
        debug_assert!(
            s.generation == i.generation && s.obj.is_none(),
            "release_taken of slot {i:?} not taken"
        );
        self.free(i);
    }

    /// The object at `i`, if it is still there (and not taken out).
    pub fn get(&self, i: Index) -> Option<&T> {
        self.slots.get(i.slot as usize).filter(|s| s.generation == i.generation)?.obj.as_deref()
    }

    /// The object at `i`, mutably.
    pub fn get_mut(&mut self, i: Index) -> Option<&mut T> {
        self.slot_mut(i)?.obj.as_deref_mut()
    }

    /// Number of live objects (taken ones included).
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no object is live.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Live objects with their index (taken ones are skipped).
    pub fn iter(&self) -> impl Iterator<Item = (Index, &T)> {
        self.slots.iter().enumerate().filter_map(|(i, s)| {
            s.obj.as_deref().map(|o| (Index { slot: i as u32, generation: s.generation }, o))
        })
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
        assert_eq!(c.slot(), a.slot(), "the freed slot is reused");
        assert_eq!(t.len(), 2);
        assert_eq!(t.get(b), Some(&"b"));
    }

    #[test]
    fn a_stale_id_names_nothing_once_its_slot_holds_another_object() {
        let mut t: Table<&str> = Table::default();
        let old = SessionId::from(t.insert(Box::new("freed")));
        t.remove(old.idx());
        let new = SessionId::from(t.insert(Box::new("new")));
        assert_eq!(new.idx().slot(), old.idx().slot());
        assert_ne!(new, old, "same slot, another generation");
        assert_eq!(t.get(old.idx()), None);
        assert_eq!(t.take(old.idx()), None, "a stale id cannot take the new object out");
        assert_eq!(t.remove(old.idx()), None, "nor free its slot");
        assert_eq!(t.get(new.idx()), Some(&"new"));
        assert_eq!(t.iter().map(|(i, _)| i).collect::<Vec<_>>(), vec![new.idx()]);
    }

    #[test]
    fn an_object_destroyed_while_taken_leaves_its_old_id_stale() {
        let mut t: Table<u8> = Table::default();
        let a = t.insert(Box::new(1));
        drop(t.take(a));
        t.release_taken(a);
        let b = t.insert(Box::new(2));
        assert_eq!((b.slot(), t.get(a), t.get(b)), (a.slot(), None, Some(&2)));
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
