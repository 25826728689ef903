//! What the student reads when a run is not metered through: out of credits, expired,
//! suspended, or (failing closed) the metering API unreachable. Ordinary assistant text.

/// Credits per US dollar (the book's rate).
pub const CREDITS_PER_DOLLAR: f64 = 10_000.0;

/// Why a check did not admit the run.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// 402 `INSUFFICIENT_BALANCE` (balance and required in credits).
    OutOfCredits { balance: f64, required: f64 },
    /// The account's credits have expired (`is_expired`).
    Expired { balance: f64, required: f64 },
    /// 403 `ACCOUNT_SUSPENDED`, or `USER_MISMATCH` (answered the same way).
    Suspended,
    /// The metering API could not be reached and metering fails closed.
    Unavailable,
}

impl Refusal {
    /// The metric label.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::OutOfCredits { .. } => "INSUFFICIENT_BALANCE",
            Refusal::Expired { .. } => "EXPIRED",
            Refusal::Suspended => "ACCOUNT_SUSPENDED",
            Refusal::Unavailable => "UNAVAILABLE",
        }
    }

    /// The assistant message.
    pub fn message(&self) -> String {
        match self {
            Refusal::OutOfCredits { balance, required } => format!(
                "You've used your free credits. Your balance is {} but this request needs {}. \
                 Add credits to keep studying with the tutor; the lesson itself stays open to read.",
                dollars(*balance),
                dollars(*required)
            ),
            Refusal::Expired { balance, required } => format!(
                "Your credits have expired. Your balance is {} and this request needs {}. \
                 Renew your credits to keep studying with the tutor; the lesson itself stays open to read.",
                dollars(*balance),
                dollars(*required)
            ),
            Refusal::Suspended => {
                "Your account is suspended, so the tutor can't answer right now. \
                 Please contact support if you think this is a mistake."
                    .to_owned()
            }
            Refusal::Unavailable => "The tutor can't check your credits right now, so it can't \
                 answer this message. Please try again in a few minutes."
                .to_owned(),
        }
    }
}

/// `credits` as dollars: cents, or four decimals for amounts under a cent.
pub fn dollars(credits: f64) -> String {
    let d = credits.max(0.0) / CREDITS_PER_DOLLAR;
    if d > 0.0 && d < 0.01 {
        format!("${d:.4}")
    } else {
        format!("${d:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_thousand_credits_are_a_dollar() {
        assert_eq!(dollars(10_000.0), "$1.00");
        assert_eq!(dollars(20_000.0), "$2.00");
        assert_eq!(dollars(125.0), "$0.01");
        assert_eq!(dollars(50.0), "$0.0050");
        assert_eq!(dollars(0.0), "$0.00");
        assert_eq!(dollars(-3.0), "$0.00");
    }

    #[test]
    fn the_out_of_credits_message_names_balance_and_need_in_dollars() {
        let m = Refusal::OutOfCredits {
            balance: 300.0,
            required: 1_500.0,
        }
        .message();
        assert!(m.contains("balance is $0.03"), "{m}");
        assert!(m.contains("needs $0.15"), "{m}");
        assert!(
            Refusal::Expired {
                balance: 0.0,
                required: 10.0
            }
            .message()
            .contains("expired")
        );
        assert!(Refusal::Suspended.message().contains("suspended"));
    }
}
