//! The streams behind `Subscription.driftAlerts` and `trainingJobUpdates`.
//!
//! A drift-alert subscription holds a cursor: the number of the last event
//! it has passed (delivered, or filtered out). It takes events from the
//! tenant's feed when they continue from its cursor, and reads the range
//! itself (through its own scoped handle) when they do not: at the start
//! (`since`), after a gap, or when it fell too far behind the feed. It only
//! ever moves the cursor forward, so every event is delivered once, in
//! order. Reads are one page at a time and the next page waits until the
//! client took the previous one, so a slow client holds a page, not a
//! backlog.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use futures_util::stream::{self, Stream};
use tokio::sync::broadcast::{self, error::RecvError};

use super::{AlertBatch, Counted, Events, Feed, READ_PAGE};
use crate::db::Scoped;
use crate::domain::{AlertLevel, DriftType, Vocabulary};
use crate::error::{ApiError, ApiResult};
use crate::store::alerts::{self, AlertEvent};
use crate::telemetry::metrics::metrics;

/// The most stored alerts a subscription replays from `since`; a client
/// further behind pages through `driftMetrics` first.
pub const MAX_REPLAY: usize = 10_000;

/// Which alerts a subscription wants.
#[derive(Clone, Debug)]
pub struct AlertFilter {
    /// Only these models' alerts (`None`: every model's, and model-less ones).
    pub model_ids: Option<HashSet<String>>,
    /// Only alerts at this level or above.
    pub min_level: AlertLevel,
    /// Only these drift types.
    pub drift_types: Option<HashSet<DriftType>>,
}

impl AlertFilter {
    fn level(stored: Option<&str>) -> AlertLevel {
        // A triggered alert without a level (or with one outside the
        // vocabulary) counts as informational.
        stored
            .and_then(AlertLevel::from_db)
            .unwrap_or(AlertLevel::Info)
    }

    pub fn matches(&self, event: &AlertEvent) -> bool {
        let metric = &event.metric;
        self.model_ids
            .as_ref()
            .is_none_or(|ids| metric.model_id.as_ref().is_some_and(|m| ids.contains(m)))
            && self.drift_types.as_ref().is_none_or(|types| {
                DriftType::from_db(&metric.drift_type).is_some_and(|t| types.contains(&t))
            })
            && Self::level(metric.alert_level.as_deref()) >= self.min_level
    }
}

/// What the subscription must read from the database before it continues
/// with the feed.
#[derive(Clone, Copy, Debug, PartialEq)]
enum CatchUp {
    /// Nothing: take the feed's next batch.
    No,
    /// Events after the cursor up to and including this number.
    UpTo(i64),
    /// Every event after the cursor (the feed dropped batches for us).
    Latest,
}

struct AlertStream {
    scoped: Scoped,
    filter: AlertFilter,
    /// The tenant's feed: kept alive while subscribed, and asked for its position.
    source: Arc<Feed>,
    feed: broadcast::Receiver<Arc<AlertBatch>>,
    /// `None` until the first poll has read the starting point.
    cursor: Option<i64>,
    /// Where the client resumes; replayed from the database before going live.
    since: Option<i64>,
    catch_up: CatchUp,
    /// A feed batch that arrived after a gap, applied once the gap is read.
    held: Option<Arc<AlertBatch>>,
    pending: VecDeque<AlertEvent>,
    done: bool,
    _counted: Counted,
}

/// The subscription fields, as counted.
pub const DRIFT_ALERTS: &str = "driftAlerts";
pub const TRAINING_JOB_UPDATES: &str = "trainingJobUpdates";

/// Counts a delivery and its lag from the alert's commit (a replay after a
/// reconnect is late by the time the client was away: that is the truth).
fn delivered(event: &AlertEvent) {
    let m = metrics();
    m.alerts_delivered.inc();
    let lag = (chrono::Utc::now() - event.raised_at)
        .to_std()
        .unwrap_or_default();
    m.alert_delivery_lag.observe(lag.as_secs_f64());
}

/// Alerts of `scoped`'s tenant matching `filter`, from after event `since`
/// (stored alerts are replayed first) or from now on.
pub fn drift_alerts(
    events: &Events,
    scoped: Scoped,
    filter: AlertFilter,
    since: Option<i64>,
) -> impl Stream<Item = ApiResult<AlertEvent>> + Send + 'static {
    let feed = events.feed(&scoped);
    // Subscribed before the starting point is read: nothing committed in
    // between can be missed.
    let receiver = feed.alerts();
    let state = AlertStream {
        scoped,
        filter,
        source: feed,
        feed: receiver,
        cursor: None,
        since,
        catch_up: CatchUp::No,
        held: None,
        pending: VecDeque::new(),
        done: false,
        _counted: events.subscription_started(DRIFT_ALERTS),
    };
    stream::unfold(state, |mut state| async move {
        let item = state.next().await?;
        Some((item, state))
    })
}

