//! Registered callables: metric providers, repair actions, state providers and the
//! reference's repair callbacks. Generic over the handle `H` (the binding's Python object), so
//! the rules (names, caps, replacement) are tested without Python. Handles that leave the
//! registry are returned, so the caller can drop them once it has released its lock.

use super::{FaultKind, RepairType};
use crate::engine::detection_engine::Layer;
use crate::engine::enums::ValueEnum;
use crate::engine::error::{EngineError, EngineResult};
use chrono::NaiveDateTime;

/// Metric providers at most (all layers together).
pub const MAX_PROVIDERS: usize = 256;
/// Distinct custom layer names at most.
pub const MAX_CUSTOM_LAYERS: usize = 32;
/// Repair actions (verbs) at most.
pub const MAX_ACTIONS: usize = 128;
/// State providers at most (the snapshot manager's own limit).
pub const MAX_STATE_PROVIDERS: usize = 64;
/// Repair callbacks per repair type at most.
pub const MAX_CALLBACKS_PER_TYPE: usize = 64;
/// Longest layer name, verb or state provider name.
pub const MAX_NAME_LEN: usize = 64;
/// Longest label kept for a provider.
pub const MAX_LABEL_LEN: usize = 200;
/// Longest timeout accepted, in seconds.
pub const MAX_TIMEOUT: f64 = 3600.0;
/// Names the snapshot manager's captured state uses itself.
const RESERVED_STATE_NAMES: [&str; 2] = ["timestamp", "providers"];

/// The outcome of one call, for the statistics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallStats {
    pub calls: u64,
    pub errors: u64,
    pub timeouts: u64,
    pub last_error: Option<String>,
    pub last_error_at: Option<NaiveDateTime>,
}

impl CallStats {
    pub fn record(&mut self, failure: Option<(FaultKind, &str)>, now: NaiveDateTime) {
        self.calls += 1;
        if let Some((kind, message)) = failure {
            self.errors += 1;
            if kind == FaultKind::TimedOut {
                self.timeouts += 1;
            }
            self.last_error = Some(message.to_owned());
            self.last_error_at = Some(now);
        }
    }
}

#[derive(Debug, Clone)]
pub struct Provider<H> {
    pub id: u64,
    pub layer: String,
    pub label: String,
    pub handle: H,
    pub timeout: f64,
    pub stats: CallStats,
}

#[derive(Debug, Clone)]
pub struct Action<H> {
    pub id: u64,
    pub verb: String,
    pub handle: H,
    pub timeout: f64,
    pub stats: CallStats,
}

#[derive(Debug, Clone)]
pub struct StateProvider<H> {
    pub id: u64,
    pub name: String,
    pub capture: H,
    pub restore: H,
    pub timeout: f64,
    pub stats: CallStats,
}

/// Checks a layer name, verb or state provider name: a letter or `_` first, then letters,
/// digits, `_`, `.` or `-`, at most [`MAX_NAME_LEN`] characters.
pub fn check_name(what: &str, name: &str) -> EngineResult<()> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !first_ok || !rest_ok || name.len() > MAX_NAME_LEN {
        let shown: String = name.chars().take(80).collect();
        return Err(EngineError::invalid(format!(
            "{what} must start with a letter or '_' and hold only letters, digits, '_', '.' or '-' \
             (at most {MAX_NAME_LEN} characters), got {shown:?}"
        )));
    }
    Ok(())
}

/// Checks a timeout in seconds: finite, above 0, at most [`MAX_TIMEOUT`].
pub fn check_timeout(timeout: f64) -> EngineResult<f64> {
    if !timeout.is_finite() || timeout <= 0.0 || timeout > MAX_TIMEOUT {
        return Err(EngineError::invalid(format!(
            "timeout must be a number of seconds above 0 and at most {MAX_TIMEOUT}, got {timeout}"
        )));
    }
    Ok(timeout)
}

fn label(text: &str) -> String {
    text.chars().take(MAX_LABEL_LEN).collect()
}

