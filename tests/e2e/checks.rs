//! Assertions on what each SIPp received, read from its `-trace_msg` log.
//!
//! [`sip_rules`] holds for any correct peer, so it also runs on the direct (no sbcd) flows,
//! which keeps the checker honest. [`b2bua`] is the topology-hiding contract of DESIGN.md
//! between the two legs of one call.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::net::SocketAddr;

use crate::sip::{param, SipMsg};
use crate::sipp::SippRun;
use crate::util::{host_port, CALLED};

/// `SIP/2.0/UDP host:port;params` -> `host:port` (lower case).
fn sent_by(via: &str) -> String {
    let after_proto = via.split_whitespace().nth(1).unwrap_or("");
    after_proto
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

#[derive(Default)]
struct Dialog {
    /// CSeq and method of the last request that took a new CSeq (not ACK / CANCEL).
    last: Option<(u32, String)>,
    /// (branch, CSeq) of every INVITE.
    invites: Vec<(String, u32)>,
    branches: HashSet<String>,
}

/// RFC 3261 rules on the messages `run` received, whoever sent them:
/// - requests: CSeq method = request method; Max-Forwards present; within one dialog (Call-ID,
///   From tag) each new request takes the previous CSeq + 1 and a new branch; an ACK carries
///   its INVITE's CSeq (and, for a non-2xx, its branch); a CANCEL has its INVITE's branch and
///   CSeq number;
/// - responses: exactly one Via, the one this side put in the request (branch and sent-by).
pub(crate) fn sip_rules(run: &SippRun) -> Vec<String> {
    let mut problems = Vec::new();
    let who = &run.name;
    let mut dialogs: HashMap<(String, String), Dialog> = HashMap::new();
    let mut transactions: HashSet<(String, String, String, u32)> = HashSet::new();

    for t in run.received() {
        let m = &t.msg;
        let Some(method) = m.method() else {
            continue;
        };
        let (Some(call_id), Some(from_tag), Some((cseq, cseq_method)), Some(branch)) =
            (m.call_id(), m.tag_in_from(), m.cseq(), m.top_via_branch())
        else {
            problems.push(format!(
                "{who} received a request without Call-ID, From tag, CSeq or Via branch: {}",
                m.summary()
            ));
            continue;
        };
        if !cseq_method.eq_ignore_ascii_case(method) {
            problems.push(format!(
                "{who} received {method} with CSeq method {cseq_method}: {}",
                m.summary()
            ));
        }
        if !transactions.insert((call_id.to_owned(), branch.clone(), method.to_owned(), cseq)) {
            continue; // a retransmission
        }
        if m.max_forwards().is_none() {
            problems.push(format!(
                "{who} received {method} without Max-Forwards: {}",
                m.summary()
            ));
        }
        let dialog = dialogs.entry((call_id.to_owned(), from_tag)).or_default();
        match method {
            "ACK" => {
                if let Some((_, invite_cseq)) = dialog.invites.iter().find(|(b, _)| *b == branch) {
                    if cseq != *invite_cseq {
                        problems.push(format!(
                            "{who} received an ACK (non-2xx, branch {branch}) with CSeq {cseq}; its INVITE had CSeq {invite_cseq}"
                        ));
                    }
                } else if let Some((_, invite_cseq)) = dialog.invites.last() {
                    if cseq != *invite_cseq {
                        problems.push(format!(
                            "{who} received an ACK with CSeq {cseq}; the INVITE it acknowledges had CSeq {invite_cseq} (Call-ID {call_id})"
                        ));
                    }
                } else {
                    problems.push(format!("{who} received an ACK for no INVITE it saw: {}", m.summary()));
                }
            }
            "CANCEL" => match dialog.invites.iter().find(|(b, _)| *b == branch) {
                Some((_, invite_cseq)) if *invite_cseq != cseq => problems.push(format!(
                    "{who} received a CANCEL with CSeq {cseq}; the INVITE it cancels had CSeq {invite_cseq}"
                )),
                Some(_) => {}
                None => problems.push(format!(
                    "{who} received a CANCEL whose branch {branch} matches no INVITE it received (RFC 3261 9.1)"
                )),
            },
            _ => {
                if let Some((prev, prev_method)) = &dialog.last {
                    if cseq != prev + 1 {
                        problems.push(format!(
                            "{who} received {method} CSeq {cseq} after {prev_method} CSeq {prev} in one dialog \
                             (Call-ID {call_id}): expected CSeq {}",
                            prev + 1
                        ));
                    }
                }
                if !dialog.branches.insert(branch.clone()) {
                    problems.push(format!("{who} received {method} reusing branch {branch} of an earlier transaction"));
                }
                dialog.last = Some((cseq, method.to_owned()));
                if method == "INVITE" {
                    dialog.invites.push((branch, cseq));
                }
            }
        }
    }

    // Responses: the Via this side wrote, and nothing else.
    let mut vias_sent: HashMap<(String, u32, String), String> = HashMap::new();
    for t in run.sent() {
        let m = &t.msg;
        if !m.is_request() {
            continue;
        }
        if let (Some(call_id), Some((cseq, method)), Some(via)) =
            (m.call_id(), m.cseq(), m.vias().first())
        {
            vias_sent
                .entry((call_id.to_owned(), cseq, method.to_ascii_uppercase()))
                .or_insert_with(|| via.clone());
        }
    }
    for t in run.received() {
        let m = &t.msg;
        let (Some(status), Some(call_id), Some((cseq, method))) =
            (m.status(), m.call_id(), m.cseq())
        else {
            continue;
        };
        let key = (call_id.to_owned(), cseq, method.to_ascii_uppercase());
        let Some(via) = vias_sent.get(&key) else {
            problems.push(format!(
                "{who} received {status} for {cseq} {method} (Call-ID {call_id}), a request it never sent"
            ));
            continue;
        };
        let vias = m.vias();
        let same = vias.len() == 1
            && sent_by(&vias[0]) == sent_by(via)
            && param(&vias[0], "branch") == param(via, "branch");
        if !same {
            problems.push(format!(
                "{who} received {status} for {cseq} {method} with Via {vias:?}; expected exactly its own Via {via:?}"
            ));
        }
    }
    problems
}

/// What to expect between the two legs of one call through sbcd.
#[derive(Debug, Clone)]
pub(crate) struct Expect {
    /// Forwarding hops between caller and callee: 1 (sbcd), 2 (sbcd then Kamailio).
    pub(crate) hops: u32,
    /// Via values on requests reaching the callee: 1 (sbcd's), 2 behind Kamailio.
    pub(crate) callee_vias: usize,
    /// Further addresses the caller may not see (a carrier that failed, a proxy behind sbcd).
    pub(crate) hidden_from_caller: Vec<SocketAddr>,
}

impl Default for Expect {
    fn default() -> Self {
        Self {
            hops: 1,
            callee_vias: 1,
            hidden_from_caller: Vec::new(),
        }
    }
}

/// Tags a side chose: From tags of its requests, To tags of its responses.
fn own_tags(run: &SippRun) -> HashSet<String> {
    run.sent()
        .filter_map(|t| {
            if t.msg.is_request() {
                t.msg.tag_in_from()
            } else {
                t.msg.tag_in_to()
            }
        })
        .collect()
}

fn call_ids(run: &SippRun) -> HashSet<String> {
    run.traffic
        .iter()
        .filter_map(|t| t.msg.call_id().map(str::to_owned))
        .collect()
}

/// The header line of `raw` that contains `needle`, if any (an address must end at a non-digit).
fn line_with(raw: &str, needle: &str, address: bool) -> Option<String> {
    raw.lines().find_map(|line| {
        let line = line.trim_end_matches('\r');
        line.match_indices(needle)
            .any(|(i, _)| {
                !address
                    || !line[i + needle.len()..]
                        .chars()
                        .next()
                        .is_some_and(|c| c.is_ascii_digit())
            })
            .then(|| line.to_owned())
    })
}

fn first_line(m: &SipMsg) -> &str {
    &m.start
}

/// The topology-hiding contract between the two legs of one call:
/// - the callee sees its own Call-ID, never the caller's (and vice versa), and neither side's
///   tags appear on the other leg;
/// - no message carries the other SIPp's `address:port` (Via, Contact, Record-Route, Route,
///   From, To, SDP o=, anything);
/// - requests reach the callee with `callee_vias` Via values, and the caller with one;
/// - the callee's initial INVITE has Max-Forwards = caller's - `hops`, and the called number as
///   the Request-URI user.
pub(crate) fn b2bua(caller: &SippRun, callee: &SippRun, expect: &Expect) -> Vec<String> {
    let mut problems = Vec::new();

    let (caller_ids, callee_ids) = (call_ids(caller), call_ids(callee));
    for id in caller_ids.intersection(&callee_ids) {
        problems.push(format!(
            "Call-ID {id:?} is on both legs ({} and {}): sbcd must give the outbound leg its own Call-ID",
            caller.name, callee.name
        ));
    }

    let no_more: &[SocketAddr] = &[];
    let pairs = [
        (caller, callee, &caller_ids, no_more),
        (
            callee,
            caller,
            &callee_ids,
            expect.hidden_from_caller.as_slice(),
        ),
    ];
    for (origin, receiver, origin_ids, more_hidden) in pairs {
        let tags = own_tags(origin);
        let mut hidden: Vec<String> = vec![host_port(origin.local)];
        hidden.extend(more_hidden.iter().map(|a| host_port(*a)));
        for t in receiver.received() {
            for id in origin_ids {
                if let Some(line) = line_with(&t.raw, id, false) {
                    problems.push(format!(
                        "{} received {:?} carrying {}'s Call-ID {id:?} in: {line}",
                        receiver.name,
                        first_line(&t.msg),
                        origin.name
                    ));
                }
            }
            for tag in &tags {
                if let Some(line) = line_with(&t.raw, tag, false) {
                    problems.push(format!(
                        "{} received {:?} carrying {}'s tag {tag:?} in: {line}",
                        receiver.name,
                        first_line(&t.msg),
                        origin.name
                    ));
                }
            }
            for addr in &hidden {
                if let Some(line) = line_with(&t.raw, addr, true) {
                    problems.push(format!(
                        "{} received {:?} carrying the address {addr} (of {}) in: {line}",
                        receiver.name,
                        first_line(&t.msg),
                        if *addr == hidden[0] {
                            origin.name.as_str()
                        } else {
                            "another peer"
                        }
                    ));
                }
            }
        }
    }

    for (run, want) in [(callee, expect.callee_vias), (caller, 1)] {
        for t in run.received().filter(|t| t.msg.is_request()) {
            let vias = t.msg.vias();
            if vias.len() != want {
                problems.push(format!(
                    "{} received {} with {} Via values, expected {want}: {vias:?}",
                    run.name,
                    t.msg.summary(),
                    vias.len()
                ));
            }
        }
    }

    let caller_mf = caller
        .sent()
        .find(|t| t.msg.method() == Some("INVITE"))
        .and_then(|t| t.msg.max_forwards());
    let initial_invites = callee
        .received()
        .filter(|t| t.msg.method() == Some("INVITE") && t.msg.tag_in_to().is_none());
    for t in initial_invites {
        if let (Some(sent), Some(got)) = (caller_mf, t.msg.max_forwards()) {
            let want = sent.saturating_sub(expect.hops);
            if got != want {
                problems.push(format!(
                    "{} received INVITE with Max-Forwards {got}; {} sent {sent}, so expected {want} after {} hop(s)",
                    callee.name, caller.name, expect.hops
                ));
            }
        }
        if t.msg.ruri_user() != Some(CALLED) {
            problems.push(format!(
                "{} received INVITE for {:?}, expected the called number {CALLED} as Request-URI user",
                callee.name,
                t.msg.request_uri()
            ));
        }
    }
    problems
}

/// Messages with this method / status that `run` received (retransmissions included).
pub(crate) fn count_received(run: &SippRun, what: &str) -> usize {
    run.received()
        .filter(|t| match what.parse::<u16>() {
            Ok(code) => t.msg.status() == Some(code),
            Err(_) => t.msg.method() == Some(what),
        })
        .count()
}

/// Formats the outcome of a flow; `None` when every SIPp succeeded and no check failed.
pub(crate) fn verdict(title: &str, runs: &[&SippRun], problems: &[String]) -> Option<String> {
    let failed: Vec<&&SippRun> = runs.iter().filter(|r| !r.ok()).collect();
    if failed.is_empty() && problems.is_empty() {
        return None;
    }
    let mut out = format!("FLOW FAILED: {title}\n");
    for run in &failed {
        let _ = writeln!(
            out,
            "  * {} did not complete its scenario{}",
            run.describe,
            if run.received().next().is_none() {
                " and received nothing"
            } else {
                ""
            }
        );
    }
    if !problems.is_empty() {
        let _ = writeln!(out, "  protocol checks on the traced messages:");
        for p in problems {
            let _ = writeln!(out, "  * {p}");
        }
    }
    let _ = writeln!(out, "\nWhat each SIPp saw:");
    for run in runs {
        out.push_str(&run.report());
    }
    Some(out)
}
