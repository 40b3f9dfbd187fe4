//! Events: the 32 event types, a bounded history, per-type statistics and subscriptions.
//!
//! The store is generic over the payload `D` and the subscriber `C`, so the engine is tested
//! with plain values while the binding keeps Python objects. Publishing returns the
//! subscribers to call and the event pushed out of the history, so the caller can call and
//! drop them after it has released any lock around the store.

use crate::engine::enums::ValueEnum;
use crate::value_enum;
use chrono::NaiveDateTime;
use std::collections::VecDeque;

value_enum! {
    pub enum EventType {
        FAULT_DETECTED = "fault_detected",
        FAULT_RESOLVED = "fault_resolved",
        CRITICAL_FAULT = "critical_fault",
        PREDICTION_MADE = "prediction_made",
        FAULT_CLASSIFIED = "fault_classified",
        CLASSIFICATION_FAILED = "classification_failed",
        REPAIR_STARTED = "repair_started",
        REPAIR_COMPLETED = "repair_completed",
        REPAIR_FAILED = "repair_failed",
        REPAIR_VERIFIED = "repair_verified",
        HEALING_CYCLE_STARTED = "healing_cycle_started",
        HEALING_CYCLE_COMPLETED = "healing_cycle_completed",
        HEALING_CYCLE_FAILED = "healing_cycle_failed",
        ROLLBACK_PERFORMED = "rollback_performed",
        HEALTH_COMPUTED = "health_computed",
        HEALTH_DEGRADED = "health_degraded",
        HEALTH_IMPROVED = "health_improved",
        HEALTH_CRITICAL = "health_critical",
        SNAPSHOT_CREATED = "snapshot_created",
        SNAPSHOT_RESTORED = "snapshot_restored",
        SNAPSHOT_DELETED = "snapshot_deleted",
        AUTOREPAIR_STARTED = "autorepair_started",
        AUTOREPAIR_STOPPED = "autorepair_stopped",
        AUTOREPAIR_MODE_CHANGED = "autorepair_mode_changed",
        AUTOREPAIR_THROTTLED = "autorepair_throttled",
        AUTOREPAIR_BLOCKED = "autorepair_blocked",
        FORCED_HEALING_CYCLE = "forced_healing_cycle",
        CONTROLLER_INITIALIZED = "controller_initialized",
        CONTROLLER_STARTED = "controller_started",
        CONTROLLER_STOPPED = "controller_stopped",
        AUTOREPAIR_CONFIG_UPDATED = "autorepair_config_updated",
        AUTOREPAIR_ERROR = "autorepair_error",
    }
}

const TYPE_COUNT: usize = 32;

/// The reference keeps the last 100 events.
pub const DEFAULT_MAX_HISTORY: usize = 100;

/// How many entries `top_events` lists.
pub const TOP_EVENTS: usize = 10;

#[derive(Debug, Clone, PartialEq)]
pub struct Event<D> {
    pub event_type: EventType,
    pub data: D,
    pub timestamp: NaiveDateTime,
}

/// What a publish leaves for the caller to do once the store is unlocked.
pub struct Published<D, C> {
    pub subscribers: Vec<C>,
    pub evicted: Option<Event<D>>,
    pub timestamp: NaiveDateTime,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EventStats {
    pub total_events_published: u64,
    /// Counts per type, in the order each type was first published.
    pub events_by_type: Vec<(EventType, u64)>,
    pub subscriptions_active: usize,
    pub history_size: usize,
    /// The most published types, highest count first; ties keep first-seen order.
    pub top_events: Vec<(EventType, u64)>,
    pub subscriber_errors: u64,
    pub bus_errors: u64,
}

pub struct EventStore<D, C> {
    history: VecDeque<Event<D>>,
    max_history: usize,
    subscriptions: Vec<Vec<C>>,
    total_published: u64,
    by_type: [u64; TYPE_COUNT],
    first_seen: Vec<EventType>,
    subscriptions_active: usize,
    subscriber_errors: u64,
    bus_errors: u64,
}

impl<D, C: Clone> Default for EventStore<D, C> {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_HISTORY)
    }
}

