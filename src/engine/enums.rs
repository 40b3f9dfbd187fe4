//! The engine's enums. Python sees them as real `enum.Enum` classes (defined in the package's
//! `enums.py`); the engine knows each member's Python name and value, so `str()` forms such
//! as `"FaultSeverity.HIGH"` and the values can be produced without Python.

/// Implemented by every enum declared with `value_enum!`.
pub trait ValueEnum: Copy + Eq + 'static {
    /// The Python class name.
    const CLASS: &'static str;
    /// Members in declaration order (the order of the Python class).
    const ALL: &'static [Self];
    fn value(self) -> &'static str;
    fn name(self) -> &'static str;
    fn index(self) -> usize;
    fn from_value(value: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|m| m.value() == value)
    }
    /// Python's `str(member)`, e.g. `"FaultSeverity.HIGH"`.
    fn py_str(self) -> String {
        format!("{}.{}", Self::CLASS, self.name())
    }
    /// The accepted values, for error messages.
    fn values_list() -> String {
        Self::ALL
            .iter()
            .map(|m| m.value())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Declares an enum whose variants carry the Python member name and value.
#[macro_export]
macro_rules! value_enum {
    ($(#[$meta:meta])* pub enum $name:ident { $($variant:ident = $value:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[allow(non_camel_case_types, clippy::upper_case_acronyms)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),+ }

        impl $crate::engine::enums::ValueEnum for $name {
            const CLASS: &'static str = stringify!($name);
            const ALL: &'static [Self] = &[$($name::$variant),+];
            fn value(self) -> &'static str {
                match self { $($name::$variant => $value),+ }
            }
            fn name(self) -> &'static str {
                match self { $($name::$variant => stringify!($variant)),+ }
            }
            fn index(self) -> usize {
                self as usize
            }
        }
    };
}
