//! The use cases, apart from HTTP: what the service does, whichever door a request comes in
//! by. Nothing here names an HTTP request or response type, a header map, a form or a
//! template (`scripts/dev/check-layers` checks it); errors are [`crate::error::ApiError`],
//! answers are typed ([`crate::views`]).
//!
//! - [`captioning`]: caption images and record what a caption leaves behind.
//! - [`accounts`]: sign-up, sign-in, sessions, keys, passwords, staff accounts.
//! - [`privacy`]: the data rights: access, correction, preferences, consent, exports,
//!   erasure, policy acknowledgements, staff access.
//! - [`jobs`]: batch jobs (receive, worker, records, webhook).
//! - [`training`]: the operator's export of consented training items, and what an earlier
//!   export had that is no longer consented.
//! - [`upkeep`]: the one scheduler of timed upkeep (retention sweep, exports, notices).

pub mod accounts;
pub mod captioning;
pub mod jobs;
pub mod privacy;
pub mod training;
pub mod upkeep;