#[derive(Debug, Clone)]
pub struct Registry<H> {
    providers: Vec<Provider<H>>,
    actions: Vec<Action<H>>,
    states: Vec<StateProvider<H>>,
    callbacks: [Vec<H>; 4],
    next_id: u64,
}

impl<H> Default for Registry<H> {
    fn default() -> Self {
        Registry {
            providers: Vec::new(),
            actions: Vec::new(),
            states: Vec::new(),
            callbacks: [Vec::new(), Vec::new(), Vec::new(), Vec::new()],
            next_id: 1,
        }
    }
}

impl<H: Clone> Registry<H> {
    fn id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    // ---- metric providers

    pub fn providers(&self) -> &[Provider<H>] {
        &self.providers
    }

    /// Providers of one layer, in registration order: (id, handle, timeout).
    pub fn providers_for(&self, layer: &str) -> Vec<(u64, H, f64)> {
        self.providers
            .iter()
            .filter(|p| p.layer == layer)
            .map(|p| (p.id, p.handle.clone(), p.timeout))
            .collect()
    }

    /// Custom (non-FAZA) layer names in the order they were first registered.
    pub fn custom_layers(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for p in &self.providers {
            if Layer::ALL.iter().all(|l| l.name() != p.layer) && !out.contains(&p.layer) {
                out.push(p.layer.clone());
            }
        }
        out
    }

    /// Adds a provider, or updates the one with id `same` (the caller found the same callable
    /// already registered for this layer). Returns the id and any handle it replaced.
    pub fn add_provider(
        &mut self,
        layer: &str,
        label_text: &str,
        handle: H,
        timeout: f64,
        same: Option<u64>,
    ) -> EngineResult<(u64, Option<H>)> {
        check_name("layer", layer)?;
        let timeout = check_timeout(timeout)?;
        if let Some(p) = same.and_then(|id| {
            self.providers
                .iter_mut()
                .find(|p| p.id == id && p.layer == layer)
        }) {
            p.timeout = timeout;
            p.label = label(label_text);
            let old = std::mem::replace(&mut p.handle, handle);
            return Ok((p.id, Some(old)));
        }
        if self.providers.len() >= MAX_PROVIDERS {
            return Err(EngineError::invalid(format!(
                "at most {MAX_PROVIDERS} metric providers can be registered"
            )));
        }
        let custom = self.custom_layers();
        let is_standard = Layer::ALL.iter().any(|l| l.name() == layer);
        if !is_standard && !custom.iter().any(|c| c == layer) && custom.len() >= MAX_CUSTOM_LAYERS {
            return Err(EngineError::invalid(format!(
                "at most {MAX_CUSTOM_LAYERS} custom layers can be registered"
            )));
        }
        let id = self.id();
        self.providers.push(Provider {
            id,
            layer: layer.to_owned(),
            label: label(label_text),
            handle,
            timeout,
            stats: CallStats::default(),
        });
        Ok((id, None))
    }

    pub fn remove_provider(&mut self, id: u64) -> Option<Provider<H>> {
        let pos = self.providers.iter().position(|p| p.id == id)?;
        Some(self.providers.remove(pos))
    }

    pub fn record_provider(
        &mut self,
        id: u64,
        failure: Option<(FaultKind, &str)>,
        now: NaiveDateTime,
    ) {
        if let Some(p) = self.providers.iter_mut().find(|p| p.id == id) {
            p.stats.record(failure, now);
        }
    }

    // ---- repair actions

    pub fn actions(&self) -> &[Action<H>] {
        &self.actions
    }

    pub fn action(&self, verb: &str) -> Option<(u64, H, f64)> {
        self.actions
            .iter()
            .find(|a| a.verb == verb)
            .map(|a| (a.id, a.handle.clone(), a.timeout))
    }

