//! The registrar's bindings (RFC 3261 §10.3): lifetimes, several contacts, removal, 423,
//! out-of-order REGISTERs, and where calls go.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sbc_config::net::Transport;
use sip_codec::EMPTY_HEADER;
use trunks::registrar::{Bindings, Origin, Outcome, MAX_CONTACTS, MIN_EXPIRES};

fn register(
    b: &Bindings,
    now: Instant,
    cseq: u32,
    contacts: &str,
    expires: Option<u32>,
    from: &str,
) -> Outcome {
    let mut text = format!(
        "REGISTER sip:sbc.test SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK{cseq}\r\nFrom: <sip:pbx1@sbc.test>;tag=1\r\nTo: <sip:pbx1@sbc.test>\r\nCall-ID: reg-1\r\nCSeq: {cseq} REGISTER\r\nMax-Forwards: 70\r\n"
    );
    if !contacts.is_empty() {
        text.push_str(&format!("Contact: {contacts}\r\n"));
    }
    if let Some(e) = expires {
        text.push_str(&format!("Expires: {e}\r\n"));
    }
    text.push_str("Content-Length: 0\r\n\r\n");
    let mut hs = [EMPTY_HEADER; 32];
    let msg = sip_codec::parse(text.as_bytes(), &mut hs).unwrap();
    let origin = Origin {
        source: from.parse().unwrap(),
        transport: Transport::Udp,
        conn: None,
    };
    b.register("pbx", &msg, origin, now)
}

fn contacts(o: &Outcome) -> Vec<(String, u32)> {
    match o {
        Outcome::Ok(v) => v
            .iter()
            .map(|(c, e)| (String::from_utf8_lossy(c).into_owned(), *e))
            .collect(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn bindings_live_expire_and_go_to_the_source_address() {
    let b = Bindings::default();
    let t0 = Instant::now();
    let o = register(
        &b,
        t0,
        1,
        "<sip:pbx1@10.0.0.5:5060>;expires=120, <sip:pbx1@10.0.0.6>",
        Some(600),
        "198.51.100.7:40000",
    );
    assert_eq!(
        contacts(&o),
        vec![
            ("sip:pbx1@10.0.0.5:5060".into(), 120),
            ("sip:pbx1@10.0.0.6".into(), 600)
        ]
    );
    // Calls go to the latest binding, at the address the REGISTER came from (NAT).
    let to = b.lookup("pbx", t0).unwrap();
    assert_eq!(
        to.source,
        "198.51.100.7:40000".parse::<SocketAddr>().unwrap()
    );
    // The first contact lapses after 120 s; the other stays.
    let later = t0 + Duration::from_secs(121);
    assert_eq!(b.all("pbx", later).len(), 1);
    assert_eq!(
        &*b.lookup("pbx", later).unwrap().contact,
        b"sip:pbx1@10.0.0.6"
    );
    assert!(b.lookup("pbx", t0 + Duration::from_secs(601)).is_none());
    assert!(b.lookup("other", t0).is_none());
}

#[test]
fn unregister_one_or_all_and_refuse_wrong_requests() {
    let b = Bindings::default();
    let t0 = Instant::now();
    register(
        &b,
        t0,
        1,
        "<sip:a@10.0.0.5>, <sip:b@10.0.0.5>",
        Some(300),
        "10.0.0.5:5060",
    );
    let o = register(
        &b,
        t0,
        2,
        "<sip:a@10.0.0.5>;expires=0",
        None,
        "10.0.0.5:5060",
    );
    assert_eq!(contacts(&o), vec![("sip:b@10.0.0.5".into(), 300)]);
    assert_eq!(
        register(&b, t0, 3, "*", Some(300), "10.0.0.5:5060"),
        Outcome::Bad("Contact: * needs Expires: 0 and no other contact")
    );
    assert_eq!(
        contacts(&register(&b, t0, 4, "*", Some(0), "10.0.0.5:5060")),
        vec![]
    );
    assert!(b.lookup("pbx", t0).is_none());
    // Too brief: 423 with Min-Expires.
    assert_eq!(
        register(&b, t0, 5, "<sip:a@10.0.0.5>", Some(10), "10.0.0.5:5060"),
        Outcome::IntervalTooBrief(MIN_EXPIRES)
    );
    // Too long: cut to the maximum.
    let o = register(&b, t0, 6, "<sip:a@10.0.0.5>", Some(86_400), "10.0.0.5:5060");
    assert_eq!(contacts(&o), vec![("sip:a@10.0.0.5".into(), 3600)]);
    // An older CSeq of the same Call-ID arriving late: 500, the binding unchanged.
    assert_eq!(
        register(&b, t0, 5, "<sip:a@10.0.0.5>", Some(60), "10.0.0.5:5060"),
        Outcome::OutOfOrder
    );
    // A query (no Contact) lists the bindings.
    assert_eq!(
        contacts(&register(&b, t0, 7, "", None, "10.0.0.5:5060")).len(),
        1
    );
}

#[test]
fn at_most_max_contacts_and_reachable_ones_are_preferred() {
    let b = Bindings::default();
    let t0 = Instant::now();
    for i in 0..MAX_CONTACTS + 3 {
        let o = register(
            &b,
            t0 + Duration::from_secs(i as u64),
            i as u32 + 1,
            &format!("<sip:u@10.0.1.{i}>"),
            Some(300),
            "10.0.0.5:5060",
        );
        assert!(contacts(&o).len() <= MAX_CONTACTS);
    }
    let now = t0 + Duration::from_secs(20);
    assert_eq!(b.all("pbx", now).len(), MAX_CONTACTS);
    let latest = b.lookup("pbx", now).unwrap();
    assert_eq!(
        &*latest.contact,
        format!("sip:u@10.0.1.{}", MAX_CONTACTS + 2).as_bytes()
    );
    assert!(b.set_reachable("pbx", &latest.contact, false));
    assert!(!b.set_reachable("pbx", &latest.contact, false), "no change");
    let next = b.lookup("pbx", now).unwrap();
    assert_ne!(
        next.contact, latest.contact,
        "an unreachable contact is used last"
    );
}
