//! Initial packet protection: key derivation (RFC 9001 section 5.2, RFC 9369 section 3.3),
//! header protection (RFC 9001 section 5.4) and AES-128-GCM payload protection (section 5.3).

use std::fmt;

use aes::cipher::{BlockEncrypt, KeyInit};
use aes::Aes128;
use aes_gcm::aead::AeadInPlace;
use aes_gcm::Aes128Gcm;
use hkdf::Hkdf;
use sha2::Sha256;

use super::header::{LongHeader, PacketType};
use super::{put_varint, CryptoFrames, Frames, QuicError, Version, MAX_CID_LEN, TAG_LEN};

/// The Initial salt of QUIC v1 (RFC 9001 section 5.2).
const V1_SALT: [u8; 20] = [
    0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad, 0xcc, 0xbb, 0x7f,
    0x0a,
];
/// The Initial salt of QUIC v2 (RFC 9369 section 3.3.1).
const V2_SALT: [u8; 20] = [
    0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93, 0x81, 0xbe, 0x6e, 0x26, 0x9d, 0xcb, 0xf9, 0xbd, 0x2e,
    0xd9,
];

/// The HKDF labels for key, IV and header protection key of a version: RFC 9001 section 5.1
/// for v1, RFC 9369 section 3.3.2 for v2.
struct Labels {
    salt: &'static [u8; 20],
    key: &'static [u8],
    iv: &'static [u8],
    hp: &'static [u8],
}

fn labels(version: Version) -> Option<Labels> {
    if version == Version::V1 {
        Some(Labels { salt: &V1_SALT, key: b"quic key", iv: b"quic iv", hp: b"quic hp" })
    } else if version == Version::V2 {
        Some(Labels { salt: &V2_SALT, key: b"quicv2 key", iv: b"quicv2 iv", hp: b"quicv2 hp" })
    } else {
        None
    }
}

/// HKDF-Expand-Label with an empty context (RFC 8446 section 7.1): the info is the output
/// length (2 bytes), the label with the "tls13 " prefix (length-prefixed) and an empty context.
fn expand_label(secret: &[u8; 32], label: &[u8], out: &mut [u8]) {
    const PREFIX: &[u8] = b"tls13 ";
    // Both lengths are constants of this file: out is at most 32 bytes, labels at most 10.
    let out_len = (out.len() as u16).to_be_bytes();
    let label_len = [(PREFIX.len() + label.len()) as u8];
    let hk = Hkdf::<Sha256>::from_prk(secret).expect("a 32-byte secret is a valid SHA-256 PRK");
    hk.expand_multi_info(&[&out_len, &label_len, PREFIX, label, &[0]], out)
        .expect("HKDF-SHA256 can expand to 32 bytes");
}

/// The client's or the server's Initial secret: HKDF-Extract of the Destination Connection ID
/// with the version's salt, then HKDF-Expand-Label "client in" or "server in" (RFC 9001 section
/// 5.2; RFC 9369 section 3.3.2 keeps these labels).
fn initial_secret(labels: &Labels, dcid: &[u8], side: &[u8]) -> [u8; 32] {
    let (prk, _) = Hkdf::<Sha256>::extract(Some(labels.salt), dcid);
    let mut prk_bytes = [0u8; 32];
    prk_bytes.copy_from_slice(&prk);
    let mut secret = [0u8; 32];
    expand_label(&prk_bytes, side, &mut secret);
    secret
}

/// The AEAD key, IV and header protection key expanded from a secret (RFC 9001 section 5.1).
struct KeyMaterial {
    key: [u8; 16],
    iv: [u8; 12],
    hp: [u8; 16],
}

impl KeyMaterial {
    fn derive(labels: &Labels, secret: &[u8; 32]) -> KeyMaterial {
        let mut m = KeyMaterial { key: [0; 16], iv: [0; 12], hp: [0; 16] };
        expand_label(secret, labels.key, &mut m.key);
        expand_label(secret, labels.iv, &mut m.iv);
        expand_label(secret, labels.hp, &mut m.hp);
        m
    }
}

