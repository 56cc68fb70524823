//! Closed vocabularies of the database as enums, with each value's stored
//! spelling. The GraphQL enums mirror these (same variants, in
//! `graphql::common::vocabulary!`); the store and the write side take these
//! and spell them only where SQL is built.

use std::fmt;

/// A closed vocabulary: each value's stored spelling, both ways.
pub trait Vocabulary: Sized + Copy + PartialEq + fmt::Debug + Send + Sync + 'static {
    /// The vocabulary's name, for error messages.
    const NAME: &'static str;
    /// Every value, in declaration order.
    const ALL: &'static [Self];

    /// The value as stored.
    fn as_db(self) -> &'static str;

    /// The value stored as `value`, if it is one.
    fn from_db(value: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|v| v.as_db() == value)
    }

    /// The value as GraphQL spells it (`IN_PROGRESS`), for messages.
    fn api_name(self) -> String {
        self.as_db().to_uppercase()
    }
}

/// Defines a vocabulary enum with its stored spellings.
macro_rules! vocabulary {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $db:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Copy, Clone, Debug, Eq, PartialEq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $crate::domain::Vocabulary for $name {
            const NAME: &'static str = stringify!($name);
            const ALL: &'static [Self] = &[$($name::$variant),+];

            fn as_db(self) -> &'static str {
                match self { $($name::$variant => $db),+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad($crate::domain::Vocabulary::as_db(*self))
            }
        }
    };
}
pub(crate) use vocabulary;
