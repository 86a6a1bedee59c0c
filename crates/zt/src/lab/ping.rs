//! The lab's `ping`: the output of the system's `ping -c N` (iputils), shown the way
//! RouterOS's `ping ADDRESS count=N` shows its result (the seed's example): one row per
//! sequence number with SIZE, TTL and TIME, `timeout` for an unanswered one, then a summary.

/// One echo reply, from a line `64 bytes from 172.27.27.13: icmp_seq=1 ttl=64 time=0.407 ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// RouterOS counts from 0; iputils from 1.
    pub seq: u32,
    /// ICMP payload size (reported bytes minus the 8-byte ICMP header), as RouterOS's SIZE.
    pub size: u32,
    pub ttl: u32,
    pub time_us: u64,
}

/// What one run of `ping -c sent` showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingResult {
    pub host: String,
    pub sent: u32,
    pub replies: Vec<Reply>,
}

const ICMP_HEADER: u32 = 8;

impl PingResult {
    /// Read iputils `ping -c sent HOST` output. Lines that are not replies are ignored; a
    /// duplicate reply (`(DUP!)`) is not counted twice.
    pub fn parse(host: &str, sent: u32, output: &str) -> PingResult {
        let mut replies: Vec<Reply> = Vec::new();
        for line in output.lines() {
            if line.contains("(DUP!)") {
                continue;
            }
            if let Some(reply) = parse_reply(line) {
                if !replies.iter().any(|r| r.seq == reply.seq) {
                    replies.push(reply);
                }
            }
        }
        PingResult {
            host: host.to_string(),
            sent,
            replies,
        }
    }

    pub fn received(&self) -> u32 {
        self.replies.len() as u32
    }

    /// The RouterOS rendering (header, one row per sequence number, summary line).
    pub fn routeros(&self) -> String {
        let mut out = "  SEQ HOST                                     SIZE TTL TIME       STATUS\n"
            .to_string();
        for seq in 0..self.sent {
            match self.replies.iter().find(|r| r.seq == seq) {
                Some(r) => {
                    let row = format!(
                        "{seq:>5} {:<40} {:>4} {:>3} {}",
                        self.host,
                        r.size,
                        r.ttl,
                        duration_text(r.time_us)
                    );
                    out.push_str(&row);
                    out.push('\n');
                }
                None => out.push_str(&format!(
                    "{seq:>5} {:<40} {:>4} {:>3} {:<10} timeout\n",
                    self.host, "", "", ""
                )),
            }
        }
        let received = self.received();
        let loss = ((self.sent - received.min(self.sent)) * 100)
            .checked_div(self.sent)
            .unwrap_or(0);
        out.push_str(&format!(
            "    sent={} received={received} packet-loss={loss}%",
            self.sent
        ));
        let times: Vec<u64> = self.replies.iter().map(|r| r.time_us).collect();
        if let (Some(min), Some(max)) = (times.iter().min(), times.iter().max()) {
            let avg = times.iter().sum::<u64>() / times.len() as u64;
            out.push_str(&format!(
                " min-rtt={} avg-rtt={} max-rtt={}",
                duration_text(*min),
                duration_text(avg),
                duration_text(*max)
            ));
        }
        out.push('\n');
        out
    }
}

fn parse_reply(line: &str) -> Option<Reply> {
    let (bytes, rest) = line.split_once(" bytes from ")?;
    let bytes: u32 = bytes.trim().parse().ok()?;
    let field = |name: &str| {
        rest.split_whitespace()
            .find_map(|word| word.strip_prefix(name))
            .map(str::to_string)
    };
    let seq: u32 = field("icmp_seq=")?.parse().ok()?;
    let ttl: u32 = field("ttl=")?.parse().ok()?;
    let time_ms: f64 = field("time=")?.parse().ok()?;
    Some(Reply {
        seq: seq.checked_sub(1)?,
        size: bytes.saturating_sub(ICMP_HEADER),
        ttl,
        time_us: (time_ms * 1000.0).round() as u64,
    })
}

/// RouterOS's duration style: `407us`, `1ms234us`, `12ms`.
pub fn duration_text(us: u64) -> String {
    let ms = us / 1000;
    let rest = us % 1000;
    match (ms, rest) {
        (0, us) => format!("{us}us"),
        (ms, 0) => format!("{ms}ms"),
        (ms, us) => format!("{ms}ms{us}us"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // iputils-ping output as printed on this machine's Debian (`ping -c 3` in a namespace).
    const THREE_OF_THREE: &str = "\
PING 172.27.27.13 (172.27.27.13) 56(84) bytes of data.
64 bytes from 172.27.27.13: icmp_seq=1 ttl=64 time=0.407 ms
64 bytes from 172.27.27.13: icmp_seq=2 ttl=64 time=0.452 ms
64 bytes from 172.27.27.13: icmp_seq=3 ttl=64 time=1.45 ms

--- 172.27.27.13 ping statistics ---
3 packets transmitted, 3 received, 0% packet loss, time 2003ms
rtt min/avg/max/mdev = 0.407/0.769/1.450/0.480 ms
";

    #[test]
    fn replies_are_read_and_shown_as_routeros_does() {
        let result = PingResult::parse("172.27.27.13", 3, THREE_OF_THREE);
        assert_eq!(result.received(), 3);
        assert_eq!(
            result.replies[0],
            Reply {
                seq: 0,
                size: 56,
                ttl: 64,
                time_us: 407
            }
        );
        let text = result.routeros();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5);
        assert!(lines[1].starts_with("    0 172.27.27.13"));
        assert!(lines[1].contains("  56  64 407us"));
        assert_eq!(
            lines[4],
            "    sent=3 received=3 packet-loss=0% min-rtt=407us avg-rtt=769us max-rtt=1ms450us"
        );
    }

    #[test]
    fn a_lost_reply_shows_as_timeout() {
        let output = "64 bytes from 10.0.0.1: icmp_seq=2 ttl=63 time=12.0 ms\n\
                      64 bytes from 10.0.0.1: icmp_seq=2 ttl=63 time=13.0 ms (DUP!)\n";
        let result = PingResult::parse("10.0.0.1", 3, output);
        assert_eq!(result.received(), 1);
        let text = result.routeros();
        assert!(text.lines().nth(1).unwrap().ends_with("timeout"));
        assert!(text.lines().nth(2).unwrap().contains("12ms"));
        assert!(text.contains("sent=3 received=1 packet-loss=66%"));
    }

    #[test]
    fn nothing_received_has_no_rtt_summary() {
        let result = PingResult::parse(
            "10.0.0.1",
            3,
            "From 10.0.0.2 icmp_seq=1 Destination Host Unreachable\n",
        );
        assert_eq!(result.received(), 0);
        assert!(result
            .routeros()
            .ends_with("sent=3 received=0 packet-loss=100%\n"));
    }
}