/// The keys that protect one direction of a connection's Initial packets: the AEAD key and IV
/// and the header protection key (RFC 9001 section 5.1), ready to use. Deriving them costs a
/// handful of SHA-256 blocks and an AES key schedule; a caller may keep them per connection.
#[derive(Clone)]
pub struct InitialKeys {
    version: Version,
    iv: [u8; 12],
    aead: Aes128Gcm,
    hp_cipher: Aes128,
}

impl fmt::Debug for InitialKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InitialKeys").field("version", &self.version).finish_non_exhaustive()
    }
}

/// What [`InitialKeys::seal`] writes into the header of an Initial packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitialHeader<'a> {
    /// Destination Connection ID (at most 20 bytes).
    pub dcid: &'a [u8],
    /// Source Connection ID (at most 20 bytes).
    pub scid: &'a [u8],
    /// Token (empty unless the server sent one).
    pub token: &'a [u8],
    /// Packet number, always encoded in 4 bytes.
    pub packet_number: u32,
}

/// A decrypted Initial packet. Its bytes live in the buffer it was decrypted into, with header
/// protection removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Initial<'a> {
    /// The unprotected header: its `first_byte` now shows the packet number length.
    pub header: LongHeader<'a>,
    /// The packet number as sent (truncated to 1 to 4 bytes, RFC 9000 section 17.1). A client's
    /// first Initial packets count from 0, so this is the full number for them.
    pub packet_number: u64,
    /// Offset of the payload in the packet.
    pub payload_offset: usize,
    /// The plaintext payload: frames, without the authentication tag.
    pub payload: &'a [u8],
}

impl<'a> Initial<'a> {
    /// The frames of the payload; errors carry offsets within the packet.
    pub fn frames(&self) -> Frames<'a> {
        Frames::with_offset(self.payload, self.payload_offset)
    }

    /// The CRYPTO frames of the payload, checking the other frames on the way.
    pub fn crypto_frames(&self) -> CryptoFrames<'a> {
        CryptoFrames::new(self.frames())
    }
}

impl InitialKeys {
    /// The keys protecting a client's Initial packets, derived from the Destination Connection
    /// ID of its first Initial (RFC 9001 section 5.2). `None` for a version other than v1 or v2.
    pub fn client(version: Version, original_dcid: &[u8]) -> Option<InitialKeys> {
        InitialKeys::derive(version, original_dcid, b"client in")
    }

    /// The keys protecting a server's Initial packets, derived from the Destination Connection
    /// ID of the client's first Initial. `None` for a version other than v1 or v2.
    pub fn server(version: Version, original_dcid: &[u8]) -> Option<InitialKeys> {
        InitialKeys::derive(version, original_dcid, b"server in")
    }

    fn derive(version: Version, original_dcid: &[u8], side: &[u8]) -> Option<InitialKeys> {
        let labels = labels(version)?;
        let secret = initial_secret(&labels, original_dcid, side);
        let KeyMaterial { key, iv, hp } = KeyMaterial::derive(&labels, &secret);
        Some(InitialKeys { version, iv, aead: Aes128Gcm::new(&key.into()), hp_cipher: Aes128::new(&hp.into()) })
    }

    /// The version these keys are for.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The header protection mask: AES-128-ECB of the 16-byte sample (RFC 9001 section 5.4.3).
    fn mask(&self, sample: &[u8]) -> [u8; 16] {
        let mut block = [0u8; 16];
        block.copy_from_slice(sample);
        let mut block = block.into();
        self.hp_cipher.encrypt_block(&mut block);
        block.into()
    }

    /// The AEAD nonce: the IV XOR the packet number, left-padded (RFC 9001 section 5.3).
    fn nonce(&self, packet_number: u64) -> [u8; 12] {
        let mut nonce = self.iv;
        for (n, p) in nonce[4..].iter_mut().zip(packet_number.to_be_bytes()) {
            *n ^= p;
        }
        nonce
    }

