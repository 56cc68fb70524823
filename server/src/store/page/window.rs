//! Page windows: Relay arguments checked against the page limits.

use std::hash::Hash;

use crate::error::{ApiError, ApiResult};

/// Page sizes: the size used when a client names none, and the most a
/// client may ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageLimits {
    pub default_size: u64,
    pub max_size: u64,
}

impl PageLimits {
    pub const DEFAULT_SIZE: u64 = 20;
    pub const MAX_SIZE: u64 = 100;
}

impl Default for PageLimits {
    fn default() -> Self {
        Self {
            default_size: Self::DEFAULT_SIZE,
            max_size: Self::MAX_SIZE,
        }
    }
}

/// Relay arguments as the client sent them.
#[derive(Clone, Debug, Default)]
pub struct PageArgs {
    pub first: Option<i32>,
    pub after: Option<String>,
    pub last: Option<i32>,
    pub before: Option<String>,
}

/// A validated page request. Cursors stay opaque strings until a query
/// decodes them against its tenant and ordering.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Window {
    Forward { limit: u64, after: Option<String> },
    Backward { limit: u64, before: Option<String> },
}

impl Window {
    pub fn new(args: PageArgs, limits: PageLimits) -> ApiResult<Self> {
        let size = |name: &str, value: i32| -> ApiResult<u64> {
            if value < 0 {
                return Err(bad_input(name, format!("`{name}` cannot be negative")));
            }
            let value = value as u64;
            if value > limits.max_size {
                return Err(bad_input(
                    name,
                    format!(
                        "`{name}` is {value}, above the page size limit of {}",
                        limits.max_size
                    ),
                ));
            }
            Ok(value)
        };
        match args {
            PageArgs {
                first: Some(_),
                last: Some(_),
                ..
            } => Err(bad_input(
                "last",
                "pass `first` (with `after`) or `last` (with `before`), not both",
            )),
            PageArgs {
                last: Some(last),
                after: None,
                before,
                ..
            } => Ok(Window::Backward {
                limit: size("last", last)?,
                before,
            }),
            PageArgs {
                last: None,
                before: Some(before),
                after: None,
                first: None,
            } => Ok(Window::Backward {
                limit: limits.default_size,
                before: Some(before),
            }),
            PageArgs {
                first,
                after,
                before: None,
                last: None,
            } => Ok(Window::Forward {
                limit: match first {
                    Some(first) => size("first", first)?,
                    None => limits.default_size,
                },
                after,
            }),
            _ => Err(bad_input(
                "before",
                "`after` pages forward and `before` pages backward: pass one of them",
            )),
        }
    }

    pub(super) fn limit(&self) -> u64 {
        match self {
            Window::Forward { limit, .. } | Window::Backward { limit, .. } => *limit,
        }
    }

    pub(super) fn cursor(&self) -> Option<&str> {
        match self {
            Window::Forward { after, .. } => after.as_deref(),
            Window::Backward { before, .. } => before.as_deref(),
        }
    }

    pub(super) fn is_forward(&self) -> bool {
        matches!(self, Window::Forward { .. })
    }
}

pub(super) fn bad_input(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::BadUserInput {
        message: message.into(),
        field: Some(field.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> PageLimits {
        PageLimits {
            default_size: 20,
            max_size: 100,
        }
    }

    fn args(
        first: Option<i32>,
        after: Option<&str>,
        last: Option<i32>,
        before: Option<&str>,
    ) -> PageArgs {
        PageArgs {
            first,
            after: after.map(str::to_owned),
            last,
            before: before.map(str::to_owned),
        }
    }

    #[test]
    fn windows_follow_relay_arguments() {
        assert_eq!(
            Window::new(args(None, None, None, None), limits()).unwrap(),
            Window::Forward {
                limit: 20,
                after: None
            }
        );
        assert_eq!(
            Window::new(args(Some(5), Some("c"), None, None), limits()).unwrap(),
            Window::Forward {
                limit: 5,
                after: Some("c".into())
            }
        );
        assert_eq!(
            Window::new(args(None, None, Some(3), Some("c")), limits()).unwrap(),
            Window::Backward {
                limit: 3,
                before: Some("c".into())
            }
        );
        assert_eq!(
            Window::new(args(Some(100), None, None, None), limits()).unwrap(),
            Window::Forward {
                limit: 100,
                after: None
            }
        );
        for bad in [
            args(Some(101), None, None, None),
            args(Some(-1), None, None, None),
            args(Some(1), None, Some(1), None),
            args(Some(1), None, None, Some("c")),
            args(None, Some("c"), Some(1), None),
        ] {
            let error = Window::new(bad, limits()).unwrap_err();
            assert_eq!(error.code(), "BAD_USER_INPUT");
        }
    }
}
