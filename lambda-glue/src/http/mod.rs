//! HTTP functions' common ground (feature `http`): JSON and `application/problem+json` responses
//! with the correlation header, and request parsing that names the rejected field and rule. Used
//! by the order API and the courier API, so both answer bad input the same way.

pub mod caller;
pub mod input;
pub mod problem;
pub mod routes;
pub mod serve;
