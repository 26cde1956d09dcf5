//! gbal's domain: the values a balance check is made of (each type can only hold a valid
//! value), the outcomes GMS answers, the NCTS error vocabulary, and the ports behind which
//! storage and time sit.

pub mod access_code;
pub mod amount;
pub mod balance;
pub mod clock;
pub mod duration;
pub mod field;
pub mod gms;
pub mod grn;
pub mod guarantee_type;
pub mod id;
pub mod ncts_error;
pub mod outcome;
pub mod request;
pub mod secret;
pub mod tin;
pub mod tracker;

pub use access_code::AccessCode;
pub use amount::{Amount, Currency};
pub use balance::{
    Answered, BalanceConfig, BalanceService, CallContext, CheckError, CheckOutcome, Keeping,
    ReplyError, ReplyFields, ReplyRecorded, answer_deadline, deadline_margin,
};
pub use clock::{Clock, SystemClock};
pub use field::{FieldError, FieldErrors};
pub use gms::{Gms, GmsError, ReplySink, Submission, SubmitContext};
pub use grn::{Country, Grn, GrnV2Error};
pub use guarantee_type::GuaranteeType;
pub use id::{BalanceRequestId, MessageId, UniqueReference};
pub use ncts_error::Rejection;
pub use outcome::{Balance, ErrorType, NctsError, Outcome};
pub use request::{ApiVersion, BalanceQuery, BalanceRequest, CallerId, NewBalanceRequest};
pub use tin::Tin;
pub use tracker::{
    Completion, CompletionWatch, LockOutcome, PendingRequests, ReplyMatch, Tracker, TrackerError,
    lock_then_insert,
};