impl<D, C: Clone> EventStore<D, C> {
    pub fn new(max_history: usize) -> Self {
        EventStore {
            history: VecDeque::with_capacity(max_history.min(1024)),
            max_history,
            subscriptions: (0..TYPE_COUNT).map(|_| Vec::new()).collect(),
            total_published: 0,
            by_type: [0; TYPE_COUNT],
            first_seen: Vec::new(),
            subscriptions_active: 0,
            subscriber_errors: 0,
            bus_errors: 0,
        }
    }

    /// Records an event and returns the subscribers of its type, in registration order.
    pub fn publish(
        &mut self,
        event_type: EventType,
        data: D,
        timestamp: NaiveDateTime,
    ) -> Published<D, C> {
        let i = event_type.index();
        if self.by_type[i] == 0 {
            self.first_seen.push(event_type);
        }
        self.by_type[i] += 1;
        self.total_published += 1;
        self.history.push_back(Event {
            event_type,
            data,
            timestamp,
        });
        let evicted = if self.history.len() > self.max_history {
            self.history.pop_front()
        } else {
            None
        };
        Published {
            subscribers: self.subscriptions[i].clone(),
            evicted,
            timestamp,
        }
    }

    pub fn subscribe(&mut self, event_type: EventType, callback: C) {
        self.subscriptions[event_type.index()].push(callback);
        self.subscriptions_active += 1;
    }

    /// The current subscribers of a type (to search them without holding a lock).
    pub fn subscribers(&self, event_type: EventType) -> Vec<C> {
        self.subscriptions[event_type.index()].clone()
    }

    /// Removes the subscriber at `index` if `still_there` confirms it is the one the caller
    /// found (another thread may have changed the list meanwhile).
    pub fn remove_subscriber_at(
        &mut self,
        event_type: EventType,
        index: usize,
        still_there: impl Fn(&C) -> bool,
    ) -> Option<C> {
        let list = &mut self.subscriptions[event_type.index()];
        if index < list.len() && still_there(&list[index]) {
            self.subscriptions_active -= 1;
            Some(list.remove(index))
        } else {
            None
        }
    }

    /// The newest `limit` events, oldest first. `limit` 0 gives none (the reference's slice
    /// quirk gave the whole history).
    pub fn history(&self, limit: usize) -> impl Iterator<Item = &Event<D>> {
        let skip = self.history.len().saturating_sub(limit);
        self.history.iter().skip(skip)
    }

    /// The newest `limit` events of one type, oldest first.
    pub fn history_of(&self, event_type: EventType, limit: usize) -> Vec<&Event<D>> {
        let mut newest: Vec<&Event<D>> = self
            .history
            .iter()
            .rev()
            .filter(|e| e.event_type == event_type)
            .take(limit)
            .collect();
        newest.reverse();
        newest
    }

    /// Empties the history; the statistics stay.
    pub fn clear_history(&mut self) -> VecDeque<Event<D>> {
        std::mem::take(&mut self.history)
    }

    pub fn record_subscriber_error(&mut self) {
        self.subscriber_errors += 1;
    }

    pub fn record_bus_error(&mut self) {
        self.bus_errors += 1;
    }

