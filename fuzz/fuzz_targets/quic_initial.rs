//! QUIC Initial parsing never panics: the walk over coalesced packets, decryption, the frame
//! walk and CRYPTO reassembly take any bytes. And any payload sealed into an Initial opens again
//! to the same bytes, so the frames of authenticated packets get fuzzed too (random bytes almost
//! never pass authentication).
#![no_main]
use bawaba_wire::quic::{self, CryptoReassembly, Frame, Frames, InitialHeader, InitialKeys, PacketType, Version};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // As a datagram.
    let mut out = vec![0u8; data.len()];
    let mut reassembly = CryptoReassembly::new();
    for packet in quic::packets(data) {
        let Ok(packet) = packet else { break };
        assert!(packet.offset + packet.bytes.len() <= data.len());
        if packet.header.packet_type != PacketType::Initial {
            continue;
        }
        if let Ok(initial) = quic::decrypt_client_initial(packet.bytes, &mut out) {
            let _ = reassembly.insert_packet(&initial);
            let _ = reassembly.first_message();
        }
    }

    // As a decrypted payload.
    let mut reassembly = CryptoReassembly::new();
    for frame in Frames::new(data) {
        match frame {
            Ok(Frame::Crypto(c)) => {
                let _ = reassembly.insert_frame(&c);
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    let _ = reassembly.first_message();
    assert!(reassembly.contiguous().len() <= CryptoReassembly::CAPACITY);

    // Round trip: the first bytes are the DCID, the rest the payload.
    let (dcid, payload) = data.split_at(data.len().min(8));
    let version = if dcid.first().is_some_and(|b| b & 1 == 1) { Version::V2 } else { Version::V1 };
    let keys = InitialKeys::client(version, dcid).expect("v1 and v2 have Initial keys");
    let header = InitialHeader { dcid, scid: &[], token: &[], packet_number: payload.len() as u32 };
    let mut sealed = vec![0u8; payload.len() + 64];
    let len = keys.seal(&header, payload, &mut sealed).expect("64 spare bytes hold header and tag");
    let mut opened = vec![0u8; len];
    let initial = quic::decrypt_client_initial(&sealed[..len], &mut opened).expect("a sealed Initial opens");
    assert_eq!(initial.payload, payload);
    assert_eq!(initial.packet_number, u64::from(header.packet_number));
    let mut reassembly = CryptoReassembly::new();
    let _ = reassembly.insert_packet(&initial);
    let _ = reassembly.first_message();
});