impl AlertStream {
    async fn next(&mut self) -> Option<ApiResult<AlertEvent>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                delivered(&event);
                return Some(Ok(event));
            }
            if self.done {
                return None;
            }
            let step = self.step().await;
            if let Err(e) = step {
                self.done = true;
                return Some(Err(e));
            }
        }
    }

    /// Makes progress: reads the starting point, one page of a catch-up,
    /// or the feed's next batch.
    async fn step(&mut self) -> ApiResult<()> {
        let Some(cursor) = self.cursor else {
            // Boxed, like the page reads below: database futures are large,
            // and inline they would enlarge every waiting subscription.
            return Box::pin(self.start()).await;
        };
        if self.catch_up != CatchUp::No {
            return Box::pin(self.read_page(cursor)).await;
        }
        match self.feed.recv().await {
            Ok(batch) => {
                if batch.after > cursor {
                    self.catch_up = CatchUp::UpTo(batch.after);
                    self.held = Some(batch);
                } else {
                    self.apply(&batch);
                }
                Ok(())
            }
            Err(RecvError::Lagged(missed)) => {
                tracing::debug!(
                    missed,
                    "alert subscription behind its feed; reading from the database"
                );
                self.catch_up = CatchUp::Latest;
                Ok(())
            }
            Err(RecvError::Closed) => {
                self.done = true;
                Ok(())
            }
        }
    }

    /// Sets the starting cursor. It comes from the tenant's feed when the
    /// feed knows its position (a thousand subscribers joining must not mean
    /// a thousand queries); the database is read when the feed has not
    /// started, or when `since` is beyond it (it may lag a commit made through
    /// another gateway). Replaying from `since` reads the outbox up to the
    /// feed's position, or to the end when that is unknown.
    async fn start(&mut self) -> ApiResult<()> {
        let known = self.source.position();
        let (last, known) = match (known, self.since) {
            (Some(position), None) => (position, true),
            (Some(position), Some(since)) if since <= position => (position, true),
            _ => (alerts::last_seq(&self.scoped).await?, false),
        };
        let Some(since) = self.since else {
            self.cursor = Some(last);
            return Ok(());
        };
        if since > last {
            return Err(ApiError::BadUserInput {
                message: "`since` is not a cursor of this tenant's alerts".into(),
                field: Some("since".into()),
            });
        }
        if last - since > MAX_REPLAY as i64 {
            return Err(ApiError::BadUserInput {
                message: format!(
                    "`since` is more than {MAX_REPLAY} alerts behind; read them with \
                     `driftMetrics(filter: {{alertTriggered: true}})`, then subscribe again"
                ),
                field: Some("since".into()),
            });
        }
        self.cursor = Some(since);
        self.catch_up = if !known {
            CatchUp::Latest
        } else if since < last {
            CatchUp::UpTo(last)
        } else {
            CatchUp::No
        };
        Ok(())
    }

    /// Delivers a batch's events after the cursor and moves the cursor to
    /// the batch's end.
    fn apply(&mut self, batch: &AlertBatch) {
        let cursor = self.cursor.unwrap_or_default();
        if batch.to <= cursor {
            return;
        }
        for event in batch.events.iter().filter(|e| e.seq > cursor) {
            if self.filter.matches(event) {
                self.pending.push_back(event.clone());
            }
        }
        self.cursor = Some(batch.to);
    }

    /// Reads one page of the range the subscription must catch up on.
    async fn read_page(&mut self, cursor: i64) -> ApiResult<()> {
        let upto = match self.catch_up {
            CatchUp::UpTo(upto) => Some(upto),
            _ => None,
        };
        let page = alerts::after(&self.scoped, cursor, READ_PAGE).await?;
        metrics().outbox_read.inc_by(page.len() as u64);
        // A short page holds every event there is after the cursor.
        let mut reached = (page.len() as u64) < READ_PAGE;
        let mut last = cursor;
        for event in page {
            if upto.is_some_and(|upto| event.seq > upto) {
                reached = true;
                break;
            }
            last = event.seq;
            if self.filter.matches(&event) {
                self.pending.push_back(event);
            }
        }
        if let Some(upto) = upto {
            reached |= last >= upto;
        }
        self.cursor = Some(match upto {
            // Numbers up to `upto` that were not read belong to deleted metrics.
            Some(upto) if reached => upto,
            _ => last,
        });
        if reached {
            self.catch_up = CatchUp::No;
            if let Some(batch) = self.held.take() {
                self.apply(&batch);
            }
        }
        Ok(())
    }
}

/// Training jobs of `scoped`'s tenant (only `job_ids`, if given) each time
/// they are created or change status, read back through the subscription's
/// own scoped handle. A state is sent once per job; jobs are not replayed.
pub fn training_job_updates(
    events: &Events,
    scoped: Scoped,
    job_ids: Option<HashSet<String>>,
) -> impl Stream<Item = ApiResult<entity::training_job::Model>> + Send + 'static {
    let feed = events.feed(&scoped);
    let receiver = feed.jobs();
    let counted = events.subscription_started(TRAINING_JOB_UPDATES);
    let sent: HashMap<String, String> = HashMap::new();
    stream::unfold(
        (feed, receiver, scoped, job_ids, sent, counted),
        |(feed, mut receiver, scoped, job_ids, mut sent, counted)| async move {
            loop {
                let job_id = match receiver.recv().await {
                    Ok(job_id) => job_id,
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "job subscription fell behind; updates skipped");
                        continue;
                    }
                    Err(RecvError::Closed) => return None,
                };
                if job_ids.as_ref().is_some_and(|ids| !ids.contains(&*job_id)) {
                    continue;
                }
                let job = match crate::store::training::by_job_ids(&scoped, &[job_id.to_string()])
                    .await
                {
                    Ok(mut jobs) => jobs.remove(&*job_id),
                    Err(e) => {
                        return Some((Err(e), (feed, receiver, scoped, job_ids, sent, counted)))
                    }
                };
                let Some(job) = job else { continue };
                if sent.get(&job.job_id) == Some(&job.status) {
                    continue;
                }
                sent.insert(job.job_id.clone(), job.status.clone());
                return Some((Ok(job), (feed, receiver, scoped, job_ids, sent, counted)));
            }
        },
    )
}
