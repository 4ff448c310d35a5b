//! The announce-only BGP speaker: one session task per configured router, all following one
//! desired set of routes.
//!
//! Each session runs the RFC 4271 section 8 state machine as far as an active, announce-only
//! speaker needs it: connect (with exponential backoff between attempts), OPEN, KEEPALIVE,
//! Established. Once established it sends every desired route the peer's negotiated families
//! allow, then End-of-RIB, and from then on the difference whenever the desired set changes.
//! It answers keepalives, enforces the negotiated hold time, logs a NOTIFICATION and starts over.
//! A peer with a password gets TCP MD5 signatures (RFC 2385, see [`crate::md5`]) on the socket
//! before it connects.
//! What the peer announces is read and ignored. On shutdown each session withdraws what it
//! announced, sends a Cease (administrative shutdown) and closes, so nothing stays behind in
//! the routers.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;

use crate::wire::{self, Afi, Capability, Message, Notification, Open, Route, Safi};

/// One router to announce to. Its `Debug` output hides the password.
#[derive(Clone)]
pub struct PeerConfig {
    /// Its address and port (179 normally).
    pub address: SocketAddr,
    /// Its AS.
    pub remote_as: u32,
    /// Our AS.
    pub local_as: u32,
    /// Our BGP identifier.
    pub router_id: Ipv4Addr,
    /// Hold time we propose, seconds (0: none; else at least 3).
    pub hold_time: u16,
    /// Families we offer; routes of other families are not sent.
    pub families: Vec<(Afi, Safi)>,
    /// First wait before reconnecting; doubles up to `max_backoff`.
    pub backoff: Duration,
    /// Longest wait between connection attempts.
    pub max_backoff: Duration,
    /// TCP MD5 signature password (RFC 2385), 1 to [`crate::md5::MAX_PASSWORD_LEN`] bytes; the
    /// router must have the same one for our address. `None`: no authentication.
    pub md5_password: Option<String>,
}