    /// Copies the Initial packet at the start of `packet` (which may go on with coalesced
    /// packets) into `out` and decrypts it there; `packet` is left as it was. On error, what
    /// `out` holds is unspecified.
    pub fn decrypt<'o>(&self, packet: &[u8], out: &'o mut [u8]) -> Result<Initial<'o>, QuicError> {
        let len = LongHeader::parse(packet)?.packet_len;
        let available = out.len();
        let dst = out.get_mut(..len).ok_or(QuicError::BufferTooSmall { needed: len, available })?;
        dst.copy_from_slice(&packet[..len]);
        self.decrypt_in_place(dst)
    }

    /// Removes header protection from the Initial packet at the start of `packet` and decrypts
    /// its payload, both in place. On error, what `packet` holds is unspecified.
    pub fn decrypt_in_place<'o>(&self, packet: &'o mut [u8]) -> Result<Initial<'o>, QuicError> {
        let header = LongHeader::parse(packet)?;
        if header.packet_type != PacketType::Initial {
            return Err(QuicError::BadPacketType { offset: 0, packet_type: header.packet_type });
        }
        if header.version != self.version {
            return Err(QuicError::VersionMismatch { offset: 0, packet: header.version, keys: self.version });
        }
        let (pn_offset, packet_len) = (header.pn_offset, header.packet_len);
        let packet: &'o mut [u8] = &mut packet[..packet_len];

        // RFC 9001 section 5.4.2: the sample starts 4 bytes after the packet number's start.
        let sample_end = pn_offset + 4 + 16;
        let sample = packet
            .get(pn_offset + 4..sample_end)
            .ok_or(QuicError::Truncated { offset: packet_len, what: "header protection sample" })?;
        let mask = self.mask(sample);
        // Long header: the low 4 bits of the first byte are protected (section 5.4.1).
        packet[0] ^= mask[0] & 0x0f;
        let pn_len = usize::from(packet[0] & 0x03) + 1;
        let mut packet_number = 0u64;
        for (b, m) in packet[pn_offset..pn_offset + pn_len].iter_mut().zip(&mask[1..]) {
            *b ^= m;
            packet_number = (packet_number << 8) | u64::from(*b);
        }

        let payload_offset = pn_offset + pn_len;
        // sample_end <= packet_len, so the tag starts at or after the payload.
        let tag_offset = packet_len - TAG_LEN;
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&packet[tag_offset..]);
        let (aad, body) = packet.split_at_mut(payload_offset);
        self.aead
            .decrypt_in_place_detached(
                &self.nonce(packet_number).into(),
                aad,
                &mut body[..tag_offset - payload_offset],
                &tag.into(),
            )
            .map_err(|_| QuicError::DecryptionFailed { offset: 0 })?;
        // RFC 9000 section 17.2: reserved bits must be 0 once protection is removed.
        if packet[0] & 0x0c != 0 {
            return Err(QuicError::ReservedBits { offset: 0, first_byte: packet[0] });
        }

        let packet: &'o [u8] = packet;
        Ok(Initial {
            header: LongHeader::parse(packet)?,
            packet_number,
            payload_offset,
            payload: &packet[payload_offset..tag_offset],
        })
    }

    /// Builds a protected Initial packet carrying `payload` (frames, PADDING included) into
    /// `out` and returns its length: what a client (or a test) sends. The packet number takes
    /// 4 bytes and the Length field 2 (4 above 16383). [`QuicError::BufferTooSmall`] also
    /// stands for a payload of 2^30 bytes or more, which no packet can hold.
    pub fn seal(&self, header: &InitialHeader<'_>, payload: &[u8], out: &mut [u8]) -> Result<usize, QuicError> {
        for (cid, offset) in [(header.dcid, 5), (header.scid, 6 + header.dcid.len())] {
            if cid.len() > MAX_CID_LEN {
                return Err(QuicError::ConnectionIdTooLong { offset, len: cid.len().min(255) as u8 });
            }
        }
        let token_len_size = varint_size(header.token.len() as u64);
        let length = 4 + payload.len() + TAG_LEN;
        let length_size = if length < 1 << 14 { 2 } else { 4 };
        let pn_offset = 7 + header.dcid.len() + header.scid.len() + token_len_size + header.token.len() + length_size;
        let total = pn_offset + length;
        if out.len() < total || length >= 1 << 30 {
            return Err(QuicError::BufferTooSmall { needed: total, available: out.len() });
        }
        let out = &mut out[..total];

        // RFC 9000 section 17.2: header form, fixed bit, type, reserved 0, packet number length 4.
        out[0] = 0xc0 | PacketType::Initial.bits(self.version) | 0x03;
        out[1..5].copy_from_slice(&self.version.0.to_be_bytes());
        let mut pos = 5;
        for cid in [header.dcid, header.scid] {
            out[pos] = cid.len() as u8;
            out[pos + 1..pos + 1 + cid.len()].copy_from_slice(cid);
            pos += 1 + cid.len();
        }
        // Cannot happen: the sizes above were chosen to fit, and the length is below 2^30.
        let too_long = QuicError::BufferTooSmall { needed: total, available: total };
        put_varint(&mut out[pos..], header.token.len() as u64, token_len_size).ok_or(too_long.clone())?;
        pos += token_len_size;
        out[pos..pos + header.token.len()].copy_from_slice(header.token);
        pos += header.token.len();
        put_varint(&mut out[pos..], length as u64, length_size).ok_or(too_long.clone())?;
        out[pn_offset..pn_offset + 4].copy_from_slice(&header.packet_number.to_be_bytes());

        let payload_offset = pn_offset + 4;
        out[payload_offset..payload_offset + payload.len()].copy_from_slice(payload);
        self.protect_in_place(out, pn_offset, u64::from(header.packet_number)).map_err(|()| too_long)?;
        Ok(total)
    }
}

