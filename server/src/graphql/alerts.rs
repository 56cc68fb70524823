//! Subscriptions: drift alerts and training-job changes, pushed over
//! `graphql-transport-ws` to subscribers of the writer's tenant only.

use std::collections::HashSet;
use std::sync::Arc;

use async_graphql::{Context, Object, Subscription};
use chrono::{DateTime, Utc};
use futures_util::{Stream, StreamExt};

use super::common::{float, float_opt, vocab, vocab_opt};
use super::drift::{model_of, AlertLevel, DriftMetric, DriftType};
use super::models::Model;
use super::request_context;
use super::resume::StreamPositions;
use super::training::TrainingJob;
use crate::error::ApiResult;
use crate::events::streams::{self, AlertFilter};
use crate::store::alerts::AlertEvent;
use crate::store::filter::{invalid, MAX_LIST_LENGTH};
use crate::store::page::{decode_position, encode_position};

/// The stream tag of alert cursors.
const ALERT_CURSOR: &str = "alerts";

/// A drift metric whose alert triggered, as pushed to subscribers.
pub struct DriftAlert {
    tenant: Arc<str>,
    event: AlertEvent,
}

/// A drift metric whose alert triggered, as pushed to subscribers.
#[Object]
impl DriftAlert {
    /// Resume after this alert with `driftAlerts(since: cursor)`: the
    /// alerts after it are replayed, in order, none twice. Only valid for
    /// this tenant.
    async fn cursor(&self) -> String {
        encode_position(&self.tenant, ALERT_CURSOR, self.event.seq)
    }

    /// The alert's number in its tenant: 1, 2, 3, … in the order alerts
    /// were committed.
    async fn sequence(&self) -> i64 {
        self.event.seq
    }

    /// When the alert was raised (the metric was stored).
    async fn raised_at(&self) -> DateTime<Utc> {
        self.event.raised_at
    }

    async fn level(&self) -> async_graphql::Result<Option<AlertLevel>> {
        vocab_opt(self.event.metric.alert_level.as_deref())
    }

    async fn drift_type(&self) -> async_graphql::Result<DriftType> {
        vocab(&self.event.metric.drift_type)
    }

    async fn metric_id(&self) -> &str {
        &self.event.metric.metric_id
    }

    async fn model_id(&self) -> Option<&str> {
        self.event.metric.model_id.as_deref()
    }

    async fn resource_id(&self) -> Option<&str> {
        self.event.metric.resource_id.as_deref()
    }

    async fn drift_score(&self) -> f64 {
        float(&self.event.metric.drift_score)
    }

    async fn psi_score(&self) -> Option<f64> {
        float_opt(&self.event.metric.psi_score)
    }

    async fn ks_statistic(&self) -> Option<f64> {
        float_opt(&self.event.metric.ks_statistic)
    }

    async fn wasserstein_distance(&self) -> Option<f64> {
        float_opt(&self.event.metric.wasserstein_distance)
    }

    async fn measured_at(&self) -> Option<DateTime<Utc>> {
        self.event.metric.measured_at
    }

    /// The whole drift measurement.
    async fn metric(&self) -> DriftMetric {
        DriftMetric::from(self.event.metric.clone())
    }

    /// The model the drift was measured for.
    async fn model(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Model>> {
        model_of(ctx, &self.event.metric).await
    }
}

fn id_set(field: &str, ids: Option<Vec<String>>) -> ApiResult<Option<HashSet<String>>> {
    match ids {
        Some(ids) if ids.len() > MAX_LIST_LENGTH => Err(invalid(
            field,
            format!(
                "`{field}` lists {} values; at most {MAX_LIST_LENGTH} are accepted",
                ids.len()
            ),
        )),
        ids => Ok(ids.map(|ids| ids.into_iter().collect())),
    }
}

/// A stream's failure as the GraphQL error of its last item.
fn item<T, U>(result: ApiResult<T>, map: impl FnOnce(T) -> U) -> async_graphql::Result<U> {
    result.map(map).map_err(async_graphql::Error::from)
}

#[derive(Default)]
pub struct AlertsQuery;

#[Object]
impl AlertsQuery {
    /// The cursor of the tenant's latest drift alert: subscribe to
    /// `driftAlerts(since: …)` with it to receive every alert raised after
    /// this query, with no gap between what the query showed and the feed.
    async fn drift_alert_cursor(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        let rc = request_context(ctx)?;
        let last = crate::store::alerts::last_seq(rc.scoped()).await?;
        Ok(encode_position(rc.scoped().tenant(), ALERT_CURSOR, last))
    }
}

#[derive(Default)]
pub struct Subscription;

#[Subscription]
impl Subscription {
    /// Drift alerts of the caller's tenant as they are raised: each new drift
    /// metric with a triggered alert, matching every filter given, once and in
    /// order. With `since` (a `cursor` of an earlier alert), the stored alerts
    /// after it are replayed first (at most 10000), so a client that
    /// reconnects loses nothing and sees nothing twice.
    async fn drift_alerts(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only these models' alerts (an empty list matches nothing).")]
        model_ids: Option<Vec<String>>,
        #[graphql(
            default_with = "Some(AlertLevel::Warning)",
            desc = "Only alerts at this level or above (`null`: `WARNING`)."
        )]
        min_level: Option<AlertLevel>,
        #[graphql(desc = "Only these kinds of drift.")] drift_types: Option<Vec<DriftType>>,
        #[graphql(desc = "Replay the alerts after this `cursor` first.")] since: Option<String>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<DriftAlert>>> {
        let rc = request_context(ctx)?;
        // A stream resumed by its transport (SSE's `Last-Event-ID`) starts
        // after the last alert the client saw, later than any `since`.
        let positions = ctx.data_opt::<StreamPositions>().cloned();
        let (since, given_as) = match positions.as_ref().and_then(|p| p.resume_from()) {
            Some(resumed) => (Some(resumed.to_owned()), "Last-Event-ID"),
            None => (since, "`since`"),
        };
        let since = since
            .map(|cursor| {
                decode_position(&cursor, rc.scoped().tenant(), ALERT_CURSOR).ok_or_else(|| {
                    invalid(
                        "since",
                        format!("{given_as} is not a cursor of this tenant's alerts"),
                    )
                })
            })
            .transpose()?;
        let filter = AlertFilter {
            model_ids: id_set("modelIds", model_ids)?,
            min_level: min_level.unwrap_or(AlertLevel::Warning).into(),
            drift_types: drift_types.map(|types| types.into_iter().map(Into::into).collect()),
        };
        let tenant = rc.tenant();
        Ok(
            streams::drift_alerts(rc.events(), rc.scoped().clone(), filter, since).map(
                move |event| {
                    let tenant = tenant.clone();
                    if let (Some(positions), Ok(event)) = (&positions, &event) {
                        positions.sent(encode_position(&tenant, ALERT_CURSOR, event.seq));
                    }
                    item(event, |event| DriftAlert { tenant, event })
                },
            ),
        )
    }

    /// Training jobs of the caller's tenant each time one is created or
    /// changes status (only `jobIds`, if given), as they are then. Not
    /// replayed: query `trainingJobs` for the current state.
    async fn training_job_updates(
        &self,
        ctx: &Context<'_>,
        job_ids: Option<Vec<String>>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<TrainingJob>>> {
        let rc = request_context(ctx)?;
        let job_ids = id_set("jobIds", job_ids)?;
        Ok(
            streams::training_job_updates(rc.events(), rc.scoped().clone(), job_ids)
                .map(|job| item(job, TrainingJob::from)),
        )
    }
}