    pub fn stats(&self) -> EventStats {
        let events_by_type: Vec<(EventType, u64)> = self
            .first_seen
            .iter()
            .map(|t| (*t, self.by_type[t.index()]))
            .collect();
        let mut top = events_by_type.clone();
        // A stable sort keeps first-seen order among equal counts, as the reference does.
        top.sort_by_key(|e| std::cmp::Reverse(e.1));
        top.truncate(TOP_EVENTS);
        EventStats {
            total_events_published: self.total_published,
            events_by_type,
            subscriptions_active: self.subscriptions_active,
            history_size: self.history.len(),
            top_events: top,
            subscriber_errors: self.subscriber_errors,
            bus_errors: self.bus_errors,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::clock::now;

    type Store = EventStore<u32, &'static str>;

    #[test]
    fn history_is_bounded_and_returns_the_evicted_event() {
        let mut store = Store::new(3);
        for i in 0..3 {
            assert!(store
                .publish(EventType::FAULT_DETECTED, i, now())
                .evicted
                .is_none());
        }
        let out = store.publish(EventType::FAULT_DETECTED, 3, now());
        assert_eq!(out.evicted.map(|e| e.data), Some(0));
        let kept: Vec<u32> = store.history(10).map(|e| e.data).collect();
        assert_eq!(kept, vec![1, 2, 3]);
        assert_eq!(store.stats().total_events_published, 4);
    }

    #[test]
    fn history_limit_takes_the_newest_and_zero_takes_none() {
        let mut store = Store::new(100);
        for i in 0..5 {
            store.publish(EventType::REPAIR_STARTED, i, now());
        }
        assert_eq!(
            store.history(2).map(|e| e.data).collect::<Vec<_>>(),
            vec![3, 4]
        );
        assert_eq!(store.history(0).count(), 0);
    }

    #[test]
    fn subscribers_come_back_in_order_and_unsubscribe_checks_identity() {
        let mut store = Store::new(10);
        store.subscribe(EventType::FAULT_DETECTED, "a");
        store.subscribe(EventType::FAULT_DETECTED, "b");
        store.subscribe(EventType::FAULT_RESOLVED, "c");
        let out = store.publish(EventType::FAULT_DETECTED, 1, now());
        assert_eq!(out.subscribers, vec!["a", "b"]);
        assert!(store
            .remove_subscriber_at(EventType::FAULT_DETECTED, 0, |c| *c == "b")
            .is_none());
        assert_eq!(
            store.remove_subscriber_at(EventType::FAULT_DETECTED, 0, |c| *c == "a"),
            Some("a")
        );
        assert_eq!(store.stats().subscriptions_active, 2);
        assert_eq!(store.subscribers(EventType::FAULT_DETECTED), vec!["b"]);
    }

    #[test]
    fn stats_keep_first_seen_order_and_rank_top_events_stably() {
        let mut store = Store::new(100);
        store.publish(EventType::HEALTH_COMPUTED, 0, now());
        store.publish(EventType::FAULT_DETECTED, 0, now());
        store.publish(EventType::FAULT_DETECTED, 0, now());
        store.publish(EventType::REPAIR_STARTED, 0, now());
        let stats = store.stats();
        assert_eq!(
            stats.events_by_type,
            vec![
                (EventType::HEALTH_COMPUTED, 1),
                (EventType::FAULT_DETECTED, 2),
                (EventType::REPAIR_STARTED, 1)
            ]
        );
        assert_eq!(
            stats.top_events,
            vec![
                (EventType::FAULT_DETECTED, 2),
                (EventType::HEALTH_COMPUTED, 1),
                (EventType::REPAIR_STARTED, 1)
            ]
        );
    }

    #[test]
    fn history_of_one_type_filters_then_limits() {
        let mut store = Store::new(100);
        for i in 0..6 {
            let t = if i % 2 == 0 {
                EventType::FAULT_DETECTED
            } else {
                EventType::FAULT_RESOLVED
            };
            store.publish(t, i, now());
        }
        let got: Vec<u32> = store
            .history_of(EventType::FAULT_DETECTED, 2)
            .iter()
            .map(|e| e.data)
            .collect();
        assert_eq!(got, vec![2, 4]);
        let cleared = store.clear_history();
        assert_eq!(cleared.len(), 6);
        assert_eq!(store.stats().history_size, 0);
        assert_eq!(store.stats().total_events_published, 6);
    }

    #[test]
    fn every_event_type_round_trips_its_value() {
        assert_eq!(EventType::ALL.len(), 32);
        for t in EventType::ALL {
            assert_eq!(EventType::from_value(t.value()), Some(*t));
        }
    }
}
