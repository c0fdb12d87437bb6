//! The one way a process reaches the event log, for every component that is not the log itself.
//!
//! - [`Remote`]: a log served over gRPC, with its address, the token this process presents, TLS
//!   trust and message limits set once; [`Remote::client`] is the `EventLog` client every verb,
//!   importer, reactor and read side uses (append, read, subscribe, head, verify).
//! - [`sources`]: the [`EventSource`]s read models and the reactor follow: the log in this
//!   process, the log over gRPC (`ReadAll` + `Subscribe`), or NATS JetStream for live events with
//!   the gRPC log for catch-up and gaps ([`nats`]: every NATS event checked against the log's
//!   chain before it is handed out; the JetStream consumer recreated when it is lost).
//! - [`broker`]: how every process connects to NATS (credentials in the URL, TLS trust).
//!
//! Owns no policy: which token to present, and whether a log is local, is the caller's choice.
//! Knows nothing of journey rules, SQL or HTTP.
pub mod broker;
pub mod links;
pub mod nats;
pub mod remote;
pub mod sources;

pub use nats::Nats;
pub use remote::{LogClient, Remote, Token, MAX_MESSAGE};
pub use sources::{EventSource, Grpc, InProcess};
