//! Types shared by the domain modules: connections, page info, ranges,
//! ordering direction, closed vocabularies and small conversions.

use async_graphql::{Context, Enum, InputObject, SimpleObject};
use chrono::{DateTime, Utc};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

use std::fmt::Debug;

use crate::domain::Vocabulary;
use crate::error::{ApiError, ApiResult};
use crate::store::{self, ListQuery, PageArgs, PageLimits, Want, Window};

/// Page-size estimate of a list whose size the query leaves to the server,
/// for complexity scoring (the server's default page size).
pub const COMPLEXITY_DEFAULT_PAGE: usize = PageLimits::DEFAULT_SIZE as usize;

/// Complexity of a list field: its page size times the cost of one item, so
/// `first: 100` nested three deep costs a million and is refused before
/// anything runs.
pub fn page_complexity(first: Option<i32>, last: Option<i32>, child: usize) -> usize {
    let size = first
        .or(last)
        .map(|n| n.max(1) as usize)
        .unwrap_or(COMPLEXITY_DEFAULT_PAGE);
    size.saturating_mul(child.max(1))
}

/// Defines the GraphQL enum mirroring a vocabulary of [`crate::domain`]
/// (same name, same variants), with conversions both ways. The stored
/// spellings live in the domain only.
macro_rules! vocabulary {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(async_graphql::Enum, Copy, Clone, Debug, Eq, PartialEq, Hash)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl From<$crate::domain::$name> for $name {
            fn from(value: $crate::domain::$name) -> Self {
                match value { $($crate::domain::$name::$variant => $name::$variant),+ }
            }
        }

        impl From<$name> for $crate::domain::$name {
            fn from(value: $name) -> Self {
                match value { $($name::$variant => $crate::domain::$name::$variant),+ }
            }
        }

        impl $crate::graphql::common::Mirror for $name {
            type Domain = $crate::domain::$name;
        }
    };
}
pub(crate) use vocabulary;

/// A GraphQL enum mirroring a domain vocabulary.
pub trait Mirror: From<Self::Domain> + Into<Self::Domain> {
    type Domain: Vocabulary;
}

/// A stored vocabulary value as its GraphQL enum. A value outside the
/// vocabulary (a database written by other tools) is an internal error of
/// this field only.
pub fn vocab<T: Mirror>(value: &str) -> async_graphql::Result<T> {
    T::Domain::from_db(value).map(T::from).ok_or_else(|| {
        ApiError::Internal(anyhow::anyhow!(
            "stored value {value:?} is not a {}",
            T::Domain::NAME
        ))
        .into()
    })
}

pub fn vocab_opt<T: Mirror>(value: Option<&str>) -> async_graphql::Result<Option<T>> {
    value.map(vocab).transpose()
}

/// Enum filter values as the domain's.
pub fn domain_values<T: Mirror>(values: Option<Vec<T>>) -> Option<Vec<T::Domain>> {
    values.map(|values| values.into_iter().map(Into::into).collect())
}

/// A nullable input field as a change: absent leaves the value alone
/// (`None`), `null` clears it (`Some(None)`).
pub fn clearable<T>(value: async_graphql::MaybeUndefined<T>) -> Option<Option<T>> {
    match value {
        async_graphql::MaybeUndefined::Undefined => None,
        async_graphql::MaybeUndefined::Null => Some(None),
        async_graphql::MaybeUndefined::Value(value) => Some(Some(value)),
    }
}

pub fn float(value: &Decimal) -> f64 {
    value.to_f64().unwrap_or(f64::NAN)
}

pub fn float_opt(value: &Option<Decimal>) -> Option<f64> {
    value.as_ref().map(float)
}

#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq, Default)]
pub enum OrderDirection {
    Asc,
    #[default]
    Desc,
}

impl From<OrderDirection> for store::Direction {
    fn from(direction: OrderDirection) -> Self {
        match direction {
            OrderDirection::Asc => store::Direction::Asc,
            OrderDirection::Desc => store::Direction::Desc,
        }
    }
}

/// An inclusive numeric range; leave an end out to keep it open.
#[derive(InputObject, Clone, Copy, Debug, Default)]
pub struct FloatRange {
    pub min: Option<f64>,
    pub max: Option<f64>,
}

impl From<FloatRange> for store::NumberRange {
    fn from(range: FloatRange) -> Self {
        store::NumberRange {
            min: range.min,
            max: range.max,
        }
    }
}

