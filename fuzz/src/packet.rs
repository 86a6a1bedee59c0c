//! Packet-side checks: header view, InetAddress, whole-packet decode, fragmentation and
//! reassembly, and every verb payload parser.
use zt_crypto::armor::PeerKey;
use zt_wire::compress::decompress_packet;
use zt_wire::fragment::{split, Fragment, FragmentRepr, Reassembler, Reassembly, RX_QUEUE_SIZE};
use zt_wire::header::{
    classify_datagram, HeaderRepr, PacketHeader, Verb, HEADER_LEN, MAX_PACKET_LEN,
};
use zt_wire::inet::InetAddress;
use zt_wire::verbs::{self, hello, Payload};

/// A fixed key: the point is that dearmor never panics, not that the MAC passes.
const FUZZ_KEY: [u8; 48] = [0x5a; 48];

/// Header view, header repr stability, InetAddress stability, and the whole receive path
/// (dearmor, decompress, HELLO moon cipher) on arbitrary bytes.
pub fn packet_header(data: &[u8]) {
    let _ = classify_datagram(data);
    if let Ok(view) = PacketHeader::new_checked(data) {
        let repr = HeaderRepr::parse(&view);
        let mut out = Vec::new();
        repr.emit_to_vec(&mut out);
        assert_eq!(out.len(), HEADER_LEN);
        let again = HeaderRepr::parse(&PacketHeader::new_checked(&out[..]).expect("emitted"));
        assert_eq!(again, repr);
        let _ = (
            view.cipher_suite(),
            view.payload().len(),
            view.verb().name(),
        );

        let mut copy = data.to_vec();
        let _ = decompress_packet(&mut copy);
        if let Ok(decoded) = verbs::decode(data.to_vec(), &PeerKey::new(FUZZ_KEY)) {
            assert!(decoded.plaintext.len() >= HEADER_LEN);
            let _ = Payload::parse(decoded.verb(), decoded.payload());
        }
    }
    if let Ok(a) = InetAddress::parse(data) {
        let mut out = Vec::new();
        a.write(&mut out);
        assert_eq!(out.len(), a.wire_len());
        assert_eq!(InetAddress::parse(&out).expect("emitted address"), a);
        if let Some(s) = a.socket_addr() {
            assert_eq!(InetAddress::from(s), a);
        }
        assert_eq!(a.to_string().parse::<InetAddress>().expect("text form"), a);
    }
}

/// Split the input into datagrams (each preceded by a 2-byte length and a 1-byte clock step)
/// and feed them to one reassembler; then check split → reassemble on the first datagram.
pub fn fragment(data: &[u8]) {
    if let Ok(f) = Fragment::new_checked(data) {
        let repr = FragmentRepr::parse(&f);
        let mut out = Vec::new();
        repr.emit(&mut out);
        let f2 = Fragment::new_checked(&out[..]).expect("emitted fragment");
        assert_eq!(FragmentRepr::parse(&f2), repr);
    }

    let mut q = Reassembler::new();
    let mut now_ms = 0u64;
    let mut rest = data;
    let mut first = None;
    while rest.len() >= 3 {
        let len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
        now_ms += u64::from(rest[2]) * 40;
        rest = &rest[3..];
        let d = &rest[..len.min(rest.len())];
        rest = &rest[d.len()..];
        first.get_or_insert(d);
        let r = if zt_wire::header::is_fragment(d) {
            q.on_fragment(now_ms, d)
        } else {
            q.on_head(now_ms, d)
        };
        if let Ok(Reassembly::Complete(p)) = r {
            assert!(p.len() <= MAX_PACKET_LEN);
            assert!(PacketHeader::new_checked(&p[..]).is_ok());
        }
        assert!(q.len() <= RX_QUEUE_SIZE);
    }

    // Any packet that splits must reassemble to itself, whatever order the pieces arrive in.
    let Some(packet) = first else { return };
    let mtu = 28 + (data.len() % 1500);
    if let Ok(pieces) = split(packet, mtu) {
        assert!(pieces.iter().all(|p| p.len() <= mtu));
        if pieces.len() == 1 {
            assert_eq!(pieces[0], packet);
            return;
        }
        let mut q = Reassembler::new();
        let mut whole = None;
        for (i, p) in pieces.iter().enumerate().rev() {
            let r = if i == 0 {
                q.on_head(0, p)
            } else {
                q.on_fragment(0, p)
            };
            if let Reassembly::Complete(w) = r.expect("own fragments are valid") {
                whole = Some(w);
            }
        }
        assert_eq!(whole.as_deref(), Some(packet));
    }
}

/// First byte: verb number; rest: payload. Every verb parser must be stable:
/// emit(parse(x)) parses back to the same value and re-emits the same bytes.
pub fn verbs(data: &[u8]) {
    let Some((&verb_byte, payload)) = data.split_first() else {
        return;
    };
    let verb = Verb::from_verb_byte(verb_byte);
    let _ = hello::moon_section_offset(payload);
    let _ = hello::peek_identity(payload);
    let Ok(parsed) = Payload::parse(verb, payload) else {
        return;
    };
    assert_eq!(parsed.verb(), verb);
    let emitted = parsed.to_vec();
    let again = Payload::parse(verb, &emitted).expect("emitted payload parses");
    assert_eq!(again, parsed);
    assert_eq!(again.to_vec(), emitted);
    if let Payload::Ok(ok) = &parsed {
        let _ = ok.body.config_ack();
    }
}