    /// Registers the action for `verb`, replacing (and returning) an earlier one.
    pub fn set_action(&mut self, verb: &str, handle: H, timeout: f64) -> EngineResult<Option<H>> {
        check_name("verb", verb)?;
        let timeout = check_timeout(timeout)?;
        if let Some(a) = self.actions.iter_mut().find(|a| a.verb == verb) {
            a.timeout = timeout;
            a.stats = CallStats::default();
            return Ok(Some(std::mem::replace(&mut a.handle, handle)));
        }
        if self.actions.len() >= MAX_ACTIONS {
            return Err(EngineError::invalid(format!(
                "at most {MAX_ACTIONS} repair actions can be registered"
            )));
        }
        let id = self.id();
        self.actions.push(Action {
            id,
            verb: verb.to_owned(),
            handle,
            timeout,
            stats: CallStats::default(),
        });
        Ok(None)
    }

    pub fn remove_action(&mut self, verb: &str) -> Option<H> {
        let pos = self.actions.iter().position(|a| a.verb == verb)?;
        Some(self.actions.remove(pos).handle)
    }

    pub fn record_action(
        &mut self,
        id: u64,
        failure: Option<(FaultKind, &str)>,
        now: NaiveDateTime,
    ) {
        if let Some(a) = self.actions.iter_mut().find(|a| a.id == id) {
            a.stats.record(failure, now);
        }
    }

    // ---- state providers

    pub fn states(&self) -> &[StateProvider<H>] {
        &self.states
    }

    /// Registers `name`, replacing (and returning) an earlier pair of that name.
    pub fn set_state(
        &mut self,
        name: &str,
        capture: H,
        restore: H,
        timeout: f64,
    ) -> EngineResult<Option<(H, H)>> {
        check_name("state provider name", name)?;
        if RESERVED_STATE_NAMES.contains(&name) {
            return Err(EngineError::invalid(format!(
                "{name:?} is used by the snapshot's captured state itself; pick another name"
            )));
        }
        let timeout = check_timeout(timeout)?;
        if let Some(s) = self.states.iter_mut().find(|s| s.name == name) {
            s.timeout = timeout;
            s.stats = CallStats::default();
            let old_capture = std::mem::replace(&mut s.capture, capture);
            let old_restore = std::mem::replace(&mut s.restore, restore);
            return Ok(Some((old_capture, old_restore)));
        }
        if self.states.len() >= MAX_STATE_PROVIDERS {
            return Err(EngineError::invalid(format!(
                "at most {MAX_STATE_PROVIDERS} state providers can be registered"
            )));
        }
        let id = self.id();
        self.states.push(StateProvider {
            id,
            name: name.to_owned(),
            capture,
            restore,
            timeout,
            stats: CallStats::default(),
        });
        Ok(None)
    }

    pub fn remove_state(&mut self, name: &str) -> Option<(H, H)> {
        let pos = self.states.iter().position(|s| s.name == name)?;
        let s = self.states.remove(pos);
        Some((s.capture, s.restore))
    }

    pub fn record_state(
        &mut self,
        id: u64,
        failure: Option<(FaultKind, &str)>,
        now: NaiveDateTime,
    ) {
        if let Some(s) = self.states.iter_mut().find(|s| s.id == id) {
            s.stats.record(failure, now);
        }
    }

    // ---- repair callbacks (the reference's API)

    pub fn add_callback(&mut self, repair_type: RepairType, handle: H) -> EngineResult<()> {
        let list = &mut self.callbacks[repair_type.index()];
        if list.len() >= MAX_CALLBACKS_PER_TYPE {
            return Err(EngineError::invalid(format!(
                "at most {MAX_CALLBACKS_PER_TYPE} callbacks can be registered for {}",
                repair_type.value()
            )));
        }
        list.push(handle);
        Ok(())
    }

    pub fn callbacks(&self, repair_type: RepairType) -> Vec<H> {
        self.callbacks[repair_type.index()].clone()
    }

