//! `/ping ADDRESS count=N [interval=1s] [size=56]`, run by ztd (the router), as RouterOS's
//! REST API answers `POST /rest/ping`: one object per sequence number, each carrying the
//! running totals (`sent`, `received`, `packet-loss`, and the RTTs once one reply came).
//! A reply has `host size ttl time`; a lost one `status=timeout`.
//!
//! Bounded as a REST request must be (RouterOS cuts one at 60 s): `count` is 1..=100
//! (default 4: RouterOS's console pings until Ctrl-C, which a request cannot), `interval`
//! 10ms..=5s, each request waits 1 s (or the interval, if longer) for its reply, and the
//! whole run must fit in [`MAX_RUN`].
use std::net::IpAddr;
use std::time::Duration;

use serde_json::{Map, Value};
use zt_console::{format_duration_us, parse_duration_ms};

use crate::menu::{Args, CommandError};
use crate::os::ping::{ping, EchoReply, PingRequest};

const DEFAULT_COUNT: u32 = 4;
const MAX_COUNT: u32 = 100;
const DEFAULT_INTERVAL_MS: u64 = 1_000;
const MIN_INTERVAL_MS: u64 = 10;
const MAX_INTERVAL_MS: u64 = 5_000;
const DEFAULT_SIZE: u32 = 56;
/// ICMP data bytes: an IPv4 datagram of 65535 bytes less its headers.
const MAX_SIZE: u32 = 65_507;
const REPLY_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest run accepted (RouterOS's REST limit).
const MAX_RUN: Duration = Duration::from_secs(60);

/// Parse the arguments (`address` is the console's unnamed argument).
fn request(mut args: Args) -> Result<PingRequest, CommandError> {
    let address: IpAddr = args
        .take("address")
        .ok_or_else(|| CommandError::refused("missing value(s) of argument(s) address"))?
        .parse()
        .map_err(|_| CommandError::invalid_value("address"))?;
    let count = args
        .take_u32_in("count", 1, MAX_COUNT)?
        .unwrap_or(DEFAULT_COUNT);
    let interval_ms = match args.take("interval") {
        None => DEFAULT_INTERVAL_MS,
        Some(text) => match parse_duration_ms(&text) {
            Some(ms) if (MIN_INTERVAL_MS..=MAX_INTERVAL_MS).contains(&ms) => ms,
            Some(_) => return Err(CommandError::out_of_range("interval", "10ms", "5s")),
            None => return Err(CommandError::invalid_value("interval")),
        },
    };
    let size = args
        .take_u32_in("size", 0, MAX_SIZE)?
        .unwrap_or(DEFAULT_SIZE);
    args.finish()?;
    let interval = Duration::from_millis(interval_ms);
    let timeout = REPLY_TIMEOUT.max(interval);
    if interval * (count - 1) + timeout > MAX_RUN {
        return Err(CommandError::failure(
            "count × interval is longer than 60 s, the longest a request may run",
        ));
    }
    Ok(PingRequest {
        address,
        count: count as u16,
        interval,
        size: size as usize,
        timeout,
    })
}

/// Running totals and RTTs, as every reply object carries them.
#[derive(Default)]
struct Totals {
    sent: u32,
    rtts_us: Vec<u64>,
}

impl Totals {
    fn insert_into(&self, object: &mut Map<String, Value>) {
        let received = self.rtts_us.len() as u32;
        let loss = (self.sent - received) * 100 / self.sent.max(1);
        object.insert("sent".into(), self.sent.to_string().into());
        object.insert("received".into(), received.to_string().into());
        object.insert("packet-loss".into(), loss.to_string().into());
        if let (Some(min), Some(max)) = (self.rtts_us.iter().min(), self.rtts_us.iter().max()) {
            let avg = self.rtts_us.iter().sum::<u64>() / u64::from(received);
            object.insert("min-rtt".into(), format_duration_us(*min).into());
            object.insert("avg-rtt".into(), format_duration_us(avg).into());
            object.insert("max-rtt".into(), format_duration_us(*max).into());
        }
    }
}

/// `POST /rest/ping`.
pub async fn run(args: Args) -> Result<Value, CommandError> {
    let request = request(args)?;
    let host = request.address.to_string();
    let replies = tokio::task::spawn_blocking(move || {
        let mut totals = Totals::default();
        let mut replies = Vec::new();
        ping(&request, |seq, outcome: Option<EchoReply>| {
            totals.sent += 1;
            let mut object = Map::new();
            object.insert("seq".into(), seq.to_string().into());
            object.insert("host".into(), host.clone().into());
            match outcome {
                Some(reply) => {
                    let rtt_us = reply.rtt.as_micros() as u64;
                    totals.rtts_us.push(rtt_us);
                    object.insert("size".into(), reply.size.to_string().into());
                    if let Some(ttl) = reply.ttl {
                        object.insert("ttl".into(), ttl.to_string().into());
                    }
                    object.insert("time".into(), format_duration_us(rtt_us).into());
                }
                None => {
                    object.insert("status".into(), "timeout".into());
                }
            }
            totals.insert_into(&mut object);
            replies.push(Value::Object(object));
        })
        .map(|()| replies)
    })
    .await
    .map_err(|e| CommandError::Internal(e.to_string()))?
    .map_err(|e| CommandError::failure(format!("cannot ping: {e}")))?;
    Ok(Value::Array(replies))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(pairs: &[(&str, &str)]) -> Args {
        Args::of(pairs)
    }

    #[test]
    fn arguments_are_checked_and_bounded() {
        let r = request(args(&[("address", "10.0.0.1"), ("count", "3")])).unwrap();
        assert_eq!(
            (r.count, r.size, r.interval),
            (3, 56, Duration::from_secs(1))
        );
        let r = request(args(&[
            ("address", "fd00::1"),
            ("interval", "200ms"),
            ("size", "1000"),
        ]))
        .unwrap();
        assert_eq!((r.count, r.size), (4, 1000));
        assert_eq!(r.timeout, REPLY_TIMEOUT);
        for (bad, text) in [
            (vec![], "missing value(s) of argument(s) address"),
            (
                vec![("address", "10.0.0")],
                "invalid value for argument address",
            ),
            (
                vec![("address", "10.0.0.1"), ("count", "0")],
                "value of count is out of range (1 .. 100)",
            ),
            (
                vec![("address", "10.0.0.1"), ("interval", "1ms")],
                "value of interval is out of range (10ms .. 5s)",
            ),
            (
                vec![
                    ("address", "10.0.0.1"),
                    ("count", "100"),
                    ("interval", "1s"),
                ],
                "failure: count × interval is longer than 60 s, the longest a request may run",
            ),
            (
                vec![("address", "10.0.0.1"), ("bogus", "1")],
                "unknown parameter bogus",
            ),
        ] {
            assert_eq!(
                request(args(&bad)).unwrap_err(),
                CommandError::refused(text),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn totals_count_loss_and_rtts() {
        let mut totals = Totals {
            sent: 3,
            rtts_us: vec![407, 1_450],
        };
        let mut object = Map::new();
        totals.insert_into(&mut object);
        assert_eq!(object["packet-loss"], "33");
        assert_eq!(object["min-rtt"], "407us");
        assert_eq!(object["avg-rtt"], "928us");
        assert_eq!(object["max-rtt"], "1ms450us");
        totals.rtts_us.clear();
        let mut object = Map::new();
        totals.insert_into(&mut object);
        assert_eq!(object["packet-loss"], "100");
        assert!(object.get("min-rtt").is_none());
    }
}