impl InitialKeys {
    /// Protects a packet whose header is written, unprotected, up to `pn_offset` plus the packet
    /// number; the payload follows, then room for the tag at the end of `packet`: encrypts the
    /// payload with the header as associated data (RFC 9001 section 5.3), writes the tag, then
    /// applies header protection (section 5.4). Fails only for a payload too long for AES-GCM.
    fn protect_in_place(&self, packet: &mut [u8], pn_offset: usize, packet_number: u64) -> Result<(), ()> {
        let pn_len = usize::from(packet[0] & 0x03) + 1;
        let payload_offset = pn_offset + pn_len;
        let tag_offset = packet.len() - TAG_LEN;
        let (aad, body) = packet.split_at_mut(payload_offset);
        let tag = self
            .aead
            .encrypt_in_place_detached(&self.nonce(packet_number).into(), aad, &mut body[..tag_offset - payload_offset])
            .map_err(|_| ())?;
        packet[tag_offset..].copy_from_slice(&tag);
        let mask = self.mask(&packet[pn_offset + 4..pn_offset + 20]);
        packet[0] ^= mask[0] & 0x0f;
        for (b, m) in packet[pn_offset..payload_offset].iter_mut().zip(&mask[1..]) {
            *b ^= m;
        }
        Ok(())
    }
}

/// Bytes the shortest variable-length encoding of `value` takes.
fn varint_size(value: u64) -> usize {
    match value {
        0..=0x3f => 1,
        0x40..=0x3fff => 2,
        0x4000..=0x3fff_ffff => 4,
        _ => 8,
    }
}

