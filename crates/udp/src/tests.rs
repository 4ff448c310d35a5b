use std::net::UdpSocket;
use std::os::fd::AsRawFd;

use super::*;

/// Reads until `fd` has nothing more for 100 ms; returns the datagrams' bytes and senders.
fn drain(r: &mut BatchReceiver, fd: RawFd) -> Vec<(Vec<u8>, Option<SocketAddr>)> {
    let mut seen = Vec::new();
    loop {
        wait_readable(&[fd], Duration::from_millis(100)).unwrap();
        match r.receive(fd).unwrap() {
            0 => return seen,
            n => seen.extend((0..n).map(|i| {
                let (bytes, from, cut) = r.datagram(i).unwrap();
                assert!(!cut);
                (bytes.to_vec(), from)
            })),
        }
    }
}

#[test]
fn receives_a_batch_with_senders() {
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = rx.local_addr().unwrap();
    let mut r = BatchReceiver::new(16, 2048);
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..100u8 {
        tx.send_to(&[i; 10], to).unwrap();
    }
    let seen = drain(&mut r, rx.as_raw_fd());
    assert_eq!(seen.len(), 100);
    for (i, (bytes, from)) in seen.iter().enumerate() {
        assert_eq!(bytes, &[i as u8; 10]);
        assert_eq!(*from, Some(tx.local_addr().unwrap()));
    }
    assert_eq!(r.receive(rx.as_raw_fd()).unwrap(), 0, "returns at once when idle");
    assert_eq!(r.receive_with(rx.as_raw_fd(), libc::MSG_DONTWAIT).unwrap_err().kind(), io::ErrorKind::WouldBlock);
    assert_eq!(socket_drops(rx.as_raw_fd()), Some(0));
}

#[test]
fn cuts_long_datagrams_and_says_so() {
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut r = BatchReceiver::new(4, 8);
    UdpSocket::bind("127.0.0.1:0").unwrap().send_to(&[1; 20], rx.local_addr().unwrap()).unwrap();
    wait_readable(&[rx.as_raw_fd()], Duration::from_secs(1)).unwrap();
    assert_eq!(r.receive(rx.as_raw_fd()).unwrap(), 1);
    let (bytes, _, cut) = r.datagram(0).unwrap();
    assert_eq!((bytes, cut), (&[1u8; 8][..], true));
    assert!(r.datagram(1).is_none());
}

#[test]
fn counts_what_the_kernel_dropped() {
    let rx = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
    rx.set_recv_buffer_size(4096).unwrap();
    rx.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into()).unwrap();
    let rx: UdpSocket = rx.into();
    let to = rx.local_addr().unwrap();
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..200 {
        tx.send_to(&[7; 1000], to).unwrap();
    }
    let seen = drain(&mut BatchReceiver::new(8, 2048), rx.as_raw_fd()).len();
    assert!(seen > 0 && seen < 200, "a 4 KiB buffer holds a few of 200 datagrams: {seen}");
    assert_eq!(seen + socket_drops(rx.as_raw_fd()).unwrap() as usize, 200, "every datagram read or counted");
}

#[test]
fn sends_a_batch_each_to_its_address_v4_and_v6() {
    let tx4 = UdpSocket::bind("127.0.0.1:0").unwrap();
    let tx6 = UdpSocket::bind("[::1]:0").unwrap();
    for (tx, bind) in [(&tx4, "127.0.0.1:0"), (&tx6, "[::1]:0")] {
        let (a, b) = (UdpSocket::bind(bind).unwrap(), UdpSocket::bind(bind).unwrap());
        let mut s = BatchSender::new();
        for i in 0..10u8 {
            let to = if i % 2 == 0 { &a } else { &b };
            s.push(&[i; 5], to.local_addr().unwrap());
        }
        assert_eq!(s.len(), 10);
        let mut sent = 0;
        while sent < s.len() {
            sent += s.send(tx.as_raw_fd(), sent).unwrap();
        }
        let mut r = BatchReceiver::new(16, 64);
        let (got_a, got_b) = (drain(&mut r, a.as_raw_fd()), drain(&mut r, b.as_raw_fd()));
        assert_eq!(got_a.iter().map(|(m, _)| m[0]).collect::<Vec<_>>(), vec![0, 2, 4, 6, 8]);
        assert_eq!(got_b.iter().map(|(m, _)| m[0]).collect::<Vec<_>>(), vec![1, 3, 5, 7, 9]);
        assert!(got_a.iter().all(|(m, from)| m.len() == 5 && *from == Some(tx.local_addr().unwrap())));
        s.clear();
        assert!(s.is_empty());
        assert_eq!(s.send(tx.as_raw_fd(), 0).unwrap(), 0);
    }
}

#[test]
fn a_waiting_receive_sleeps_until_the_first_datagram_then_takes_what_is_queued() {
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    rx.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let (fd, to) = (rx.as_raw_fd(), rx.local_addr().unwrap());
    let mut r = BatchReceiver::new(8, 64);
    let idle = std::time::Instant::now();
    assert_eq!(r.receive_waiting(fd).unwrap_err().kind(), io::ErrorKind::WouldBlock);
    assert!(idle.elapsed() >= Duration::from_millis(40), "waited for the read timeout: {:?}", idle.elapsed());
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..3u8 {
        tx.send_to(&[i; 4], to).unwrap();
    }
    // Loopback delivers inside send_to: all three are queued before the call.
    assert_eq!(r.receive_waiting(fd).unwrap(), 3, "one call takes every queued datagram");
    assert_eq!((0..3).map(|i| r.datagram(i).unwrap().0[0]).collect::<Vec<_>>(), vec![0, 1, 2]);
    // A datagram sent while the receiver sleeps wakes it.
    let late = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(10));
        tx.send_to(&[9; 4], to).unwrap();
    });
    assert_eq!(r.receive_waiting(fd).unwrap(), 1);
    assert_eq!(r.datagram(0).unwrap().0, &[9; 4]);
    late.join().unwrap();
}

#[test]
fn send_to_nowait_sends_from_a_blocking_socket_v4_and_v6() {
    for bind in ["127.0.0.1:0", "[::1]:0"] {
        let (tx, rx) = (UdpSocket::bind(bind).unwrap(), UdpSocket::bind(bind).unwrap());
        assert_eq!(send_to_nowait(tx.as_raw_fd(), &[5; 12], rx.local_addr().unwrap()).unwrap(), 12);
        let got = drain(&mut BatchReceiver::new(4, 64), rx.as_raw_fd());
        assert_eq!(got, vec![(vec![5; 12], Some(tx.local_addr().unwrap()))]);
        // An address of the other family is refused at once: an error, not a wait.
        let other = if bind.starts_with('[') { "127.0.0.1:53" } else { "[::1]:53" };
        assert!(send_to_nowait(tx.as_raw_fd(), &[5; 12], other.parse().unwrap()).is_err());
    }
}