impl std::fmt::Debug for PeerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Destructured, so a new field cannot be forgotten here.
        let PeerConfig {
            address,
            remote_as,
            local_as,
            router_id,
            hold_time,
            families,
            backoff,
            max_backoff,
            md5_password,
        } = self;
        f.debug_struct("PeerConfig")
            .field("address", address)
            .field("remote_as", remote_as)
            .field("local_as", local_as)
            .field("router_id", router_id)
            .field("hold_time", hold_time)
            .field("families", families)
            .field("backoff", backoff)
            .field("max_backoff", max_backoff)
            .field("md5_password", &md5_password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Session states reported (RFC 4271 section 8.2.2, as far as an active speaker goes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// Waiting to connect.
    Idle,
    /// TCP connecting.
    Connect,
    /// OPEN sent, waiting for the peer's.
    OpenSent,
    /// OPENs exchanged, waiting for KEEPALIVE.
    OpenConfirm,
    /// Up.
    Established,
}

/// What a session reports.
#[derive(Debug, Clone, Serialize)]
pub struct PeerStatus {
    /// The peer.
    pub address: SocketAddr,
    /// Current state.
    pub state: State,
    /// Whether the session uses TCP MD5 signatures (the password itself is never shown).
    pub tcp_md5: bool,
    /// Connection attempts so far.
    pub attempts: u64,
    /// Times the session reached Established.
    pub established_count: u64,
    /// Routes currently announced to this peer.
    pub announced: usize,
    /// UPDATE messages sent.
    pub updates_sent: u64,
    /// The last problem (NOTIFICATION received or sent, I/O error), if any.
    pub last_error: Option<String>,
}

/// The speaker: sessions to every configured peer, following [`Speaker::set_routes`].
pub struct Speaker {
    desired: watch::Sender<Arc<Vec<Route>>>,
    stop: watch::Sender<bool>,
    sessions: Vec<(Arc<Mutex<PeerStatus>>, tokio::task::JoinHandle<()>)>,
}

impl Speaker {
    /// Starts a session task per peer on the current tokio runtime.
    pub fn start(peers: Vec<PeerConfig>) -> Speaker {
        let (desired, _) = watch::channel(Arc::new(Vec::new()));
        let (stop, _) = watch::channel(false);
        let sessions = peers
            .into_iter()
            .map(|peer| {
                let status = Arc::new(Mutex::new(PeerStatus {
                    address: peer.address,
                    state: State::Idle,
                    tcp_md5: peer.md5_password.is_some(),
                    attempts: 0,
                    established_count: 0,
                    announced: 0,
                    updates_sent: 0,
                    last_error: None,
                }));
                let task = tokio::spawn(session(peer, desired.subscribe(), stop.subscribe(), Arc::clone(&status)));
                (status, task)
            })
            .collect();
        Speaker { desired, stop, sessions }
    }

    /// Replaces the set of routes every session announces.
    pub fn set_routes(&self, routes: Vec<Route>) {
        self.desired.send_replace(Arc::new(routes));
    }

    /// Each session's status.
    pub fn status(&self) -> Vec<PeerStatus> {
        self.sessions.iter().filter_map(|(s, _)| s.lock().ok().map(|s| s.clone())).collect()
    }

    /// Withdraws everything, sends Cease to every established peer and waits (up to `timeout`)
    /// for the sessions to end.
    pub async fn shutdown(self, timeout: Duration) {
        self.stop.send_replace(true);
        for (_, task) in self.sessions {
            let _ = tokio::time::timeout(timeout, task).await;
        }
    }
}

fn set_state(status: &Mutex<PeerStatus>, f: impl FnOnce(&mut PeerStatus)) {
    if let Ok(mut s) = status.lock() {
        f(&mut s);
    }
}

/// Identity of an announced route: its family and NLRI bytes.
type RouteKey = (Afi, Safi, Vec<u8>);

fn route_key(route: &Route) -> RouteKey {
    let (afi, safi) = route.family();
    let mut withdraw = Vec::new();
    wire::encode_withdraw(&mut withdraw, route);
    (afi, safi, withdraw)
}

async fn session(
    peer: PeerConfig,
    mut desired: watch::Receiver<Arc<Vec<Route>>>,
    mut stop: watch::Receiver<bool>,
    status: Arc<Mutex<PeerStatus>>,
) {
    let mut backoff = peer.backoff;
    loop {
        if *stop.borrow() {
            return;
        }
        set_state(&status, |s| {
            s.state = State::Connect;
            s.attempts += 1;
        });
        let outcome = run_once(&peer, &mut desired, &mut stop, &status).await;
        let established = status.lock().map(|s| s.state == State::Established).unwrap_or(false);
        set_state(&status, |s| {
            s.state = State::Idle;
            s.announced = 0;
            if let Err(e) = &outcome {
                s.last_error = Some(e.clone());
            }
        });
        match outcome {
            Ok(()) => return, // stopped cleanly
            Err(e) => tracing::warn!(peer = %peer.address, error = %e, "BGP session down"),
        }
        if established {
            backoff = peer.backoff;
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => return,
        }
        backoff = (backoff * 2).min(peer.max_backoff);
    }
}

/// One connection's life. `Ok` means stopped on request after a clean withdraw and Cease.
async fn run_once(
    peer: &PeerConfig,
    desired: &mut watch::Receiver<Arc<Vec<Route>>>,
    stop: &mut watch::Receiver<bool>,
    status: &Mutex<PeerStatus>,
) -> Result<(), String> {
    let mut stream = connect(peer).await?;
    let mut capabilities: Vec<Capability> =
        peer.families.iter().map(|&(afi, safi)| Capability::MultiProtocol(afi, safi)).collect();
    capabilities.push(Capability::RouteRefresh);
    capabilities.push(Capability::FourOctetAs(peer.local_as));
    let open = Open { asn: peer.local_as, hold_time: peer.hold_time, router_id: peer.router_id, capabilities };
    let mut out = Vec::with_capacity(4096);
    wire::encode_open(&mut out, &open);
    stream.write_all(&out).await.map_err(|e| format!("send OPEN: {e}"))?;
    set_state(status, |s| s.state = State::OpenSent);

    let mut reader = Reader { buf: Vec::with_capacity(8192) };
    let their_open = match reader.next(&mut stream, Duration::from_secs(30)).await? {
        Message::Open(o) => o,
        Message::Notification(n) => return Err(format!("peer sent NOTIFICATION: {}", n.describe())),
        other => return Err(format!("expected OPEN, got {other:?}")),
    };
    if their_open.asn != peer.remote_as {
        let n = Notification { code: 2, subcode: 2, data: vec![] };
        out.clear();
        wire::encode_notification(&mut out, &n);
        let _ = stream.write_all(&out).await;
        return Err(format!("peer AS {} is not the configured {}", their_open.asn, peer.remote_as));
    }
    let hold = match (peer.hold_time, their_open.hold_time) {
        (0, _) | (_, 0) => 0,
        (a, b) => a.min(b),
    };
    // Families both sides offered; a peer without multiprotocol capabilities speaks IPv4 unicast.
    let theirs: Vec<(Afi, Safi)> = their_open
        .capabilities
        .iter()
        .filter_map(|c| match c {
            Capability::MultiProtocol(a, s) => Some((*a, *s)),
            _ => None,
        })
        .collect();
    let families: Vec<(Afi, Safi)> = peer
        .families
        .iter()
        .copied()
        .filter(|f| theirs.contains(f) || (theirs.is_empty() && *f == (Afi::IPV4, Safi::UNICAST)))
        .collect();
    out.clear();
    wire::encode_keepalive(&mut out);
    stream.write_all(&out).await.map_err(|e| format!("send KEEPALIVE: {e}"))?;
    set_state(status, |s| s.state = State::OpenConfirm);
    let hold_timeout = if hold == 0 { Duration::from_secs(3600) } else { Duration::from_secs(u64::from(hold)) };
    match reader.next(&mut stream, hold_timeout).await? {
        Message::Keepalive => {}
        Message::Notification(n) => return Err(format!("peer sent NOTIFICATION: {}", n.describe())),
        other => return Err(format!("expected KEEPALIVE, got {other:?}")),
    }
    set_state(status, |s| {
        s.state = State::Established;
        s.established_count += 1;
    });
    tracing::info!(peer = %peer.address, asn = their_open.asn, hold, ?families, "BGP session established");

    let mut sent: BTreeMap<RouteKey, Vec<u8>> = BTreeMap::new();
    let routes = desired.borrow_and_update().clone();
    sync(&mut stream, &routes, &families, peer, &mut sent, status).await?;
    out.clear();
    for &(afi, safi) in &families {
        wire::encode_end_of_rib(&mut out, afi, safi);
    }
    stream.write_all(&out).await.map_err(|e| format!("send End-of-RIB: {e}"))?;

    let keepalive_every =
        if hold == 0 { Duration::from_secs(3600) } else { Duration::from_secs(u64::from(hold / 3).max(1)) };
    let mut keepalive = tokio::time::interval_at(tokio::time::Instant::now() + keepalive_every, keepalive_every);
    let mut last_heard = Instant::now();
    let (mut rd, mut wr) = stream.into_split();
    let mut rx = vec![0u8; 8192];
    // Whatever the peer sent right after its KEEPALIVE is already in the reader's buffer.
    let mut pending: Vec<u8> = std::mem::take(&mut reader.buf);
    loop {
        tokio::select! {
            n = rd.read(&mut rx) => {
                let n = n.map_err(|e| format!("read: {e}"))?;
                if n == 0 {
                    return Err("peer closed the connection".into());
                }
                last_heard = Instant::now();
                pending.extend_from_slice(&rx[..n]);
                loop {
                    match wire::parse(&pending) {
                        Ok((Message::Notification(n), _)) => return Err(format!("peer sent NOTIFICATION: {}", n.describe())),
                        Ok((_, len)) => { pending.drain(..len); }
                        Err(wire::BgpError::Incomplete { .. }) => break,
                        Err(e) => {
                            out.clear();
                            wire::encode_notification(&mut out, &Notification { code: 1, subcode: 1, data: vec![] });
                            let _ = wr.write_all(&out).await;
                            return Err(format!("bad message from peer: {e}"));
                        }
                    }
                }
            }
            _ = keepalive.tick() => {
                if hold != 0 && last_heard.elapsed() > Duration::from_secs(u64::from(hold)) {
                    out.clear();
                    wire::encode_notification(&mut out, &Notification { code: 4, subcode: 0, data: vec![] });
                    let _ = wr.write_all(&out).await;
                    return Err("hold timer expired".into());
                }
                out.clear();
                wire::encode_keepalive(&mut out);
                wr.write_all(&out).await.map_err(|e| format!("send KEEPALIVE: {e}"))?;
            }
            changed = desired.changed() => {
                if changed.is_err() {
                    return Ok(());
                }
                let routes = desired.borrow_and_update().clone();
                sync(&mut wr, &routes, &families, peer, &mut sent, status).await?;
            }
            _ = stop.changed() => {
                // Withdraw everything, then Cease (administrative shutdown, RFC 4486).
                sync(&mut wr, &[], &families, peer, &mut sent, status).await?;
                out.clear();
                wire::encode_notification(&mut out, &Notification { code: 6, subcode: 2, data: vec![] });
                let _ = wr.write_all(&out).await;
                let _ = wr.shutdown().await;
                tracing::info!(peer = %peer.address, "BGP session closed: routes withdrawn, Cease sent");
                return Ok(());
            }
        }
    }
}

/// Opens the TCP connection, with the TCP MD5 key set first when the peer has a password.
async fn connect(peer: &PeerConfig) -> Result<TcpStream, String> {
    let socket = if peer.address.is_ipv4() { TcpSocket::new_v4() } else { TcpSocket::new_v6() }
        .map_err(|e| format!("socket: {e}"))?;
    if let Some(password) = &peer.md5_password {
        crate::md5::set_password(&socket, peer.address.ip(), password).map_err(|e| e.to_string())?;
    }
    let stream = match tokio::time::timeout(Duration::from_secs(5), socket.connect(peer.address)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return Err(format!("connect: {e}")),
        // The peer's kernel drops segments with a wrong signature, or without one it expects,
        // without a word (RFC 2385 section 2.0): all we see is silence.
        Err(_) if peer.md5_password.is_some() => {
            return Err("connect timed out (TCP MD5 is on: check that the router has the same password for our \
                        address)"
                .into())
        }
        Err(_) => return Err("connect timed out".into()),
    };
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// Sends what changed between `sent` (what the peer has from us) and `routes`.
async fn sync<W: AsyncWriteExt + Unpin>(
    w: &mut W,
    routes: &[Route],
    families: &[(Afi, Safi)],
    peer: &PeerConfig,
    sent: &mut BTreeMap<RouteKey, Vec<u8>>,
    status: &Mutex<PeerStatus>,
) -> Result<(), String> {
    let ebgp = peer.local_as != peer.remote_as;
    let mut wanted: BTreeMap<RouteKey, (Vec<u8>, &Route)> = BTreeMap::new();
    for route in routes.iter().filter(|r| families.contains(&r.family())) {
        let mut update = Vec::new();
        wire::encode_announce(&mut update, route, peer.local_as, ebgp);
        wanted.insert(route_key(route), (update, route));
    }
    let mut out = Vec::new();
    let mut updates = 0u64;
    let gone: Vec<RouteKey> = sent.keys().filter(|k| !wanted.contains_key(*k)).cloned().collect();
    for key in gone {
        // The key holds the withdraw UPDATE itself.
        out.extend_from_slice(&key.2);
        sent.remove(&key);
        updates += 1;
    }
    for (key, (update, _)) in wanted {
        if sent.get(&key) != Some(&update) {
            out.extend_from_slice(&update);
            sent.insert(key, update);
            updates += 1;
        }
    }
    if !out.is_empty() {
        w.write_all(&out).await.map_err(|e| format!("send UPDATE: {e}"))?;
    }
    set_state(status, |s| {
        s.updates_sent += updates;
        s.announced = sent.len();
    });
    Ok(())
}

/// Reads whole messages from a stream.
struct Reader {
    buf: Vec<u8>,
}

impl Reader {
    async fn next(&mut self, stream: &mut TcpStream, timeout: Duration) -> Result<Message, String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match wire::parse(&self.buf) {
                Ok((msg, len)) => {
                    self.buf.drain(..len);
                    return Ok(msg);
                }
                Err(wire::BgpError::Incomplete { .. }) => {}
                Err(e) => return Err(format!("bad message from peer: {e}")),
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout_at(deadline, stream.read(&mut chunk))
                .await
                .map_err(|_| "peer silent past the hold time".to_string())?
                .map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Err("peer closed the connection".into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}