/// A time range: `from` inclusive, `to` exclusive; leave an end out to keep it open.
#[derive(InputObject, Clone, Copy, Debug, Default)]
pub struct TimeRange {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

impl From<TimeRange> for store::TimeRange {
    fn from(range: TimeRange) -> Self {
        store::TimeRange {
            from: range.from,
            to: range.to,
        }
    }
}

/// A time range from separate `from`/`to` arguments, if either is given.
pub fn time_range(
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Option<store::TimeRange> {
    (from.is_some() || to.is_some()).then_some(store::TimeRange { from, to })
}

/// Relay page information.
#[derive(SimpleObject, Clone, Debug)]
pub struct PageInfo {
    pub has_next_page: bool,
    pub has_previous_page: bool,
    pub start_cursor: Option<String>,
    pub end_cursor: Option<String>,
}

/// A list field's `orderBy` argument: the field as the store names it, and
/// the direction.
pub trait OrderInput: Default {
    type Field: Debug;
    fn into_store(self) -> (Self::Field, OrderDirection);
}

/// `impl OrderInput` for an ordering input of a `field` and a `direction`.
macro_rules! order_input {
    ($order:ty => $field:ty) => {
        impl $crate::graphql::common::OrderInput for $order {
            type Field = $field;

            fn into_store(self) -> ($field, $crate::graphql::common::OrderDirection) {
                (self.field.into(), self.direction)
            }
        }
    };
}
pub(crate) use order_input;

/// A list field's Relay paging arguments.
pub fn page(
    first: Option<i32>,
    after: Option<String>,
    last: Option<i32>,
    before: Option<String>,
) -> PageArgs {
    PageArgs {
        first,
        after,
        last,
        before,
    }
}

/// A list query from a list field's arguments: the store's filter (an
/// absent one is the default), the ordering, the page window (checked
/// against the limits) and what the selection asks for.
pub fn list_query<FI, F, OI>(
    ctx: &Context<'_>,
    filter: Option<FI>,
    order_by: Option<OI>,
    page: PageArgs,
) -> ApiResult<ListQuery<F, OI::Field>>
where
    FI: Default + TryInto<F>,
    ApiError: From<FI::Error>,
    F: Debug,
    OI: OrderInput,
{
    let filter = filter.unwrap_or_default().try_into()?;
    let (field, direction) = order_by.unwrap_or_default().into_store();
    let limits = ctx.data_opt::<PageLimits>().copied().unwrap_or_default();
    let window = Window::new(page, limits)?;
    let order = store::OrderBy {
        field,
        direction: direction.into(),
    };
    Ok(ListQuery::new(filter, order, window, want(ctx)))
}

/// What the connection's selection asks for, so unselected queries never run.
fn want(ctx: &Context<'_>) -> Want {
    let look = ctx.look_ahead();
    Want {
        rows: look.field("edges").exists()
            || look.field("nodes").exists()
            || look.field("pageInfo").exists(),
        count: look.field("totalCount").exists(),
    }
}

/// Defines a node type over an entity row (a newtype the `#[Object]` impl
/// then describes), with its Relay connection and edge types.
macro_rules! node {
    ($(#[$meta:meta])* $node:ident($row:ty), $connection:ident, $edge:ident) => {
        $(#[$meta])*
        pub struct $node($row);

        impl From<$row> for $node {
            fn from(row: $row) -> Self {
                Self(row)
            }
        }

        $crate::graphql::common::connection!($connection, $edge, $node);
    };
}
pub(crate) use node;

/// Defines a Relay connection type and its edge type for a node type.
macro_rules! connection {
    ($connection:ident, $edge:ident, $node:ident) => {
        #[doc = concat!("An edge of a `", stringify!($connection), "`.")]
        #[derive(async_graphql::SimpleObject)]
        pub struct $edge {
            /// Opaque position of this node, for `after`/`before`.
            pub cursor: String,
            pub node: $node,
        }

        #[doc = concat!("A page of `", stringify!($node), "`s.")]
        pub struct $connection {
            edges: Vec<$edge>,
            page_info: $crate::graphql::common::PageInfo,
            total: Option<u64>,
        }

        #[doc = concat!("A page of `", stringify!($node), "`s.")]
        #[async_graphql::Object]
        impl $connection {
            async fn edges(&self) -> &[$edge] {
                &self.edges
            }

            /// The nodes of `edges`, for clients that need no cursors.
            async fn nodes(&self) -> Vec<&$node> {
                self.edges.iter().map(|edge| &edge.node).collect()
            }

            async fn page_info(&self) -> &$crate::graphql::common::PageInfo {
                &self.page_info
            }

            /// Items matching the filter, across all pages.
            async fn total_count(&self) -> async_graphql::Result<u64> {
                self.total.ok_or_else(|| {
                    $crate::error::ApiError::Internal(anyhow::anyhow!(
                        "totalCount selected but not loaded"
                    ))
                    .into()
                })
            }
        }

        impl<M> From<$crate::store::Page<M>> for $connection
        where
            $node: From<M>,
        {
            fn from(page: $crate::store::Page<M>) -> Self {
                let page_info = $crate::graphql::common::PageInfo {
                    has_next_page: page.has_next,
                    has_previous_page: page.has_previous,
                    start_cursor: page.edges.first().map(|(c, _)| c.clone()),
                    end_cursor: page.edges.last().map(|(c, _)| c.clone()),
                };
                Self {
                    edges: page
                        .edges
                        .into_iter()
                        .map(|(cursor, row)| $edge {
                            cursor,
                            node: $node::from(row),
                        })
                        .collect(),
                    page_info,
                    total: page.total,
                }
            }
        }
    };
}
pub(crate) use connection;