    /// Every handle held, for garbage-collector traversal.
    pub fn handles(&self) -> impl Iterator<Item = &H> {
        self.providers
            .iter()
            .map(|p| &p.handle)
            .chain(self.actions.iter().map(|a| &a.handle))
            .chain(self.states.iter().flat_map(|s| [&s.capture, &s.restore]))
            .chain(self.callbacks.iter().flatten())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::clock::now;

    #[test]
    fn names_and_timeouts_are_checked() {
        assert!(check_name("layer", "faza25").is_ok());
        assert!(check_name("layer", "my_system.v2-x").is_ok());
        for bad in ["", "1abc", "a b", "x/y", &"a".repeat(65)] {
            assert!(check_name("layer", bad).is_err(), "{bad:?}");
        }
        assert!(check_timeout(0.0).is_err());
        assert!(check_timeout(f64::NAN).is_err());
        assert!(check_timeout(f64::INFINITY).is_err());
        assert!(check_timeout(3601.0).is_err());
        assert_eq!(check_timeout(2.5).unwrap(), 2.5);
    }

    #[test]
    fn providers_are_kept_per_layer_and_updated_in_place() {
        let mut r: Registry<&str> = Registry::default();
        let (a, _) = r.add_provider("faza25", "p1", "h1", 1.0, None).unwrap();
        let (b, _) = r.add_provider("custom", "p2", "h2", 1.0, None).unwrap();
        r.add_provider("faza25", "p3", "h3", 1.0, None).unwrap();
        assert_eq!(
            r.providers_for("faza25")
                .iter()
                .map(|p| p.1)
                .collect::<Vec<_>>(),
            vec!["h1", "h3"]
        );
        assert_eq!(r.custom_layers(), vec!["custom"]);
        let (same, old) = r.add_provider("faza25", "p1", "h1b", 2.0, Some(a)).unwrap();
        assert_eq!((same, old), (a, Some("h1")));
        assert_eq!(r.providers().len(), 3);
        assert_eq!(r.providers_for("faza25")[0].2, 2.0);
        r.record_provider(b, Some((FaultKind::TimedOut, "slow")), now());
        r.record_provider(b, None, now());
        let p = r.remove_provider(b).unwrap();
        assert_eq!((p.stats.calls, p.stats.errors, p.stats.timeouts), (2, 1, 1));
        assert!(r.custom_layers().is_empty());
    }

    #[test]
    fn caps_hold() {
        let mut r: Registry<u32> = Registry::default();
        for i in 0..MAX_CUSTOM_LAYERS {
            r.add_provider(&format!("layer{i}"), "p", 0, 1.0, None)
                .unwrap();
        }
        assert!(r.add_provider("one_more", "p", 0, 1.0, None).is_err());
        assert!(r.add_provider("faza29", "p", 0, 1.0, None).is_ok());
        for _ in 0..MAX_CALLBACKS_PER_TYPE {
            r.add_callback(RepairType::GRAPH_REPAIR, 1).unwrap();
        }
        assert!(r.add_callback(RepairType::GRAPH_REPAIR, 1).is_err());
        assert!(r.add_callback(RepairType::AGENT_REPAIR, 1).is_ok());
    }

    #[test]
    fn actions_and_states_replace_by_name() {
        let mut r: Registry<&str> = Registry::default();
        assert_eq!(r.set_action("break_cycle", "a1", 1.0).unwrap(), None);
        assert_eq!(r.set_action("break_cycle", "a2", 1.0).unwrap(), Some("a1"));
        assert_eq!(r.action("break_cycle").map(|a| a.1), Some("a2"));
        assert_eq!(r.remove_action("break_cycle"), Some("a2"));
        assert!(r.action("break_cycle").is_none());
        assert!(r.set_state("timestamp", "c", "r", 1.0).is_err());
        assert_eq!(r.set_state("graph", "c", "r", 1.0).unwrap(), None);
        assert_eq!(
            r.set_state("graph", "c2", "r2", 1.0).unwrap(),
            Some(("c", "r"))
        );
        assert_eq!(r.handles().count(), 2);
        assert_eq!(r.remove_state("graph"), Some(("c2", "r2")));
    }
}
