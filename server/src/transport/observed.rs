//! What the transport tells the metrics about each request: its operation
//! type, how it ended and the codes of its errors.

use std::time::Instant;

use async_graphql::parser::types::OperationType;
use async_graphql::{ServerError, Value};

use crate::error::code;
use crate::telemetry::metrics::{metrics, Operation, Outcome, Transport};

/// How an answer ended, attached to the HTTP response for the request's
/// wrapper to count (the answer is built in several places).
#[derive(Clone, Debug)]
pub struct Answered {
    pub outcome: Outcome,
    pub codes: Vec<&'static str>,
}

impl Answered {
    /// An answer with one error and no data: refused before it ran, except
    /// a `TIMEOUT`, which ran past its deadline.
    pub fn refused(code: &'static str) -> Self {
        Self {
            outcome: if code == code::TIMEOUT {
                Outcome::Error
            } else {
                Outcome::Refused
            },
            codes: vec![code],
        }
    }

    /// An answer with `errors`; `ran` when the operation executed (data,
    /// possibly partial), not when it was refused before.
    pub fn with_errors(ran: bool, errors: &[ServerError]) -> Self {
        Self {
            outcome: outcome_of(ran, errors),
            codes: codes_of(errors),
        }
    }
}

/// `Refused` when the operation never ran, else `Ok` or `Error`.
fn outcome_of(ran: bool, errors: &[ServerError]) -> Outcome {
    match (ran, errors.is_empty()) {
        (false, _) => Outcome::Refused,
        (true, true) => Outcome::Ok,
        (true, false) => Outcome::Error,
    }
}

/// The errors' codes, from our closed set.
pub fn codes_of(errors: &[ServerError]) -> Vec<&'static str> {
    errors
        .iter()
        .map(|error| {
            match error
                .extensions
                .as_ref()
                .and_then(|extensions| extensions.get("code"))
            {
                Some(Value::String(c)) => code::known(c),
                _ => code::OTHER,
            }
        })
        .collect()
}

pub fn operation(kind: Option<OperationType>) -> Operation {
    match kind {
        Some(OperationType::Query) => Operation::Query,
        Some(OperationType::Mutation) => Operation::Mutation,
        Some(OperationType::Subscription) => Operation::Subscription,
        None => Operation::Unknown,
    }
}

/// The name of the operation that runs: the one asked for, or the only
/// one of the document when it is named.
pub fn operation_name<'a>(
    document: &'a async_graphql::parser::types::ExecutableDocument,
    requested: Option<&'a str>,
) -> Option<&'a str> {
    use async_graphql::parser::types::DocumentOperations;
    if requested.is_some() {
        return requested;
    }
    match &document.operations {
        DocumentOperations::Multiple(operations) if operations.len() == 1 => {
            operations.keys().next().map(|name| name.as_str())
        }
        _ => None,
    }
}

/// Counts errors of an answer.
pub fn count_errors(codes: &[&'static str]) {
    for code in codes {
        metrics().error(code);
    }
}

/// One WebSocket operation, counted when it ends however it ends (answered,
/// refused, completed by the client, or its connection closed). Only
/// queries and mutations enter the latency histogram: a subscription's
/// lifetime is not a latency.
pub struct WsOperation {
    pub operation: Operation,
    pub outcome: Outcome,
    started: Instant,
}

impl WsOperation {
    pub fn start() -> Self {
        Self {
            operation: Operation::Unknown,
            outcome: Outcome::Refused,
            started: Instant::now(),
        }
    }

    /// Notes that the operation ended in an error of the transport's own
    /// (its deadline).
    pub fn failed(&mut self) {
        self.outcome = Outcome::Error;
    }

    /// Notes an answer with `errors` (their codes are counted where the
    /// message is built): `ran` as for [`Answered::with_errors`].
    pub fn answered(&mut self, ran: bool, errors: &[ServerError]) {
        let outcome = outcome_of(ran, errors);
        // A later clean message does not undo an earlier error.
        if self.outcome == Outcome::Ok || outcome != Outcome::Ok {
            self.outcome = outcome;
        }
    }
}

impl Drop for WsOperation {
    fn drop(&mut self) {
        let m = metrics();
        if self.operation == Operation::Subscription {
            m.count_request(Transport::Ws, self.operation, self.outcome);
        } else {
            m.request(
                Transport::Ws,
                self.operation,
                self.outcome,
                self.started.elapsed(),
            );
        }
    }
}