/// Decrypts a client's Initial packet found at the start of `packet` into `out`, with keys
/// derived from the packet's own Destination Connection ID. That is right for the packets of a
/// client's first flight, which carry the ClientHello; once a server has answered, the client
/// switches to the server's connection ID and [`InitialKeys::client`] with the original one is
/// needed instead.
pub fn decrypt_client_initial<'o>(packet: &[u8], out: &'o mut [u8]) -> Result<Initial<'o>, QuicError> {
    let header = LongHeader::parse(packet)?;
    if header.packet_type != PacketType::Initial {
        return Err(QuicError::BadPacketType { offset: 0, packet_type: header.packet_type });
    }
    let keys = InitialKeys::client(header.version, header.dcid)
        .ok_or(QuicError::UnsupportedVersion { offset: 1, version: header.version.0 })?;
    keys.decrypt(packet, out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::quic::vectors::*;
    use crate::quic::{CryptoFrame, Frame};

    fn client_plaintext() -> Vec<u8> {
        let mut p = hex(CLIENT_CRYPTO_FRAME);
        p.resize(CLIENT_PAYLOAD_LEN, 0);
        p
    }

    #[test]
    fn rfc9001_a1_keys() {
        let dcid = hex(DCID);
        let (prk, _) = Hkdf::<Sha256>::extract(Some(&V1_SALT), &dcid);
        assert_eq!(prk[..], hex("7db5df06e7a69e432496adedb00851923595221596ae2ae9fb8115c1e9ed0a44"));
        let client = initial_secret(&labels(Version::V1).unwrap(), &dcid, b"client in");
        assert_eq!(client[..], hex("c00cf151ca5be075ed0ebfb5c80323c42d6b7db67881289af4008f1f6c357aea"));
        let server = initial_secret(&labels(Version::V1).unwrap(), &dcid, b"server in");
        assert_eq!(server[..], hex("3c199828fd139efd216c155ad844cc81fb82fa8d7446fa7d78be803acdda951b"));
        let k = KeyMaterial::derive(&labels(Version::V1).unwrap(), &client);
        assert_eq!(k.key[..], hex("1f369613dd76d5467730efcbe3b1a22d"));
        assert_eq!(k.iv[..], hex("fa044b2f42a3fd3b46fb255c"));
        assert_eq!(k.hp[..], hex("9f50449e04a0e810283a1e9933adedd2"));
        let k = KeyMaterial::derive(&labels(Version::V1).unwrap(), &server);
        assert_eq!(k.key[..], hex("cf3a5331653c364c88f0f379b6067e37"));
        assert_eq!(k.iv[..], hex("0ac1493ca1905853b0bba03e"));
        assert_eq!(k.hp[..], hex("c206b8d9b9f0f37644430b490eeaa314"));
        // Appendix A.2: the nonce for packet number 2 and the header protection mask.
        let k = InitialKeys::client(Version::V1, &dcid).unwrap();
        assert_eq!(k.nonce(2)[..], hex("fa044b2f42a3fd3b46fb255e"));
        assert_eq!(k.mask(&hex("d1b1c98dd7689fb8ec11d242b123dc9b"))[..5], hex("437b9aec36"));
    }

    #[test]
    fn rfc9369_a1_keys() {
        let dcid = hex(DCID);
        let client = initial_secret(&labels(Version::V2).unwrap(), &dcid, b"client in");
        assert_eq!(client[..], hex("14ec9d6eb9fd7af83bf5a668bc17a7e283766aade7ecd0891f70f9ff7f4bf47b"));
        let server = initial_secret(&labels(Version::V2).unwrap(), &dcid, b"server in");
        assert_eq!(server[..], hex("0263db1782731bf4588e7e4d93b7463907cb8cd8200b5da55a8bd488eafc37c1"));
        let k = KeyMaterial::derive(&labels(Version::V2).unwrap(), &client);
        assert_eq!(k.key[..], hex("8b1a0bc121284290a29e0971b5cd045d"));
        assert_eq!(k.iv[..], hex("91f73e2351d8fa91660e909f"));
        assert_eq!(k.hp[..], hex("45b95e15235d6f45a6b19cbcb0294ba9"));
        let k = KeyMaterial::derive(&labels(Version::V2).unwrap(), &server);
        assert_eq!(k.key[..], hex("82db637861d55e1d011f19ea71d5d2a7"));
        assert_eq!(k.iv[..], hex("dd13c276499c0249d3310652"));
        assert_eq!(k.hp[..], hex("edf6d05c83121201b436e16877593c3a"));
        assert!(InitialKeys::client(Version(0xff00_001d), &dcid).is_none());
    }

    fn check_client_initial(version: Version, protected: &str, first_byte: u8) {
        let packet = hex(protected);
        assert_eq!(packet.len(), 1200);
        let mut out = [0u8; 1500];
        let initial = decrypt_client_initial(&packet, &mut out).unwrap();
        assert_eq!(initial.header.version, version);
        assert_eq!(initial.header.first_byte, first_byte);
        assert_eq!(initial.header.dcid, hex(DCID));
        assert_eq!(initial.packet_number, 2);
        assert_eq!(initial.payload_offset, 22);
        assert_eq!(initial.payload, &client_plaintext()[..]);
        let crypto: Vec<CryptoFrame<'_>> = initial.crypto_frames().map(Result::unwrap).collect();
        assert_eq!(crypto.len(), 1);
        assert_eq!(crypto[0].offset, 0);
        let hello = crypto[0].data;
        assert_eq!(hello.len(), 241);
        assert_eq!(&hello[..4], [0x01, 0x00, 0x00, 0xed], "a ClientHello of 237 bytes");
        assert!(hello.windows(11).any(|w| w == b"example.com"));
        // The rest is one run of PADDING.
        let frames: Vec<Frame<'_>> = initial.frames().map(Result::unwrap).collect();
        assert_eq!(frames[1], Frame::Padding { len: CLIENT_PAYLOAD_LEN - 245 });

        // Sealing the plaintext again gives the RFC's packet byte for byte.
        let keys = InitialKeys::client(version, &hex(DCID)).unwrap();
        let header = InitialHeader { dcid: &hex(DCID), scid: &[], token: &[], packet_number: 2 };
        let mut sealed = [0u8; 1200];
        assert_eq!(keys.seal(&header, &client_plaintext(), &mut sealed).unwrap(), 1200);
        assert_eq!(sealed[..], packet[..]);
    }

    #[test]
    fn rfc9001_a2_client_initial() {
        check_client_initial(Version::V1, V1_CLIENT_INITIAL, 0xc3);
    }

    #[test]
    fn rfc9369_a2_client_initial() {
        check_client_initial(Version::V2, V2_CLIENT_INITIAL, 0xd3);
    }

    #[test]
    fn rfc9001_a3_and_rfc9369_a3_server_initials() {
        for (version, protected) in [(Version::V1, V1_SERVER_INITIAL), (Version::V2, V2_SERVER_INITIAL)] {
            let keys = InitialKeys::server(version, &hex(DCID)).unwrap();
            let mut out = [0u8; 200];
            let initial = keys.decrypt(&hex(protected), &mut out).unwrap();
            assert_eq!(initial.packet_number, 1);
            assert_eq!(initial.header.scid, hex("f067a5502a4262b5"));
            assert_eq!(initial.payload, hex(SERVER_PAYLOAD));
            let frames: Vec<Frame<'_>> = initial.frames().map(Result::unwrap).collect();
            assert!(matches!(frames[0], Frame::Ack(a) if a.largest == 0 && a.ecn.is_none()));
            assert!(matches!(frames[1], Frame::Crypto(c) if c.offset == 0 && c.data[0] == 0x02));
            // The client's keys do not open the server's packet.
            let mut out = [0u8; 200];
            assert_eq!(
                InitialKeys::client(version, &hex(DCID)).unwrap().decrypt(&hex(protected), &mut out),
                Err(QuicError::DecryptionFailed { offset: 0 })
            );
        }
    }

    #[test]
    fn refuses_bad_packets_without_panicking() {
        let packet = hex(V1_CLIENT_INITIAL);
        let mut out = [0u8; 1500];
        // Truncated: the Length field promises more than there is.
        assert_eq!(
            decrypt_client_initial(&packet[..1000], &mut out),
            Err(QuicError::Truncated { offset: 16, what: "length" })
        );
        for cut in 0..packet.len() {
            assert!(decrypt_client_initial(&packet[..cut], &mut out).is_err());
        }
        // Another DCID of the same length: different keys, so authentication fails.
        let mut wrong = packet.clone();
        wrong[6] ^= 0x01;
        assert_eq!(decrypt_client_initial(&wrong, &mut out), Err(QuicError::DecryptionFailed { offset: 0 }));
        // One bit of ciphertext.
        let mut flipped = packet.clone();
        flipped[600] ^= 0x80;
        assert_eq!(decrypt_client_initial(&flipped, &mut out), Err(QuicError::DecryptionFailed { offset: 0 }));
        // The output buffer is too small.
        assert_eq!(
            decrypt_client_initial(&packet, &mut out[..1199]),
            Err(QuicError::BufferTooSmall { needed: 1200, available: 1199 })
        );
        // v1 keys on the v2 packet.
        let v1 = InitialKeys::client(Version::V1, &hex(DCID)).unwrap();
        assert_eq!(
            v1.decrypt(&hex(V2_CLIENT_INITIAL), &mut out),
            Err(QuicError::VersionMismatch { offset: 0, packet: Version::V2, keys: Version::V1 })
        );
        // A Handshake packet is not opened with Initial keys.
        let mut handshake = packet.clone();
        handshake[0] = 0xe0;
        assert_eq!(
            decrypt_client_initial(&handshake, &mut out),
            Err(QuicError::BadPacketType { offset: 0, packet_type: PacketType::Handshake })
        );
        // Too short for the header protection sample: Length 5, so a 22-byte packet.
        let short = hex("c000000001088394c8f03e5157080000050102030405");
        assert_eq!(
            decrypt_client_initial(&short, &mut out),
            Err(QuicError::Truncated { offset: 22, what: "header protection sample" })
        );
        // The input is left alone by decrypt.
        assert_eq!(packet, hex(V1_CLIENT_INITIAL));
    }

    #[test]
    fn reserved_bits_are_refused_after_decryption() {
        let dcid = [7u8; 8];
        let keys = InitialKeys::client(Version::V1, &dcid).unwrap();
        let header = InitialHeader { dcid: &dcid, scid: &[1, 2], token: b"tok", packet_number: 0 };
        let mut packet = [0u8; 100];
        let len = keys.seal(&header, &[0x01; 30], &mut packet).unwrap();
        let mut plain = packet[..len].to_vec();
        let initial = keys.decrypt_in_place(&mut plain).unwrap();
        assert_eq!(initial.header.token, b"tok");
        assert_eq!(initial.header.first_byte, 0xc3);
        let pn_offset = initial.header.pn_offset;
        // Protect it again with a reserved bit set: it authenticates, then is refused.
        plain[0] |= 0x08;
        keys.protect_in_place(&mut plain, pn_offset, 0).unwrap();
        let mut out = [0u8; 100];
        assert_eq!(keys.decrypt(&plain, &mut out), Err(QuicError::ReservedBits { offset: 0, first_byte: 0xcb }));
        // Flipping the bit in the protected byte breaks authentication instead.
        packet[0] ^= 0x04;
        assert_eq!(keys.decrypt(&packet[..len], &mut out), Err(QuicError::DecryptionFailed { offset: 0 }));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut seed = 0x9e37_79b9_u32;
        let mut buf = [0u8; 300];
        let mut out = [0u8; 300];
        for round in 0..5_000 {
            for b in buf.iter_mut() {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                *b = seed as u8;
            }
            // A plausible Initial header with a random DCID, token and Length.
            let version = if round % 2 == 0 { Version::V1 } else { Version::V2 };
            buf[0] = 0xc0 | PacketType::Initial.bits(version) | (buf[0] & 0x0f);
            buf[1..5].copy_from_slice(&version.0.to_be_bytes());
            buf[5] %= 21;
            let len = (seed as usize >> 8) % buf.len();
            // Mostly: empty SCID and token, and a Length that fits, to reach the AEAD.
            let pos = 6 + usize::from(buf[5]);
            if round % 4 != 3 && len > pos + 4 {
                buf[pos] = 0;
                buf[pos + 1] = 0;
                buf[pos + 2..pos + 4].copy_from_slice(&(0x4000 | (len - pos - 4) as u16).to_be_bytes());
            }
            assert!(decrypt_client_initial(&buf[..len], &mut out).is_err());
        }
    }

    #[test]
    fn seals_and_opens_in_both_versions() {
        for version in [Version::V1, Version::V2] {
            let dcid = [0xde, 0xca, 0xfb, 0xad, 1, 2, 3, 4, 5];
            let keys = InitialKeys::client(version, &dcid).unwrap();
            let payload: Vec<u8> = (0..20_000u32).map(|i| (i % 7) as u8).collect();
            let header = InitialHeader { dcid: &dcid, scid: &[9; 20], token: &[], packet_number: 0x0102_0304 };
            let mut packet = vec![0u8; 21_000];
            let len = keys.seal(&header, &payload, &mut packet).unwrap();
            let mut in_place = packet[..len].to_vec();
            let initial = keys.decrypt_in_place(&mut in_place).unwrap();
            assert_eq!(initial.packet_number, 0x0102_0304);
            assert_eq!(initial.payload, &payload[..]);
            assert_eq!(initial.header.packet_type, PacketType::Initial);
            let too_long = InitialHeader { dcid: &[0; 21], ..header };
            assert_eq!(
                keys.seal(&too_long, &payload, &mut packet),
                Err(QuicError::ConnectionIdTooLong { offset: 5, len: 21 })
            );
        }
    }
}
